"""The artefact and the pure-Python scorer: the library's probabilities to 1e-6, and a bad
artefact reported as a value, never raised."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from nudge.adapters.gbdt import GbdtParams, fit
from nudge.adapters.model_file import load_model
from nudge.domain.predictions.score import PAYBACK_ROWS, ModelProblem, ScoreModel, parse_model


def _rows(count: int, seed: int) -> tuple[list[list[float | None]], list[bool]]:
    """Rows of five features, some missing, with a label that depends on three of them."""
    chooser = random.Random(seed)
    rows: list[list[float | None]] = []
    labels = []
    for _ in range(count):
        row: list[float | None] = [chooser.gauss(0, 1) for _ in range(5)]
        logit = 1.5 * (row[0] or 0) - (row[1] or 0) + 0.5 * (row[2] or 0) ** 2
        labels.append(chooser.random() < 1 / (1 + 2.718281828**-logit))
        for index in range(5):
            if chooser.random() < 0.08:
                row[index] = None
        rows.append(row)
    return rows, labels


def _artefact(base: float, trees: list[dict[str, list[object]]], features: int = 5) -> str:
    return json.dumps(
        {
            "format": "nudge-prediction-model",
            "version": 1,
            "prediction": "churn",
            "features": [f"f{index}" for index in range(features)],
            "base": base,
            "trees": trees,
        }
    )


STUMP: dict[str, list[object]] = {
    "feature": [0, -1, -1],
    "threshold": [0.5, 0.0, 0.0],
    "missing_left": [1, 0, 0],
    "left": [1, 0, 0],
    "right": [2, 0, 0],
    "value": [0.0, -1.0, 1.0],
}


def test_the_scorer_gives_the_library_probabilities_to_1e6() -> None:
    """200 trees of depth 6 exported to JSON score 5,000 unseen rows (missing values too)
    as the library's own predict does, to 1e-6."""
    # given
    rows, labels = _rows(4000, seed=1)
    booster = fit(rows, labels, GbdtParams(trees=200, depth=6, leaves=None, min_leaf=5))
    model = parse_model(_artefact(booster.base, booster.trees))
    assert isinstance(model, ScoreModel)
    unseen, _ = _rows(5000, seed=2)

    # when
    walked = [model.probability(row) for row in unseen]
    compiled = [model.fast_probability(row) for row in unseen]
    theirs = booster.predict(unseen)

    # then
    assert max(abs(a - b) for a, b in zip(walked, theirs, strict=True)) < 1e-6
    assert max(abs(a - b) for a, b in zip(compiled, theirs, strict=True)) < 1e-6
    assert len(model.trees) == 200


def test_a_missing_value_takes_the_side_the_node_names() -> None:
    """None (and NaN) go where training sent missing values; a number by its threshold."""
    # given
    model = parse_model(_artefact(0.0, [STUMP]))
    assert isinstance(model, ScoreModel)

    # then
    assert model.log_odds([None, 0, 0, 0, 0]) == -1.0
    assert model.log_odds([float("nan"), 0, 0, 0, 0]) == -1.0
    assert model.log_odds([0.5, 0, 0, 0, 0]) == -1.0
    assert model.log_odds([0.6, 0, 0, 0, 0]) == 1.0
    assert model.fast_probability([None, 0, 0, 0, 0]) == model.probability([0.5, 0, 0, 0, 0])
    assert model.score([0.6, 0, 0, 0, 0]) == 73  # the logistic of 1, on 0-100


def test_a_model_names_the_features_it_was_trained_on() -> None:
    """Scoring a definition whose features changed since training is refused, with why."""
    # given
    model = parse_model(_artefact(0.0, [STUMP]))
    assert isinstance(model, ScoreModel)

    # then
    assert model.mismatch("churn", [f"f{index}" for index in range(5)]) is None
    assert "features changed" in str(model.mismatch("churn", ["f0"]))
    assert "not 'purchase'" in str(model.mismatch("purchase", model.features))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{not json", "is not JSON"),
        ('{"format": "something else"}', "not a prediction model artefact"),
        (_artefact(0.0, [STUMP]).replace('"version": 1', '"version": 2'), "version 2"),
        (_artefact(0.0, [{**STUMP, "left": [0, 0, 0]}]), "child is out of order"),
        (_artefact(0.0, [{**STUMP, "feature": [7, -1, -1]}]), "feature 7 does not exist"),
        (_artefact(0.0, [{**STUMP, "value": [0.0, -1.0]}]), "arrays differ in length"),
        (_artefact(0.0, [{**STUMP, "threshold": ["x", 0, 0]}]), "'x' is not a number"),
        (_artefact(0.0, [STUMP]).replace('"trees"', '"forest"'), "corrupt: 'trees'"),
    ],
    ids=[
        "not-json",
        "other-format",
        "newer-version",
        "cycle",
        "feature",
        "short",
        "text",
        "no-trees",
    ],
)
def test_a_bad_artefact_is_a_problem_value(text: str, expected: str) -> None:
    """Corrupt or incompatible artefacts come back as a ModelProblem saying what is wrong."""
    # when
    found = parse_model(text)

    # then
    assert isinstance(found, ModelProblem)
    assert expected in str(found)


def test_a_missing_artefact_file_is_a_problem_value(tmp_path: Path) -> None:
    """No file: the loader says so, and what to do, instead of raising."""
    # when
    found = load_model(tmp_path / "churn.json")

    # then
    assert isinstance(found, ModelProblem)
    assert "no model artefact at" in str(found)
    assert "nudge train" in str(found)


def test_walking_and_the_compiled_trees_give_the_same_bits() -> None:
    """Added onto the base in the same order, the two forms agree exactly, so a score does
    not depend on whether this process has compiled the model yet (live = backtest)."""
    # given
    rows, labels = _rows(2000, seed=3)
    booster = fit(rows, labels, GbdtParams(trees=60, depth=4))
    model = parse_model(_artefact(booster.base, booster.trees))
    assert isinstance(model, ScoreModel)
    unseen, _ = _rows(3000, seed=4)

    # when
    walked = [model.probability(row) for row in unseen]
    compiled = [model.fast_probability(row) for row in unseen]

    # then
    assert walked == compiled


def test_a_live_model_is_walked_until_compiling_pays_and_compiled_after() -> None:
    """The first PAYBACK_ROWS scores walk the arrays (no compile at a cold start); the next
    one compiles the trees, and the probabilities stay the same."""
    # given
    model = parse_model(_artefact(0.1, [STUMP, STUMP]))
    assert isinstance(model, ScoreModel)
    row: list[float | None] = [0.7, 0, 0, 0, 0]
    walked = [model.live_probability(row) for _ in range(PAYBACK_ROWS)]
    assert "_compiled" not in model.__dict__

    # when
    after = model.live_probability(row)

    # then
    assert "_compiled" in model.__dict__
    assert set(walked) == {after} == {model.probability(row)}
