"""Keep the current model or replace it with the one just trained: the Train function's
rule, pure. The new model replaces the current one only when its held-out prediction
quality is not worse than the current model's on the same held-out rows; a current artefact
that cannot score the prediction (missing, corrupt, another version, features edited since)
is replaced by any new model, and too little data keeps whatever is there."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from nudge.domain.predictions.metrics import auc, prediction_quality
from nudge.domain.predictions.score import ModelProblem, ScoreModel

__all__ = ["Held", "Verdict", "held_out", "keep_or_replace", "measured_on", "too_little"]


@dataclass(frozen=True)
class Held:
    """A model's held-out quality: the average lift over random (0 to 1) and its AUC."""

    quality: float
    auc: float


@dataclass(frozen=True)
class Verdict:
    """What happened to one prediction's model, and why: what the Train function logs."""

    prediction: str
    action: Literal["kept", "replaced"]
    old: Held | None
    new: Held | None
    reason: str

    def to_log(self) -> dict[str, Any]:
        """The decision's structured log line: names and numbers, never a person."""
        return {
            "prediction": self.prediction,
            "decision": self.action,
            "old_quality": self.old.quality if self.old else None,
            "new_quality": self.new.quality if self.new else None,
            "old_auc": self.old.auc if self.old else None,
            "new_auc": self.new.auc if self.new else None,
            "reason": self.reason,
        }


def held_out(current: ScoreModel | ModelProblem) -> Held | ModelProblem:
    """The quality the current artefact's training measured (its ``metrics``), or why the
    current model does not count: it does not load or cannot score, or says nothing of it."""
    if isinstance(current, ModelProblem):
        return current
    metrics = current.about.get("metrics")
    quality = metrics.get("quality") if isinstance(metrics, dict) else None
    measured = metrics.get("auc") if isinstance(metrics, dict) else None
    if not isinstance(quality, int | float) or not isinstance(measured, int | float):
        return ModelProblem("the current artefact has no held-out quality (metrics.quality)")
    if not math.isfinite(quality) or not math.isfinite(measured):
        return ModelProblem("the current artefact's held-out quality is not a finite number")
    return Held(quality=float(quality), auc=float(measured))


def measured_on(
    current: ScoreModel | ModelProblem, rows: Sequence[tuple[Sequence[float | None], bool]]
) -> Held | ModelProblem:
    """The current model's quality on the new model's held-out rows (features, label): the
    two compared on the same people and weeks. The quality stored in the current artefact
    was measured on older weeks, another population; it stands in only when the rows say
    nothing (one class) or the model cannot score them."""
    if isinstance(current, ModelProblem):
        return current
    scores = [current.probability(features) for features, _ in rows]
    labels = [label for _, label in rows]
    try:
        return Held(quality=prediction_quality(scores, labels), auc=auc(scores, labels))
    except ValueError:  # one class only: no ranking to judge
        return held_out(current)


def keep_or_replace(prediction: str, current: Held | ModelProblem, new: Held) -> Verdict:
    if isinstance(current, ModelProblem):
        return Verdict(prediction, "replaced", None, new, f"no usable current model: {current}")
    if new.quality >= current.quality:
        # Equal counts as not worse: the new model has seen the latest weeks.
        return Verdict(
            prediction, "replaced", current, new, "held-out quality not worse than the current"
        )
    return Verdict(prediction, "kept", current, new, "the new model's held-out quality is worse")


def too_little(prediction: str, current: Held | ModelProblem, why: str) -> Verdict:
    """No new model (too little data): the current artefact, if any, stays."""
    old = current if isinstance(current, Held) else None
    return Verdict(prediction, "kept", old, None, why)
