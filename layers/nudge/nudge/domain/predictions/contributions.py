"""Why a person's score is what it is: each feature's share of their log-odds.

Exact TreeSHAP (Lundberg, Erion and Lee, "Consistent Individualized Feature Attribution
for Tree Ensembles", 2018, Algorithm 2), the path-dependent kind: a feature's contribution
is its Shapley value, where leaving a feature out means following both sides of its
splits, weighed by the training rows that went each way (the artefact's ``count``). Per
tree it costs leaves x depth²: about 5 ms a person for the shipped model and 80 ms for 200
trees of depth 6 (bench/README.md), which explain, asked about one person, can pay.
Saabas' path attribution (each split on the row's path credits its feature with the
change of expected value) costs only depth, but hands an interaction to whichever feature
splits lower and is not consistent (a model changed so a feature matters more can credit
it less); TreeSHAP is, and its contributions still add up exactly: base + sum of
contributions = the row's log-odds.

Pure: the model and the row in, numbers out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nudge.domain.predictions.score import LEAF, ModelProblem, ScoreModel, Tree, logistic

__all__ = ["Attribution", "Contribution", "Explained", "attribute", "explained"]


@dataclass(frozen=True)
class Attribution:
    """``base`` is the log-odds of a person the model knows nothing about (the training
    rows' average through the trees); ``contributions[i]`` is what feature ``i`` of this
    row moved it by. ``base + sum(contributions)`` is the row's log-odds."""

    base: float
    contributions: list[float]

    @property
    def log_odds(self) -> float:
        return self.base + sum(self.contributions)


def attribute(model: ScoreModel, row: Sequence[float | None]) -> Attribution | ModelProblem:
    """Each feature's contribution to the row's log-odds, or why the model cannot say."""
    if any(tree.count is None for tree in model.trees):
        return ModelProblem(
            "this model version was trained before artefacts carried node counts, so its"
            " contributions are not available: retrain it (nudge train) to see them"
        )
    contributions = [0.0] * len(model.features)
    base = model.base
    for tree in model.trees:
        base += _expected(tree, 0)
        _tree_shap(tree, row, contributions)
    return Attribution(base, contributions)


@dataclass(frozen=True)
class Contribution:
    feature: str  # as the artefact names it (``profile.days_inactive``, ``count(page, 7d)``)
    value: float | None  # the person's value of it; None when missing
    log_odds: float
    points: float  # the same on the 0-100 score scale (``Explained``)


@dataclass(frozen=True)
class Explained:
    """A score taken apart, the largest contributions first.

    On the 0-100 scale a marketer reads, contributions do not add up by themselves (the
    logistic bends), so each is the log-odds one scaled by the same factor: the score's
    distance from the base score over the log-odds' distance from the base log-odds. The
    points then add up to the score exactly, keep the log-odds' order and signs, and are
    the log-odds ones at that slope; the log-odds stay beside them, the exact figures."""

    base_log_odds: float
    base_score: float  # 0-100: the score of a person the model knows nothing about
    log_odds: float
    score: float  # 0-100, unrounded
    contributions: list[Contribution]


def explained(model: ScoreModel, row: Sequence[float | None]) -> Explained | ModelProblem:
    attribution = attribute(model, row)
    if isinstance(attribution, ModelProblem):
        return attribution
    base, log_odds = attribution.base, attribution.log_odds
    base_score, score = 100 * logistic(base), 100 * logistic(log_odds)
    if abs(log_odds - base) > 1e-9:
        slope = (score - base_score) / (log_odds - base)
    else:  # no distance to share out: the logistic's own slope there
        slope = score * (1 - score / 100)
    contributions = [
        Contribution(name, _known(row[index]), share, share * slope)
        for index, (name, share) in enumerate(
            zip(model.features, attribution.contributions, strict=True)
        )
    ]
    contributions.sort(key=lambda contribution: -abs(contribution.log_odds))
    return Explained(base, base_score, log_odds, score, contributions)


def _known(value: float | None) -> float | None:
    return None if value is None or value != value else value  # NaN is missing too


def _expected(tree: Tree, node: int) -> float:
    """The mean output of the tree over the training rows that reached ``node``."""
    if tree.feature[node] == LEAF:
        return tree.value[node]
    count = _counts(tree)
    left, right = tree.left[node], tree.right[node]
    weighed = count[left] * _expected(tree, left) + count[right] * _expected(tree, right)
    return weighed / count[node]


def _counts(tree: Tree) -> list[int]:
    assert tree.count is not None  # attribute() checked every tree
    return tree.count


def _goes_left(tree: Tree, node: int, row: Sequence[float | None]) -> bool:
    """The scorer's rule (``Tree.output``): at most the threshold, or missing and the node
    sends missing values left."""
    x = row[tree.feature[node]]
    return tree.missing_left[node] if x is None or x != x else x <= tree.threshold[node]


def _tree_shap(tree: Tree, row: Sequence[float | None], out: list[float]) -> None:
    _Walk(tree, _counts(tree), row, out).visit(0, _Path([], [], [], []), 1.0, 1.0, LEAF)


@dataclass(frozen=True)
class _Walk:
    """One tree's walk for one row, adding each feature's share to ``out``."""

    tree: Tree
    count: list[int]
    row: Sequence[float | None]
    out: list[float]

    def visit(self, node: int, parent: _Path, zero: float, one: float, feature: int) -> None:
        tree = self.tree
        path = parent.extended(zero, one, feature)
        split = tree.feature[node]
        if split == LEAF:
            value = tree.value[node]
            for index in range(1, len(path.features)):
                share = path.total_without(index)
                self.out[path.features[index]] += (
                    share * (path.ones[index] - path.zeros[index]) * value
                )
            return
        count = self.count
        left, right = tree.left[node], tree.right[node]
        hot, cold = (left, right) if _goes_left(tree, node, self.row) else (right, left)
        incoming_zero, incoming_one = 1.0, 1.0
        # A feature split on twice along the path is one player: its earlier step is taken
        # out and its fractions carried into the new one.
        if split in path.features:
            seen = path.features.index(split)
            incoming_zero, incoming_one = path.zeros[seen], path.ones[seen]
            path = path.without(seen)
        self.visit(hot, path, count[hot] / count[node] * incoming_zero, incoming_one, split)
        self.visit(cold, path, count[cold] / count[node] * incoming_zero, 0.0, split)


@dataclass(frozen=True)
class _Path:
    """The path from the root to the node visited, one step per distinct feature split on
    (the first is the root's, of no feature): the fraction of training rows that kept to
    the path at the feature's splits (``zeros``: the feature left out), whether the row
    itself keeps to it (``ones``: 1 or 0), and ``weights``, by subset size, the share of
    the orders in which the path's features can be learnt. Never changed: a node extends
    its parent's into a copy, so the two children share their parent's."""

    features: list[int]
    zeros: list[float]
    ones: list[float]
    weights: list[float]

    def extended(self, zero: float, one: float, feature: int) -> _Path:
        depth = len(self.weights)
        weights = [*self.weights, 1.0 if depth == 0 else 0.0]
        for i in range(depth - 1, -1, -1):
            weights[i + 1] += one * weights[i] * (i + 1) / (depth + 1)
            weights[i] = zero * weights[i] * (depth - i) / (depth + 1)
        return _Path([*self.features, feature], [*self.zeros, zero], [*self.ones, one], weights)

    def without(self, index: int) -> _Path:
        """The path as if it had never been extended by its ``index``-th step."""
        depth = len(self.weights) - 1
        one, zero = self.ones[index], self.zeros[index]
        weights = self.weights[:depth]
        following = self.weights[depth]
        for i in range(depth - 1, -1, -1):
            if one != 0:
                kept = weights[i]
                weights[i] = following * (depth + 1) / ((i + 1) * one)
                following = kept - weights[i] * zero * (depth - i) / (depth + 1)
            else:
                weights[i] = weights[i] * (depth + 1) / (zero * (depth - i))

        # The weights stay where they are; the steps after ``index`` move up one place.
        def drop(column: list[Any]) -> list[Any]:
            return column[:index] + column[index + 1 :]

        return _Path(drop(self.features), drop(self.zeros), drop(self.ones), weights)

    def total_without(self, index: int) -> float:
        """The total of the weights the path would have without its ``index``-th step."""
        depth = len(self.weights) - 1
        one, zero = self.ones[index], self.zeros[index]
        weights = self.weights
        following = weights[depth]
        total = 0.0
        for i in range(depth - 1, -1, -1):
            if one != 0:
                weight = following * (depth + 1) / ((i + 1) * one)
                total += weight
                following = weights[i] - weight * zero * (depth - i) / (depth + 1)
            else:
                total += weights[i] / (zero * (depth - i) / (depth + 1))
        return total
