"""The Evaluate function scoring on moto: the churn prediction beside the triggers
(NUDGE_PREDICTIONS_DIR) and its model in the models bucket, churn_risk enabled. A person whose
visits drive the score through 70 gets one fire; staying above sends no second; the
backtest, given the same events, triggers and model, fires the same; no model, no fire;
explain takes the kept score apart.

The model is one hand-written tree (three sessions or more: 88, fewer: 12), as in
tests/unit/test_score_triggers.py, so which visit crosses is known."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from nudge.adapters.model_file import load_scoring
from nudge.adapters.store import EventStore
from nudge.bootstrap import person_views
from nudge.domain.person import PersonId
from nudge.domain.predictions.score import logistic
from nudge.domain.timefmt import iso
from nudge.domain.triggers.loader import load_triggers
from nudge.service.backtest import backtest
from nudge.service.recorded_events import read_events

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
def folders(aws: Aws, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shipped triggers with churn_risk enabled, the churn prediction and its model,
    in a folder (for the backtest) and in the models bucket (where Evaluate reads it)."""
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
    aws.s3.put_object(Bucket=aws.models_bucket, Key="models/churn.json", Body=json.dumps(MODEL))
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
    aws.s3.delete_object(Bucket=aws.models_bucket, Key="models/churn.json")
    stream = Stream.of(aws, aws.load_handler("Evaluate"))

    # when
    _visits(aws, ingest, stream, 1, 2, 3)

    # then
    assert _queued(aws, "churn_risk") == []
    profile = _profile(aws)
    assert profile.scores == {}
    assert "no model artefact at" in profile.misses["churn_risk"].reason


# ---- re-scored while quiet, by the hourly sweep ------------------------------------------

QUIET_PREDICTION = PREDICTION.replace("  - profile.sessions", "  - profile.days_inactive")
_ONE_TREE: dict[str, Any] = MODEL["trees"][0]  # type: ignore[index]
QUIET_MODEL = {  # more than three days quiet: 88; less: 12 (every event scores 12)
    **MODEL,
    "features": ["profile.days_inactive"],
    "trees": [{**_ONE_TREE, "threshold": [3.0, 0.0, 0.0]}],
}


def _sweep(aws: Aws, at: Any) -> Any:
    handler = aws.load_handler("Evaluate")
    return handler({"source": "nudge.sweep", "scheduledTime": at.isoformat()})


def test_the_hourly_sweep_fires_churn_risk_for_someone_quiet_three_days_and_the_backtest_agrees(
    aws: Aws, ingest: Invoke, folders: Path
):
    """The model scores days_inactive: two visits score 12, three days of quiet 88. The
    sweep that reads ada's hour at 72 hours fires churn_risk once, keeps 88 on her profile,
    and a retry of that sweep sends nothing more; the backtest fires the same."""
    # given
    (folders / "predictions" / "churn.yaml").write_text(QUIET_PREDICTION)
    (folders / "models" / "churn.json").write_text(json.dumps(QUIET_MODEL))
    aws.s3.put_object(
        Bucket=aws.models_bucket, Key="models/churn.json", Body=json.dumps(QUIET_MODEL)
    )
    stream = Stream.of(aws, aws.load_handler("Evaluate"))
    _visits(aws, ingest, stream, 1, 2)
    crossing = NOW + 2 * HOUR + 73 * HOUR  # reads the hour 73 hours back: the 12:00 visit's

    # when
    _sweep(aws, crossing - HOUR)
    _sweep(aws, crossing)
    _sweep(aws, crossing)

    # then
    fires = _queued(aws, "churn_risk")
    assert [fire["occurrence"] for fire in fires] == [f"score@{crossing.isoformat()}"]
    assert _profile(aws).scores == {"churn": 88}
    events, _ = read_events([json.dumps(_visit(number)) for number in (1, 2)])
    scoring, _ = load_scoring(folders / "predictions", folders / "models")
    triggers = load_triggers(folders / "triggers").triggers
    replayed = backtest(events, triggers, scoring=scoring, until=crossing + HOUR)
    assert [(f.trigger, f.occurrence) for f in replayed.fired] == [
        ("churn_risk", f"score@{crossing.isoformat()}")
    ]


def test_explain_takes_a_sweeps_score_apart_as_of_the_sweep(
    aws: Aws, ingest: Invoke, folders: Path
):
    """The sweep kept 88 for a quiet ada: explain works her features out as of the sweep
    (days_inactive past 3), so its contributions add up to 88, not to the 12 of her last
    event."""
    # given
    (folders / "predictions" / "churn.yaml").write_text(QUIET_PREDICTION)
    aws.s3.put_object(
        Bucket=aws.models_bucket, Key="models/churn.json", Body=json.dumps(QUIET_MODEL)
    )
    stream = Stream.of(aws, aws.load_handler("Evaluate"))
    _visits(aws, ingest, stream, 1, 2)
    crossing = NOW + 2 * HOUR + 73 * HOUR
    _sweep(aws, crossing)

    # when
    churn = person_views(aws.dynamodb, aws.table).scores("ada")["churn"]

    # then
    assert churn["score"] == 88
    assert churn["asOf"] == iso(crossing)
    [contribution] = churn["contributions"]
    assert contribution["feature"] == "profile.days_inactive"
    assert contribution["value"] > 3.0
    assert churn["base"]["score"] + contribution["points"] == pytest.approx(88, abs=1)


def test_a_re_scored_profile_is_not_written_over_a_fold_that_came_after_it_was_read(
    aws: Aws, ingest: Invoke, folders: Path
):
    """The sweep's write is conditional on the profile's applied_seq: a profile an event
    has been folded into since the read keeps that fold."""
    # given
    stream = Stream.of(aws, aws.load_handler("Evaluate"))
    _visits(aws, ingest, stream, 1, 2)
    store = EventStore(aws.dynamodb, aws.table)
    read = _profile(aws)
    _visits(aws, ingest, stream, 3)

    # when
    written = store.save_rescored(replace(read, scores={"churn": 99}))

    # then
    assert written is False
    assert _profile(aws).scores == {"churn": 88}
    assert _profile(aws).sessions == 3


def test_a_corrupt_model_object_scores_nothing_and_churn_risk_names_it(
    aws: Aws, ingest: Invoke, folders: Path
):
    """An object that is not an artefact: as a missing one, logged at cold start, no score."""
    # given
    aws.s3.put_object(Bucket=aws.models_bucket, Key="models/churn.json", Body=b"{not json")
    stream = Stream.of(aws, aws.load_handler("Evaluate"))

    # when
    _visits(aws, ingest, stream, 1, 2, 3)

    # then
    assert _queued(aws, "churn_risk") == []
    profile = _profile(aws)
    assert profile.scores == {}
    assert f"s3://{aws.models_bucket}/models/churn.json" in profile.misses["churn_risk"].reason


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
