"""Gradient-boosted trees from scikit-learn's HistGradientBoostingClassifier, exported to
the artefact's arrays (``domain/predictions/score.py``).

Only ``nudge train`` imports this (scikit-learn is the optional ``train`` extra, never in
the Lambda layer): the import is inside the functions, so importing the module is free.
The export reads the fitted model's predictors, ``_predictors`` and
``_baseline_prediction``: private attributes, so the scikit-learn range is pinned in
pyproject.toml and tests/unit/test_prediction_scorer.py proves the export on every run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Booster", "GbdtParams", "fit", "library_version"]

BIG = 1e300  # an infinite threshold (every finite value goes left), as JSON can write it


@dataclass(frozen=True)
class GbdtParams:
    """The trees' parameters: how many, how deep, how fast they learn and how they are held
    back."""

    trees: int = 200
    depth: int = 6
    learning_rate: float = 0.05
    leaves: int | None = 31
    min_leaf: int = 40
    l2: float = 1.0
    seed: int = 0


@dataclass
class Booster:
    """A fitted model: its arrays for the artefact, and the library's own predict."""

    base: float
    trees: list[dict[str, list[Any]]]
    gain: list[float]  # total split gain per feature: what the trees lean on
    model: Any

    def predict(self, rows: Sequence[Sequence[float | None]]) -> list[float]:
        """The library's probabilities: what the pure scorer must reproduce."""
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=1):
            return [float(p) for p in self.model.predict_proba(_matrix(rows))[:, 1]]


def library_version() -> str:
    import sklearn

    return f"scikit-learn {sklearn.__version__}"


def fit(
    rows: Sequence[Sequence[float | None]], labels: Sequence[bool], params: GbdtParams
) -> Booster:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from threadpoolctl import threadpool_limits

    model = HistGradientBoostingClassifier(
        max_iter=params.trees,
        max_depth=params.depth,
        learning_rate=params.learning_rate,
        max_leaf_nodes=params.leaves,
        min_samples_leaf=params.min_leaf,
        l2_regularization=params.l2,
        early_stopping=False,  # every tree is kept: the held-out cut-offs judge the model
        random_state=params.seed,
    )
    # One thread: OpenMP's worker threads spin while they wait, and on a busy machine (a
    # laptop, CI) that made the same fit take from 3 s to 30 s; one thread is steady.
    with threadpool_limits(limits=1):
        model.fit(_matrix(rows), [int(label) for label in labels])
    width = len(rows[0]) if rows else 0
    gain = [0.0] * width
    trees = [_export(iteration[0].nodes, gain) for iteration in model._predictors]
    return Booster(
        base=float(model._baseline_prediction[0][0]), trees=trees, gain=gain, model=model
    )


def _matrix(rows: Sequence[Sequence[float | None]]) -> Any:
    import numpy

    return numpy.array(
        [[math.nan if value is None else value for value in row] for row in rows], dtype=float
    )


def _export(nodes: Any, gain: list[float]) -> dict[str, list[Any]]:
    tree: dict[str, list[Any]] = {
        key: []
        for key in ("feature", "threshold", "missing_left", "left", "right", "value", "count")
    }
    for node in nodes:
        leaf = bool(node["is_leaf"])
        if node["is_categorical"]:
            raise ValueError("categorical splits cannot be exported")  # never asked for
        tree["feature"].append(-1 if leaf else int(node["feature_idx"]))
        threshold = float(node["num_threshold"])
        tree["threshold"].append(0.0 if leaf else min(threshold, BIG))
        tree["missing_left"].append(0 if leaf else int(node["missing_go_to_left"]))
        tree["left"].append(0 if leaf else int(node["left"]))
        tree["right"].append(0 if leaf else int(node["right"]))
        # An inner node's own ``value`` is the library's unshrunk Newton step, not the mean
        # of the leaves below it, so it is left out: contributions weigh the leaves by
        # ``count``, the training rows that reached each node (domain/predictions/contributions.py).
        tree["value"].append(float(node["value"]) if leaf else 0.0)
        tree["count"].append(int(node["count"]))
        if not leaf:
            gain[int(node["feature_idx"])] += max(0.0, float(node["gain"]))
    return tree
