"""The Train function's use case: every prediction retrained from the stored events, and the
new model kept only if its held-out quality is not worse than the current one's
(``domain/predictions/keep.py``). The events are read once for all predictions.

No clock: the moment of training is passed in. scikit-learn is imported by ``train`` only
when a model is fitted (``adapters/gbdt.py``), so this module loads without it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from nudge.domain.intake import Event
from nudge.domain.predictions.keep import (
    Held,
    Verdict,
    held_out,
    keep_or_replace,
    measured_on,
    too_little,
)
from nudge.domain.predictions.live import LivePrediction
from nudge.domain.predictions.model import Prediction
from nudge.domain.predictions.sample import TRAINING_PEOPLE, PeopleSample
from nudge.domain.predictions.score import ModelProblem, ScoreModel, parse_model
from nudge.service.ports import ModelArtefacts, StoredEvents
from nudge.service.recorded_events import read_items
from nudge.service.train import Plan, TooLittleData, train

__all__ = ["Retrain", "Retrained"]


@dataclass(frozen=True)
class Retrained:
    """One verdict per prediction, and how many events were read and skipped (counts only:
    a skipped item's text may name a person)."""

    verdicts: list[Verdict]
    events: int
    skipped: int
    people: int = 0  # everyone whose events were read
    sampled: int = 0  # of them, those trained on


class Retrain:
    def __init__(
        self,
        events: StoredEvents,
        models: ModelArtefacts,
        predictions: Sequence[Prediction],
        plan: Plan | None = None,
        people: int = TRAINING_PEOPLE,
    ) -> None:
        self._events = events
        self._models = models
        self._predictions = predictions
        self._plan = plan or Plan()
        self._people = people

    def run(self, now: datetime) -> Retrained:
        sample = PeopleSample(self._people)
        events, skipped = read_items(self._events.every_event(), sample)
        verdicts = [self._one(prediction, events, now) for prediction in self._predictions]
        return Retrained(
            verdicts,
            events=len(events),
            skipped=len(skipped),
            people=len(sample.seen),
            sampled=len(sample.kept),
        )

    def _one(self, prediction: Prediction, events: Sequence[Event], now: datetime) -> Verdict:
        model = self._current(prediction)
        result = train(prediction, events, self._plan, now)
        if isinstance(result, TooLittleData):
            return too_little(prediction.id, held_out(model), result.message)
        rows = [(row.features, row.label) for row in result.split.held_out]
        current = measured_on(model, rows)
        new = Held(quality=result.report.quality, auc=result.report.auc)
        verdict = keep_or_replace(prediction.id, current, new)
        if verdict.action == "replaced":
            artefact = json.dumps(result.artefact, separators=(",", ":")).encode()
            self._models.write(prediction.id, artefact)
        return verdict

    def _current(self, prediction: Prediction) -> ScoreModel | ModelProblem:
        """The current artefact as Evaluate would load it: one that does not parse, or
        cannot score the prediction as defined now, does not count."""
        raw = self._models.read(prediction.id)
        if raw is None:
            return ModelProblem("no current model")
        return LivePrediction.of(prediction, parse_model(raw)).model
