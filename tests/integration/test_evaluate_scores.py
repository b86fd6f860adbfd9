"""The Evaluate function scoring on moto: the churn prediction and a model beside the
triggers (NUDGE_PREDICTIONS_DIR, NUDGE_MODELS_DIR), churn_risk enabled. A person whose
visits drive the score through 70 gets one fire; staying above sends no second; the
backtest, given the same events, triggers and model, fires the same; no model, no fire;
explain takes the kept score apart.

The model is one hand-written tree (three sessions or more: 88, fewer: 12), as in
tests/unit/test_score_triggers.py, so which visit crosses is known."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from nudge.adapters.model_file import load_scoring
from nudge.adapters.store import EventStore
from nudge.bootstrap import person_views
from nudge.domain.person import PersonId
from nudge.domain.predictions.score import logistic
from nudge.domain.triggers.loader import load_triggers
from nudge.service.backtest import backtest, read_events

from tests.conftest import REPO
from tests.integration._harness import NOW, Aws, Invoke, Stream, beacon
from tests.unit.test_score_triggers import MODEL, PREDICTION

HOUR = timedelta(hours=1)
ADA = PersonId.user("ada")


def _visit(number: int) -> dict[str, Any]:
    at = NOW + number * HOUR  # an hour apart: each visit is a session of its own
    return {
        "type": "page",
        "userId": "ada",
        "name": "home",
        "messageId": f"home-{number}",
        "timestamp": at.isoformat(),
    }


@pytest.fixture
def folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shipped triggers with churn_risk enabled, the churn prediction and its model."""
    triggers = tmp_path / "triggers"
    shutil.copytree(REPO / "triggers", triggers)
    risk = triggers / "churn_risk.yaml"
    risk.write_text(risk.read_text().replace("enabled: false", "enabled: true"))
    (tmp_path / "predictions").mkdir()
    (tmp_path / "predictions" / "churn.yaml").write_text(PREDICTION)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "churn.json").write_text(json.dumps(MODEL))
    monkeypatch.setenv("NUDGE_TRIGGERS_DIR", str(triggers))
    monkeypatch.setenv("NUDGE_PREDICTIONS_DIR", str(tmp_path / "predictions"))
    monkeypatch.setenv("NUDGE_MODELS_DIR", str(tmp_path / "models"))
    return tmp_path


def _visits(aws: Aws, ingest: Invoke, stream: Stream, *numbers: int) -> None:
    """Each visit ingested and evaluated at its own time, one stream batch each."""
    for number in numbers:
        at = NOW + number * HOUR
        response = ingest(beacon("batch", {"batch": [_visit(number)]}, at=at))
        assert response["statusCode"] == 200, response
        records = stream.read()
        for record in records:
            record["dynamodb"]["ApproximateCreationDateTime"] = int(at.timestamp())
        assert stream.deliver(records) == [{"batchItemFailures": []}]


def _queued(aws: Aws, trigger: str) -> list[dict[str, Any]]:
    url = aws.environment("Evaluate")["NUDGE_SEND_QUEUE_URL"]
    fires: list[dict[str, Any]] = []
    while messages := aws.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get(
        "Messages", []
    ):
        fires += [json.loads(message["Body"]) for message in messages]
    return [fire for fire in fires if fire["trigger"] == trigger]


def _profile(aws: Aws) -> Any:
    store = EventStore(aws.dynamodb, aws.table)
    return store.load_profiles([ADA])[ADA]


def test_a_score_rising_through_70_fires_churn_risk_once_and_the_backtest_agrees(
    aws: Aws, ingest: Invoke, folders: Path
):
    """Four visits: the third lifts the score from 12 to 88 and fires; the fourth, still 88,
    does not. Replayed through the backtest, the same single fire on the same event."""
    # given
    stream = Stream.of(aws, aws.load_handler("Evaluate"))

    # when
    _visits(aws, ingest, stream, 1, 2, 3, 4)

    # then
    fires = _queued(aws, "churn_risk")
    assert [fire["occurrence"] for fire in fires] == ["event=home-3"]
    profile = _profile(aws)
    assert profile.scores == {"churn": 88}
    assert profile.misses["churn_risk"].reason.startswith("churn score 88 was already")
    lines = [json.dumps(_visit(number)) for number in (1, 2, 3, 4)]
    events, _ = read_events(lines)
    scoring, problems = load_scoring(folders / "predictions", folders / "models")
    replayed = backtest(events, load_triggers(folders / "triggers").triggers, scoring=scoring)
    assert problems == []
    assert [(f.trigger, f.occurrence) for f in replayed.fired] == [("churn_risk", "event=home-3")]


def test_without_a_model_evaluate_scores_nothing_and_churn_risk_says_why(
    aws: Aws, ingest: Invoke, folders: Path
):
    """The artefact deleted before a cold start: every event is decided, no score, no
    fire, and churn_risk's miss names the missing artefact."""
    # given
    (folders / "models" / "churn.json").unlink()
    stream = Stream.of(aws, aws.load_handler("Evaluate"))

    # when
    _visits(aws, ingest, stream, 1, 2, 3)

    # then
    assert _queued(aws, "churn_risk") == []
    profile = _profile(aws)
    assert profile.scores == {}
    assert "no model artefact at" in profile.misses["churn_risk"].reason


def test_explain_takes_the_live_score_apart_with_the_model_that_gave_it(
    aws: Aws, ingest: Invoke, folders: Path
):
    """After four visits scored live, explain's scores hold churn's contributions: the one
    feature, sessions = 4, carrying the score from the model's base to the kept 88, read
    again from the profile as of the fold that scored it."""
    # given
    stream = Stream.of(aws, aws.load_handler("Evaluate"))
    _visits(aws, ingest, stream, 1, 2, 3, 4)

    # when
    churn = person_views(aws.dynamodb, aws.table).scores("ada")["churn"]

    # then
    [tree] = cast(list[dict[str, list[float]]], MODEL["trees"])
    count, value = tree["count"], tree["value"]
    base = (count[1] * value[1] + count[2] * value[2]) / count[0]
    assert churn["score"] == 88
    assert churn["base"]["logOdds"] == pytest.approx(base, abs=1e-4)
    assert churn["contributions"] == [
        {
            "feature": "profile.sessions",
            "value": 4.0,
            "points": pytest.approx(100 * (logistic(value[2]) - logistic(base)), abs=0.01),
            "logOdds": pytest.approx(value[2] - base, abs=1e-4),
        }
    ]
    assert "note" not in churn
