"""How low and how high a model's score can be at each stretch of time since a person's
last activity: what lets the sweep leave out the recency splits where no score can move
across a threshold a trigger watches.

The trees split the time since the last activity (``days_inactive``) at some values; between
two consecutive splits every tree sends a row the same way at each of those nodes, so a
stretch fixes those branches and leaves the other features free. The lowest and highest sum
of leaves over the free branches, tree by tree, bound the score of anyone in that stretch.
Pure: the parsed model in, numbers out.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Set
from dataclasses import dataclass

from nudge.domain.predictions.score import LEAF, ScoreModel, Tree, logistic

__all__ = ["Stretch", "recency_stretches"]


@dataclass(frozen=True)
class Stretch:
    """Days since the last activity above ``after`` (and up to the next stretch's), and the
    lowest and highest score (0-100) anyone can have there."""

    after: float
    lowest: int
    highest: int


def recency_stretches(model: ScoreModel, columns: Set[int]) -> list[Stretch]:
    """The stretches between the splits on ``columns`` (the recency features), in order;
    the first starts at minus infinity (0 days and below)."""
    splits = sorted(
        {
            threshold
            for tree in model.trees
            for column, threshold in zip(tree.feature, tree.threshold, strict=True)
            if column in columns
        }
    )
    stretches = []
    for after in [-math.inf, *splits]:
        low = model.base + sum(_extreme(tree, 0, columns, after, min) for tree in model.trees)
        high = model.base + sum(_extreme(tree, 0, columns, after, max) for tree in model.trees)
        stretches.append(Stretch(after, round(100 * logistic(low)), round(100 * logistic(high))))
    return stretches


def _extreme(
    tree: Tree, node: int, columns: Set[int], after: float, pick: Callable[[float, float], float]
) -> float:
    """The least (``min``) or greatest (``max``) leaf a row in the stretch above ``after``
    can reach: at a recency split the stretch goes one way (right when the split is at or
    below ``after``: the value is above it), at any other split both ways are open."""
    column = tree.feature[node]
    if column == LEAF:
        return tree.value[node]
    left, right = tree.left[node], tree.right[node]
    if column in columns:
        return _extreme(
            tree, right if tree.threshold[node] <= after else left, columns, after, pick
        )
    return pick(
        _extreme(tree, left, columns, after, pick), _extreme(tree, right, columns, after, pick)
    )
