"""What moved a score: each feature's contribution to a person's log-odds (TreeSHAP over
the artefact's trees), adding up with the base to the log-odds the scorer gives, equal to
Shapley values computed from their definition, and said to be unavailable for an artefact
from before node counts were exported."""

from __future__ import annotations

import itertools
import math
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from nudge.adapters.gbdt import GbdtParams, fit
from nudge.domain.predictions.contributions import Attribution, attribute, explained
from nudge.domain.predictions.live import Scoring, explain_score, model_version
from nudge.domain.predictions.score import LEAF, ModelProblem, ScoreModel, Tree, parse_model

from tests.unit.test_prediction_scorer import _artefact, _rows
from tests.unit.test_score_triggers import MODEL, _scoring

# f0 then f1: the row below goes right at f0 and left at f1, to the leaf worth 1.
INTERACTION: dict[str, list[object]] = {
    "feature": [0, -1, 1, -1, -1],
    "threshold": [0.5, 0.0, 0.5, 0.0, 0.0],
    "missing_left": [1, 0, 0, 0, 0],
    "left": [1, 0, 3, 0, 0],
    "right": [2, 0, 4, 0, 0],
    "value": [0.0, 0.0, 0.0, 1.0, 0.0],
    "count": [100, 50, 50, 20, 30],
}
# f1 alone: at most 0.5 is worth 0.5 (25 training rows), above it -0.5 (75 rows).
STUMP_F1: dict[str, list[object]] = {
    "feature": [1, -1, -1],
    "threshold": [0.5, 0.0, 0.0],
    "missing_left": [0, 0, 0],
    "left": [1, 0, 0],
    "right": [2, 0, 0],
    "value": [0.0, 0.5, -0.5],
    "count": [100, 25, 75],
}


def _model(*trees: dict[str, list[object]], base: float = 0.0, features: int = 2) -> ScoreModel:
    model = parse_model(_artefact(base, list(trees), features))
    assert isinstance(model, ScoreModel)
    return model


def _attribution(model: ScoreModel, row: list[float | None]) -> Attribution:
    found = attribute(model, row)
    assert isinstance(found, Attribution)
    return found


def _by_definition(model: ScoreModel, row: list[float | None]) -> list[float]:
    """Shapley values from their definition: every subset of the other features, with a
    feature left out meaning both sides of its splits weighed by their training rows."""
    width = len(model.features)

    def known(subset: set[int]) -> float:
        return sum(_expected_given(tree, 0, row, subset) for tree in model.trees)

    values = []
    for feature in range(width):
        others = [other for other in range(width) if other != feature]
        total = 0.0
        for size in range(width):
            weight = math.factorial(size) * math.factorial(width - size - 1) / math.factorial(width)
            for subset in itertools.combinations(others, size):
                total += weight * (known({*subset, feature}) - known(set(subset)))
        values.append(total)
    return values


def _expected_given(tree: Tree, node: int, row: list[float | None], subset: set[int]) -> float:
    if tree.feature[node] == LEAF:
        return tree.value[node]
    left, right = tree.left[node], tree.right[node]
    if tree.feature[node] in subset:
        value = row[tree.feature[node]]
        goes_left = tree.missing_left[node] if value is None else value <= tree.threshold[node]
        return _expected_given(tree, left if goes_left else right, row, subset)
    assert tree.count is not None
    weighed = tree.count[left] * _expected_given(tree, left, row, subset) + tree.count[
        right
    ] * _expected_given(tree, right, row, subset)
    return weighed / tree.count[node]


def _random_tree(chooser: random.Random, features: int, depth: int) -> dict[str, list[object]]:
    """A tree of random splits (a feature may come back below itself) and counts that add up."""
    tree: dict[str, list[Any]] = {
        key: [] for key in ("feature", "threshold", "missing_left", "left", "right", "value")
    }
    tree["count"] = []

    def grow(level: int, rows: int) -> int:
        node = len(tree["feature"])
        for column in tree.values():
            column.append(0)
        tree["count"][node] = rows
        if level == depth or rows < 2 or chooser.random() < 0.2:
            tree["feature"][node], tree["value"][node] = -1, chooser.gauss(0, 1)
            return node
        tree["feature"][node] = chooser.randrange(features)
        tree["threshold"][node] = chooser.gauss(0, 1)
        tree["missing_left"][node] = int(chooser.random() < 0.5)
        to_left = chooser.randint(1, rows - 1)
        tree["left"][node] = grow(level + 1, to_left)
        tree["right"][node] = grow(level + 1, rows - to_left)
        return node

    grow(0, chooser.randint(10, 1000))
    return tree


def test_two_hand_built_trees_give_the_contributions_worked_out_by_hand() -> None:
    """A stump on f1 and a tree where f1 only matters once f0 is high: the stump gives f1
    its leaf less its mean (0.5 - (-0.25)); the interaction is shared between f0 and f1
    by Shapley's average over the order they are learnt in."""
    # given
    model = _model(STUMP_F1, INTERACTION, base=0.3)
    row: list[float | None] = [0.9, 0.2]
    stump_mean = 0.25 * 0.5 + 0.75 * -0.5
    nothing, f0_known, f1_known, both = 0.5 * 0.4, 0.4, 0.5, 1.0  # the interaction tree's means

    # when
    found = _attribution(model, row)

    # then
    f0 = ((f0_known - nothing) + (both - f1_known)) / 2
    f1 = (0.5 - stump_mean) + ((f1_known - nothing) + (both - f0_known)) / 2
    assert found.contributions == pytest.approx([f0, f1], abs=1e-12)
    assert found.base == pytest.approx(0.3 + stump_mean + nothing, abs=1e-12)
    assert found.log_odds == pytest.approx(model.log_odds(row), abs=1e-12)


def test_a_missing_value_is_credited_for_the_side_it_took() -> None:
    """f0 missing takes the left side at the root (missing_left), as the scorer sends it:
    f0 gets the fall from the mean to that leaf, and the row reports the value as missing."""
    # given
    model = _model(INTERACTION)

    # when
    found = explained(model, [None, 0.2])

    # then
    assert not isinstance(found, ModelProblem)
    f0 = next(c for c in found.contributions if c.feature == "f0")
    assert f0.value is None
    assert f0.log_odds == pytest.approx(((0.0 - 0.2) + (0.0 - 0.5)) / 2, abs=1e-12)
    assert found.log_odds == pytest.approx(model.log_odds([None, 0.2]), abs=1e-12)


def test_contributions_are_the_shapley_values_of_their_definition() -> None:
    """On 200 random small models (missing values, a feature split on twice along a path),
    the contributions equal Shapley values computed over every subset of features."""
    # given
    chooser = random.Random(3)
    cases = []
    for _ in range(200):
        width = chooser.randint(1, 5)
        trees = [
            _random_tree(chooser, width, chooser.randint(1, 5))
            for _ in range(chooser.randint(1, 3))
        ]
        model = _model(*trees, base=chooser.gauss(0, 1), features=width)
        row = [None if chooser.random() < 0.2 else chooser.gauss(0, 1) for _ in range(width)]
        cases.append((model, row))

    # when
    found = [_attribution(model, row).contributions for model, row in cases]

    # then
    expected = [_by_definition(model, row) for model, row in cases]
    differences = [
        abs(a - b)
        for ours, theirs in zip(found, expected, strict=True)
        for a, b in zip(ours, theirs, strict=True)
    ]
    assert max(differences) < 1e-9


def test_base_plus_contributions_is_the_log_odds_on_thousands_of_rows() -> None:
    """A model trained by the library (30 trees of depth 4: the shipped depth, half its
    trees, for the test's time), exported with its node counts: on 2,000 unseen rows
    (missing values too) the base plus the contributions is the scorer's log-odds, and the
    library's, to 1e-9 and 1e-6."""
    # given
    rows, labels = _rows(3000, seed=1)
    booster = fit(rows, labels, GbdtParams(trees=30, depth=4))
    model = _model(*booster.trees, base=booster.base, features=5)
    unseen, _ = _rows(2000, seed=2)

    # when
    summed = [_attribution(model, row).log_odds for row in unseen]

    # then
    scorer = [model.log_odds(row) for row in unseen]
    theirs = [math.log(p / (1 - p)) for p in booster.predict(unseen)]
    assert max(abs(a - b) for a, b in zip(summed, scorer, strict=True)) < 1e-9
    assert max(abs(a - b) for a, b in zip(summed, theirs, strict=True)) < 1e-6


def test_score_points_add_up_to_the_score_from_the_base_score() -> None:
    """On the 0-100 scale, the base score plus every contribution's points is the score,
    and the largest contribution comes first."""
    # given
    model = _model(STUMP_F1, INTERACTION, base=0.3)

    # when
    found = explained(model, [0.9, 0.2])

    # then
    assert not isinstance(found, ModelProblem)
    points = sum(contribution.points for contribution in found.contributions)
    assert found.base_score + points == pytest.approx(100 * model.probability([0.9, 0.2]))
    magnitudes = [abs(contribution.log_odds) for contribution in found.contributions]
    assert magnitudes == sorted(magnitudes, reverse=True)


def test_an_artefact_without_node_counts_scores_but_has_no_contributions() -> None:
    """An artefact from before counts were exported still loads and scores; asked for
    contributions, it says they are not available for this model and how to get them."""
    # given
    old = {key: value for key, value in STUMP_F1.items() if key != "count"}
    model = _model(old)

    # when
    found = attribute(model, [0.9, 0.2])

    # then
    assert model.log_odds([0.9, 0.2]) == 0.5
    assert isinstance(found, ModelProblem)
    assert "contributions are not available" in str(found)
    assert "nudge train" in str(found)


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        ([100, 25, 70], "node 0: its count is not its children's sum"),
        ([100, 25], "arrays differ in length"),
        ([100, 100, 0], "count 0 is not a whole number of rows above 0"),
        ([100, 25.5, 74.5], "count 25.5 is not a whole number"),
    ],
    ids=["sum", "short", "zero", "fraction"],
)
def test_counts_that_cannot_weigh_the_leaves_make_the_artefact_corrupt(
    count: list[object], expected: str
) -> None:
    """Counts must add up (each inner node's is its children's), or the contributions
    would not add up to the score: such an artefact is refused, saying where."""
    # when
    found = parse_model(_artefact(0.0, [{**STUMP_F1, "count": count}], 2))

    # then
    assert isinstance(found, ModelProblem)
    assert expected in str(found)


SCORED_AT = datetime(2026, 12, 5, 21, 0, tzinfo=UTC)


def test_a_kept_score_is_explained_by_the_model_that_gave_it() -> None:
    """churn's one-tree model on sessions: a person with 4 sessions is explained at the fold
    that scored them, sessions = 4 carrying the whole distance from the base."""
    # given
    scoring = _scoring(MODEL)
    live = scoring.predictions[0].model
    assert isinstance(live, ScoreModel)

    # when
    found = explain_score(scoring, "churn", model_version(live), {"sessions": 4}, [], SCORED_AT)

    # then
    assert not isinstance(found, ModelProblem)
    [sessions] = found.contributions
    assert (sessions.feature, sessions.value) == ("profile.sessions", 4.0)
    assert found.base_log_odds + sessions.log_odds == pytest.approx(live.log_odds([4.0]))


def test_a_score_given_by_another_model_version_is_not_explained_by_this_one() -> None:
    """Retrained since the person was scored: the loaded model would explain a score they
    were never given, so explain says which model gave it and which is loaded."""
    # given
    scoring = _scoring(MODEL)

    # when
    found = explain_score(scoring, "churn", "20200101T0000Z", {"sessions": 4}, [], SCORED_AT)

    # then
    assert isinstance(found, ModelProblem)
    assert "given by model 20200101T0000Z" in str(found)


def test_a_score_of_a_prediction_not_loaded_is_not_explained() -> None:
    """A score kept for a prediction this process does not load says so."""
    # when
    found = explain_score(Scoring(), "churn", "x", {}, [], SCORED_AT - timedelta(days=1))

    # then
    assert isinstance(found, ModelProblem)
    assert "no prediction 'churn' is loaded here" in str(found)
