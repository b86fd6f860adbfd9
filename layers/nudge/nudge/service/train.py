"""``nudge train``'s use case: a training set from recorded events, a model, its quality
on held-out cut-offs and the artefact that carries it.

No I/O and no clock: the events, the moment of training and (on the simulator) the true
probabilities are passed in. The library is behind ``adapters/gbdt.py``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from nudge.adapters.gbdt import Booster, GbdtParams, fit, library_version
from nudge.domain.intake import Event
from nudge.domain.person import PersonId
from nudge.domain.predictions.metrics import CalibrationBin, auc, calibration, prediction_quality
from nudge.domain.predictions.model import Prediction, feature_name
from nudge.domain.predictions.score import FORMAT, VERSION, ScoreModel, parse_model
from nudge.domain.triggers.common import words
from nudge.service.training_set import Row, Split, cutoff_times, split_by_time, training_rows

__all__ = [
    "MIN_EXAMPLES",
    "MIN_HELD_OUT",
    "Plan",
    "TooLittleData",
    "Trained",
    "TrainingReport",
    "train",
]

# Fewer positives or negatives than this and a model learns noise: training stops.
MIN_EXAMPLES = 50
MIN_HELD_OUT = 20  # of each, in the held-out cut-offs: fewer and the AUC is a guess

Truth = Callable[[PersonId, datetime], float | None]


@dataclass(frozen=True)
class Plan:
    """How to train: the cut-offs (how many, how far apart, the latest held out) and the
    trees' parameters. The defaults are `nudge train`'s and the Train function's."""

    cutoffs: int = 8
    every: timedelta = timedelta(days=7)
    held_out: int = 2
    params: GbdtParams = field(default_factory=GbdtParams)


@dataclass(frozen=True)
class TrainingReport:
    """What a training run measured: the rows on each side of the split, the held-out
    quality and calibration, and what the trees lean on."""

    train_rows: int
    train_positives: int
    held_out_rows: int
    held_out_positives: int
    train_cutoffs: list[str]
    held_out_cutoffs: list[str]
    auc: float
    quality: float
    calibration: list[CalibrationBin]
    importance: list[tuple[str, float]]  # feature, share of the total split gain
    # On the simulator: the same measures for the true probabilities (the ceiling).
    ceiling_auc: float | None = None
    ceiling_quality: float | None = None
    ceiling_rows: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Trained:
    """A model trained: its report, its artefact and scorer, the library's fitted booster, and
    the split of rows it was trained and judged on."""

    report: TrainingReport
    artefact: dict[str, Any]
    model: ScoreModel
    booster: Booster
    split: Split


@dataclass(frozen=True)
class TooLittleData:
    """Why no model was trained: no events, or too few positives or negatives on a side of
    the split."""

    message: str


def train(
    prediction: Prediction,
    events: Sequence[Event],
    plan: Plan,
    trained_at: datetime,
    truth: Truth | None = None,
) -> Trained | TooLittleData:
    if not events:
        return TooLittleData("no events to learn from")
    cutoffs = cutoff_times(
        events[0].timestamp, events[-1].timestamp, prediction.horizon, plan.cutoffs, plan.every
    )
    rows = training_rows(events, prediction, cutoffs)
    split = split_by_time(rows, cutoffs, prediction.horizon, plan.held_out)
    short = _too_little(prediction, split)
    if short:
        return short
    booster = fit(
        [row.features for row in split.train], [row.label for row in split.train], plan.params
    )
    report = _report(prediction, split, booster, truth)
    artefact = _artefact(prediction, booster, report, trained_at, plan)
    model = parse_model(_json(artefact))
    if not isinstance(model, ScoreModel):  # the export and the parser disagree: a bug here
        raise AssertionError(f"the artefact just made does not load: {model}")
    return Trained(report=report, artefact=artefact, model=model, booster=booster, split=split)


def _too_little(prediction: Prediction, split: Split) -> TooLittleData | None:
    counts = {
        "training": _counts(split.train),
        "held-out": _counts(split.held_out),
    }
    for name, (positives, negatives) in counts.items():
        needed = MIN_EXAMPLES if name == "training" else MIN_HELD_OUT
        if positives < needed or negatives < needed:
            return TooLittleData(
                f"too little data to train {prediction.id}: {positives} positive and"
                f" {negatives} negative examples in the {name} cut-offs; at least {needed}"
                " of each are needed (more history or people, more --cutoffs, or a shorter"
                " horizon). No model was written."
            )
    return None


def _counts(rows: Sequence[Row]) -> tuple[int, int]:
    positives = sum(row.label for row in rows)
    return positives, len(rows) - positives


def _report(
    prediction: Prediction, split: Split, booster: Booster, truth: Truth | None
) -> TrainingReport:
    labels = [row.label for row in split.held_out]
    probabilities = booster.predict([row.features for row in split.held_out])
    total_gain = sum(booster.gain) or 1.0
    names = [feature_name(feature) for feature in prediction.feature_list]
    importance = sorted(
        ((name, gain / total_gain) for name, gain in zip(names, booster.gain, strict=True)),
        key=lambda pair: -pair[1],
    )
    ceiling_auc = ceiling_quality = None
    known: list[tuple[float, bool]] = []
    if truth is not None:
        for row in split.held_out:
            value = truth(row.person, row.cutoff)
            if value is not None:
                known.append((value, row.label))
        if known and 0 < sum(label for _, label in known) < len(known):
            ceiling_auc = auc([p for p, _ in known], [label for _, label in known])
            ceiling_quality = prediction_quality(
                [p for p, _ in known], [label for _, label in known]
            )
    return TrainingReport(
        train_rows=len(split.train),
        train_positives=sum(row.label for row in split.train),
        held_out_rows=len(split.held_out),
        held_out_positives=sum(labels),
        train_cutoffs=[moment.isoformat() for moment in split.train_cutoffs],
        held_out_cutoffs=[moment.isoformat() for moment in split.held_out_cutoffs],
        auc=auc(probabilities, labels),
        quality=prediction_quality(probabilities, labels),
        calibration=calibration(probabilities, labels),
        importance=importance,
        ceiling_auc=ceiling_auc,
        ceiling_quality=ceiling_quality,
        ceiling_rows=len(known),
    )


def _artefact(
    prediction: Prediction,
    booster: Booster,
    report: TrainingReport,
    trained_at: datetime,
    plan: Plan,
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "prediction": prediction.id,
        "horizon": words(prediction.horizon),
        "features": [feature_name(feature) for feature in prediction.feature_list],
        "base": booster.base,
        "trees": booster.trees,
        "trained": {
            "at": trained_at.isoformat(),
            "library": library_version(),
            "params": asdict(plan.params),
            "cutoffs": report.train_cutoffs,
            "held_out_cutoffs": report.held_out_cutoffs,
            "rows": report.train_rows,
            "positives": report.train_positives,
        },
        "metrics": {
            "auc": report.auc,
            "quality": report.quality,
            "held_out_rows": report.held_out_rows,
            "held_out_positives": report.held_out_positives,
            "calibration": [asdict(row) for row in report.calibration],
            "importance": dict(report.importance),
            "ceiling_auc": report.ceiling_auc,
        },
    }


def _json(document: dict[str, Any]) -> str:
    return json.dumps(document, separators=(",", ":"))
