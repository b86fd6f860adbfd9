"""Scores on every event and the triggers that read them, on the in-memory fakes: Evaluate
scores the person after each fold, keeps the score on their profile, and a trigger with
``when: {score: churn, crosses: 70}`` fires when the score rises through 70, once; the
backtest decides the same; a missing or corrupt model scores nothing and says why.

The model here is written by hand (one tree: three sessions or more is a score of 88,
fewer is 12), so the score each visit gives is known; tests/unit/test_prediction_*.py
cover a trained one."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from nudge.adapters.model_file import load_scoring
from nudge.domain.intake import StoredEvent
from nudge.domain.messages import FireMessage
from nudge.domain.person import PersonId
from nudge.domain.predictions.live import LivePrediction, Scoring
from nudge.domain.predictions.loader import parse_prediction
from nudge.domain.predictions.score import ModelProblem, parse_model
from nudge.domain.triggers.engine import TriggerIndex
from nudge.domain.triggers.loader import parse_trigger
from nudge.domain.triggers.model import Trigger
from nudge.service.backtest import backtest
from nudge.service.evaluate import EvaluateService

from tests.conftest import REPO
from tests.fakes import (
    FakeQueue,
    FakeScheduler,
    InMemoryEngineStore,
    InMemoryExperiments,
    InMemoryPeople,
)
from tests.unit.builders import parse

NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)  # visits an hour apart are separate sessions (30 minutes' gap)
ARN = "arn:aws:lambda:us-east-1:123456789012:function:nudge-Evaluate"
ADA = PersonId.user("ada")

PREDICTION = """\
id: churn
label:
  inactive: 14d
audience:
  path: profile.sessions
  gte: 2
features:
  - profile.sessions
"""
MODEL = {
    "format": "nudge-prediction-model",
    "version": 1,
    "prediction": "churn",
    "features": ["profile.sessions"],
    "base": 0.0,
    "trees": [
        {
            "feature": [0, -1, -1],
            "threshold": [2.5, 0.0, 0.0],
            "missing_left": [False, False, False],
            "left": [1, 0, 0],
            "right": [2, 0, 0],
            "value": [0.0, -2.0, 2.0],  # logistic(-2) = 12 %, logistic(2) = 88 %
            "count": [100, 60, 40],  # training rows at each node: what contributions weigh
        }
    ],
    "trained": {"at": "2026-11-01T00:00:00+00:00"},
}
CHURN_RISK = """\
id: churn_risk
when:
  score: churn
  crosses: 70
send:
  channel: email
  template: churn_risk
"""
HIGH_SCORE_VIEW = """\
id: high_score_view
when:
  event: page
audience:
  path: profile.scores.churn
  gte: 70
send:
  channel: email
  template: churn_risk
"""


def _prediction() -> Any:
    prediction, problems = parse_prediction(PREDICTION, "churn.yaml")
    assert problems == []
    assert prediction is not None
    return prediction


def _scoring(model: dict[str, Any] | str = MODEL) -> Scoring:
    text = model if isinstance(model, str) else json.dumps(model)
    return Scoring((LivePrediction.of(_prediction(), parse_model(text)),))


def _trigger(text: str) -> Trigger:
    trigger, problems = parse_trigger(text, "trigger.yaml")
    assert problems == []
    assert trigger is not None
    return trigger


def _visit(number: int) -> dict[str, Any]:
    """ada's page view in her ``number``-th session (each an hour after the last)."""
    at = NOW + number * HOUR
    return {
        "type": "page",
        "userId": "ada",
        "name": "home",
        "messageId": f"home-{number}",
        "timestamp": at.isoformat(),
    }


@dataclass
class World:
    service: EvaluateService
    people: InMemoryPeople
    engine: InMemoryEngineStore
    queue: FakeQueue
    sequences: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def visit(self, number: int) -> None:
        """ada's visit, stored as Ingest stores it and decided at its own time."""
        at = NOW + number * HOUR
        intake = parse({"batch": [_visit(number)]}, route="batch", received_at=at)
        stored = [StoredEvent(person=ADA, event=event) for event in intake.events]
        self.people.put_events(stored, {}, timedelta(days=90))
        work = self.service.batch(stored, ARN, at)
        for each in stored:
            work.handle(next(self.sequences), each, at)
        assert work.finish() == set()

    def sent(self) -> list[FireMessage]:
        return [queued.fire for queued in self.queue.messages]

    def fired(self, trigger: str) -> list[str]:
        return [d.outcome for d in self.engine.decisions if d.trigger == trigger]


def _world(scoring: Scoring, *triggers: str) -> World:
    people, engine, queue = InMemoryPeople(), InMemoryEngineStore(), FakeQueue()
    service = EvaluateService(
        events=people,
        engine=engine,
        reminders=FakeScheduler(),
        queue=queue,
        index=TriggerIndex.of([_trigger(text) for text in triggers or (CHURN_RISK,)]),
        experiments=InMemoryExperiments(),
        scoring=scoring,
    )
    return World(service, people, engine, queue)


# ---- scores on the profile ------------------------------------------------------------------


def test_a_person_in_the_audience_is_scored_and_the_score_kept_on_the_profile() -> None:
    """After a second session ada is in churn's audience: her score (12) and the model's
    version ride on the profile Evaluate saves anyway."""
    # given
    world = _world(_scoring())

    # when
    world.visit(1)
    world.visit(2)

    # then
    profile = world.people.profiles[ADA]
    assert profile.scores == {"churn": 12}
    assert profile.score_models == {"churn": "20261101T0000Z"}


def test_a_person_outside_the_audience_has_no_score() -> None:
    """One session is not churn's audience (sessions >= 2): nothing is scored."""
    # given
    world = _world(_scoring())

    # when
    world.visit(1)

    # then
    assert world.people.profiles[ADA].scores == {}


# ---- when: {score, crosses} -----------------------------------------------------------------


def test_a_score_rising_through_70_fires_churn_risk_once() -> None:
    """12 after the second session, 88 after the third: the third fires, one message."""
    # given
    world = _world(_scoring())
    world.visit(1)
    world.visit(2)

    # when
    world.visit(3)

    # then
    assert world.fired("churn_risk") == ["fired"]
    assert [message.trigger for message in world.sent()] == ["churn_risk"]


def test_a_score_that_stays_above_70_does_not_fire_again() -> None:
    """The fourth session keeps the score at 88: no second message, and the profile says why."""
    # given
    world = _world(_scoring())
    for number in (1, 2, 3):
        world.visit(number)

    # when
    world.visit(4)

    # then
    assert len(world.sent()) == 1
    miss = world.people.profiles[ADA].misses["churn_risk"]
    assert miss.outcome == "not_matched"
    assert miss.reason == "churn score 88 was already at or above 70 (88 before)"


def test_a_score_below_the_threshold_is_not_matched_with_the_score() -> None:
    """At 12 the trigger does not match, and explain's reason gives the number."""
    # given
    world = _world(_scoring())
    world.visit(1)

    # when
    world.visit(2)

    # then
    assert world.sent() == []
    assert world.people.profiles[ADA].misses["churn_risk"].reason == ("churn score 12 is below 70")


def test_profile_scores_is_a_path_any_condition_can_read() -> None:
    """An audience on profile.scores.churn gte 70 holds from the third session on."""
    # given
    world = _world(_scoring(), HIGH_SCORE_VIEW)
    world.visit(1)
    world.visit(2)

    # when
    world.visit(3)

    # then
    assert world.fired("high_score_view") == ["fired"]
    assert "profile.scores.churn" in world.people.profiles[ADA].misses["high_score_view"].reason


# ---- no model --------------------------------------------------------------------------------


def test_a_missing_artefact_scores_nothing_and_the_trigger_says_why(tmp_path: Path) -> None:
    """No models/churn.json: Evaluate runs, scores nothing, and churn_risk is not matched
    with the loader's reason."""
    # given
    predictions = tmp_path / "predictions"
    predictions.mkdir()
    (predictions / "churn.yaml").write_text(PREDICTION, encoding="utf-8")
    scoring, problems = load_scoring(predictions, tmp_path / "models")
    world = _world(scoring)

    # when
    for number in (1, 2, 3):
        world.visit(number)

    # then
    assert len(problems) == 1
    assert "no model artefact" in problems[0]
    assert world.people.profiles[ADA].scores == {}
    assert world.sent() == []
    reason = world.people.profiles[ADA].misses["churn_risk"].reason
    assert reason.startswith("churn has no model: ")
    assert "no model artefact at" in reason


def test_a_corrupt_artefact_scores_nothing_and_nothing_crashes() -> None:
    """A truncated artefact is a problem value, not an exception: the events are decided."""
    # given
    world = _world(_scoring(json.dumps(MODEL)[:50]))

    # when
    for number in (1, 2, 3):
        world.visit(number)

    # then
    assert world.people.profiles[ADA].scores == {}
    assert world.sent() == []
    assert "not JSON" in world.people.profiles[ADA].misses["churn_risk"].reason


def test_a_model_of_other_features_is_refused_as_incompatible() -> None:
    """A model trained on other features than the prediction lists cannot score it."""
    # given
    other = {**MODEL, "features": ["profile.pages"]}

    # when
    scoring = _scoring(other)

    # then
    (live,) = scoring.predictions
    assert isinstance(live.model, ModelProblem)
    assert "features changed since the model was trained" in str(live.model)


# ---- the backtest decides the same -----------------------------------------------------------


def test_the_backtest_fires_what_the_live_path_fires() -> None:
    """Four visits replayed: the same one fire of churn_risk, on the same event."""
    # given
    world = _world(_scoring())
    for number in (1, 2, 3, 4):
        world.visit(number)
    events = [
        parse({"batch": [_visit(n)]}, route="batch", received_at=NOW + n * HOUR).events[0]
        for n in (1, 2, 3, 4)
    ]

    # when
    report = backtest(events, [_trigger(CHURN_RISK)], scoring=_scoring())

    # then
    live = [(m.trigger, m.occurrence) for m in world.sent()]
    replayed = [(fire.trigger, fire.occurrence) for fire in report.fired]
    assert replayed == live == [("churn_risk", "event=home-3")]


# ---- the shipped prediction and model ----------------------------------------------------------


def test_the_shipped_churn_model_scores_the_shipped_churn_prediction() -> None:
    """models/churn.json fits predictions/churn.yaml (the local stack scores with them)."""
    # given
    folder = REPO

    # when
    scoring, problems = load_scoring(folder / "predictions", folder / "models")

    # then
    assert problems == [
        "prediction purchase: no model artefact at"
        f" {folder / 'models' / 'purchase.json'}: run nudge train first"
    ]
    churn = next(live for live in scoring.predictions if live.prediction.id == "churn")
    assert not isinstance(churn.model, ModelProblem)
    assert (folder / "models" / "churn.json").stat().st_size < 100_000


# ---- what scoring reads -------------------------------------------------------------------------


class CountingPeople(InMemoryPeople):
    """The fake store, counting history reads (a Query each on the table)."""

    reads: int = 0

    def events_since(self, person: PersonId, since: datetime, now: datetime) -> list[Any]:
        self.reads += 1
        return super().events_since(person, since, now)


def test_history_is_read_only_for_someone_a_prediction_scores() -> None:
    """A first session (outside churn's audience) reads no history; the second, scored,
    reads it once, as far back as the features count."""
    # given: a churn prediction that also counts page views in the last 7 days
    counting = PREDICTION + "  - count: page\n    within: 7d\n"
    prediction, _ = parse_prediction(counting, "churn.yaml")
    assert prediction is not None
    model = {**MODEL, "features": ["profile.sessions", "count(page, 7d)"]}
    world = _world(Scoring((LivePrediction.of(prediction, parse_model(json.dumps(model))),)))
    people = CountingPeople()
    world.service.events = people
    world.people = people

    # when
    world.visit(1)
    first = people.reads
    world.visit(2)

    # then
    assert (first, people.reads) == (0, 1)
    assert people.profiles[ADA].scores == {"churn": 12}
