"""The model artefact and its pure-Python scorer: what Evaluate loads to score a person.

The artefact is JSON: the feature names, a base score and the trees as arrays (a node's
feature, threshold, which side a missing value takes, its children and, at a leaf, its
value; and, in artefacts trained since contributions were added, ``count``: how many
training rows reached each node, which ``contributions.py`` needs and scoring does not).
A row goes left when its value is at most the threshold, or when it is missing
and the node says missing values go left; the leaves' values are summed onto the base and
the sum is a log-odds, so the probability is its logistic. That is what scikit-learn's
histogram gradient boosting computes, to the last bits of a double.

``VERSION`` changes only when an older reader would score a newer artefact wrongly. A field
a reader does not know is ignored, so an optional addition such as ``count`` keeps version
1: older Nudges score the newer artefact as before, and this one scores an older artefact
and says its contributions are not available.

No numpy, no I/O: parsing takes the text, and a bad artefact comes back as a
``ModelProblem`` value, never as an exception, so a caller can log it and score nothing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "FORMAT",
    "LEAF",
    "PAYBACK_ROWS",
    "VERSION",
    "ModelProblem",
    "ScoreModel",
    "Tree",
    "logistic",
    "parse_model",
]

FORMAT = "nudge-prediction-model"
VERSION = 1
LEAF = -1  # a node's feature at a leaf
# Rows a model scores walking before it is compiled: about the compile's cost over what
# compiling saves a row, whatever the model's size (both grow with its nodes; bench predict).
PAYBACK_ROWS = 3_000


@dataclass(frozen=True)
class Tree:
    """One tree of a model, as parallel arrays indexed by node (``LEAF`` marks a leaf)."""

    feature: list[int]
    threshold: list[float]
    missing_left: list[bool]
    left: list[int]
    right: list[int]
    value: list[float]
    # Training rows that reached each node (the cover), or None in an artefact from before
    # it was exported: what the expected value of an inner node is weighed by.
    count: list[int] | None = None

    def output(self, row: Sequence[float | None]) -> float:
        feature, threshold, left, right = self.feature, self.threshold, self.left, self.right
        node = 0
        while (index := feature[node]) != LEAF:
            x = row[index]
            goes_left = self.missing_left[node] if x is None or x != x else x <= threshold[node]
            node = left[node] if goes_left else right[node]
        return self.value[node]


@dataclass(frozen=True)
class ScoreModel:
    """A prediction's model as its artefact holds it: the features it reads, in order, and
    its trees."""

    prediction: str
    features: list[str]
    base: float
    trees: list[Tree]
    # What training reported and on which window: kept as written, for explain and reports.
    about: dict[str, Any] = field(default_factory=dict)

    def log_odds(self, row: Sequence[float | None]) -> float:
        """The sum by walking the arrays: the reference the compiled form is checked against.
        Added onto the base tree by tree, as the compiled function adds, so the two give the
        same bits and a score never depends on which of them gave it."""
        total = self.base
        for tree in self.trees:
            total += tree.output(row)
        return total

    def probability(self, row: Sequence[float | None]) -> float:
        return logistic(self.log_odds(row))

    def score(self, row: Sequence[float | None]) -> int:
        """0-100, the scale conditions use (``scores.churn gte 70``)."""
        return round(100 * self.fast_probability(row))

    def live_probability(self, row: Sequence[float | None]) -> float:
        """What Evaluate and the backtest score with: walking the arrays until the model has
        scored ``PAYBACK_ROWS`` rows in this process, then compiled. Compiling costs about as
        much as that many walks save (0.3 s against 90 µs a row for 200 trees of depth 6), so
        a cold start never pays for it, and a busy process stops walking once it has paid
        (the ski-rental rule: at most twice the better choice's cost)."""
        walked = self.__dict__.get("_walked", 0)
        if walked < PAYBACK_ROWS:
            object.__setattr__(self, "_walked", walked + 1)
            return self.probability(row)
        return self.fast_probability(row)

    def fast_probability(self, row: Sequence[float | None]) -> float:
        """The same probability, from the trees compiled to Python once (``_compile``):
        about three times faster than walking the arrays, for scoring on every event."""
        # Cached on the instance (frozen, so set past __setattr__): a model is compiled once
        # per process, when it first scores, and never if it never does.
        compiled = self.__dict__.get("_compiled")
        if compiled is None:
            compiled = _compile(self)
            object.__setattr__(self, "_compiled", compiled)
        return logistic(compiled([_MISSING if x is None else x for x in row]))

    def mismatch(self, prediction: str, features: Sequence[str]) -> ModelProblem | None:
        """Why this model cannot score the prediction as defined now (its features were
        edited since training, or it is another prediction's), or None when it can."""
        if prediction != self.prediction:
            return ModelProblem(
                f"the artefact is {self.prediction!r}'s model, not {prediction!r}'s"
            )
        if list(features) != self.features:
            return ModelProblem(
                f"{prediction}'s features changed since the model was trained: retrain it"
                f" (model: {', '.join(self.features)}; now: {', '.join(features)})"
            )
        return None


def logistic(raw: float) -> float:
    """1 / (1 + e^-raw), written to stay finite for any raw value."""
    if raw >= 0:
        return 1 / (1 + math.exp(-raw))
    small = math.exp(raw)
    return small / (1 + small)


_MISSING = math.nan


def _compile(model: ScoreModel) -> Callable[[list[float]], float]:
    """The trees as one Python function of nested ifs, built from the parsed numbers only
    (ints and floats written with repr: nothing from the file reaches the code as text).
    A missing value is NaN here: ``x <= t`` is false for it, so it goes right unless the
    node sends missing values left, where the test adds ``or x != x``."""
    lines = ["def compiled(r):", f"    s = {model.base!r}"]
    for tree in model.trees:
        _emit(tree, 0, 1, lines)
    lines.append("    return s")
    namespace: dict[str, Any] = {}
    exec(compile("\n".join(lines), f"<{model.prediction} trees>", "exec"), namespace)
    compiled: Callable[[list[float]], float] = namespace["compiled"]
    return compiled


def _emit(tree: Tree, node: int, depth: int, lines: list[str]) -> None:
    pad = "    " * depth
    feature = tree.feature[node]
    if feature == LEAF:
        lines.append(f"{pad}s += {tree.value[node]!r}")
        return
    threshold = repr(tree.threshold[node])
    test = f"r[{int(feature)}] <= {threshold}"
    if tree.missing_left[node]:
        test = f"{test} or r[{int(feature)}] != r[{int(feature)}]"
    lines.append(f"{pad}if {test}:")
    _emit(tree, tree.left[node], depth + 1, lines)
    lines.append(f"{pad}else:")
    _emit(tree, tree.right[node], depth + 1, lines)


@dataclass(frozen=True)
class ModelProblem:
    """Why there is no model to score with: none, one that does not parse, or one that does
    not fit the prediction as defined."""

    reason: str

    def __str__(self) -> str:
        return self.reason


def parse_model(text: str | bytes) -> ScoreModel | ModelProblem:
    try:
        document = json.loads(text)
    except (ValueError, UnicodeDecodeError) as error:
        return ModelProblem(f"the model artefact is not JSON ({error})")
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        return ModelProblem(f"not a prediction model artefact (format is not {FORMAT!r})")
    if document.get("version") != VERSION:
        return ModelProblem(
            f"model artefact version {document.get('version')!r} is not supported"
            f" (this Nudge reads version {VERSION}); retrain with this version"
        )
    try:
        return _model(document)
    except (KeyError, TypeError, ValueError) as error:
        return ModelProblem(f"the model artefact is corrupt: {error}")


def _model(document: dict[str, Any]) -> ScoreModel:
    features = [str(name) for name in document["features"]]
    trees = [_tree(index, raw, len(features)) for index, raw in enumerate(document["trees"])]
    about: dict[str, Any] = {
        key: document[key] for key in ("horizon", "trained", "metrics") if key in document
    }
    return ScoreModel(
        prediction=str(document["prediction"]),
        features=features,
        base=_number(document["base"]),
        trees=trees,
        about=about,
    )


def _tree(index: int, raw: dict[str, Any], features: int) -> Tree:
    tree = Tree(
        feature=[int(value) for value in raw["feature"]],
        threshold=[_number(value) for value in raw["threshold"]],
        missing_left=[bool(value) for value in raw["missing_left"]],
        left=[int(value) for value in raw["left"]],
        right=[int(value) for value in raw["right"]],
        value=[_number(value) for value in raw["value"]],
        count=[_count(value) for value in raw["count"]] if "count" in raw else None,
    )
    _check_shape(index, tree, features)
    _check_counts(index, tree)
    return tree


def _check_shape(index: int, tree: Tree, features: int) -> None:
    """Every array as long as the others, features that exist, and children after their
    parent (the arrays are in depth-first order): so scoring ends, and never indexes out."""
    size = len(tree.feature)
    columns = (tree.threshold, tree.missing_left, tree.left, tree.right, tree.value)
    if size == 0 or any(len(column) != size for column in columns):
        raise ValueError(f"tree {index}: its arrays differ in length")
    for node, feature in enumerate(tree.feature):
        if feature == LEAF:
            continue
        if not 0 <= feature < features:
            raise ValueError(f"tree {index} node {node}: feature {feature} does not exist")
        if not node < tree.left[node] < size or not node < tree.right[node] < size:
            raise ValueError(f"tree {index} node {node}: a child is out of order")


def _check_counts(index: int, tree: Tree) -> None:
    """Counts as long as the other arrays, and each inner node's the sum of its children's
    (every training row goes one way or the other): attributions weigh a child by its
    share of its parent, and the shares must add up to one for them to add up to the score."""
    count = tree.count
    if count is None:
        return
    if len(count) != len(tree.feature):
        raise ValueError(f"tree {index}: its arrays differ in length")
    for node, feature in enumerate(tree.feature):
        if feature != LEAF and count[node] != count[tree.left[node]] + count[tree.right[node]]:
            raise ValueError(f"tree {index} node {node}: its count is not its children's sum")


def _count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"count {value!r} is not a whole number of rows above 0")
    return value


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{value!r} is not a number")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not a finite number")
    return number
