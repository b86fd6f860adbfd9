"""The Train function on moto, invoked with events/train-schedule.json, a small simulated
shop in the table: it writes a model where there is none or where the current one is not
better, keeps the current one otherwise, and logs each decision without naming anyone."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from nudge.adapters.store import EventStore
from nudge.domain.intake import StoredEvent
from nudge.domain.person import PersonId
from nudge.domain.predictions.score import ScoreModel, parse_model
from nudge.service.recorded_events import read_events

from bench.shop_truth import TruthMix, simulate_truth
from tests.conftest import REPO
from tests.integration._harness import Aws, Invoke

SCHEDULED = json.loads((REPO / "events" / "train-schedule.json").read_text())
CHURN_KEY = "models/churn.json"
SENT_TOGETHER = 400


class _Kept(logging.Handler):
    """The function's log records, with the fields passed as ``extra``."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def shop(aws: Aws) -> None:
    """60 simulated shoppers' events stored as Ingest stores them."""
    truth = simulate_truth(TruthMix(people=60, seed=3))
    events, skipped = read_events(json.dumps(message) for message in truth.messages)
    assert skipped == []
    store = EventStore(aws.dynamodb, aws.table)
    for start in range(0, len(events), SENT_TOGETHER):
        group = events[start : start + SENT_TOGETHER]
        stored = [StoredEvent(person=PersonId.user(str(e.user_id)), event=e) for e in group]
        store.put_events(stored, {}, retention=timedelta(days=90))


@pytest.fixture
def train(aws: Aws, shop: None) -> Invoke:
    return aws.load_handler("Train")


@pytest.fixture
def logged() -> Iterator[_Kept]:
    kept = _Kept()
    logger = logging.getLogger("train")  # the Powertools logger of POWERTOOLS_SERVICE_NAME
    logger.addHandler(kept)
    yield kept
    logger.removeHandler(kept)


def _current(aws: Aws) -> bytes:
    return aws.s3.get_object(Bucket=aws.models_bucket, Key=CHURN_KEY)["Body"].read()


def _with_quality(quality: float) -> bytes:
    """The shipped churn model (its features are the definition's), with a stored quality."""
    shipped = json.loads((REPO / "models" / "churn.json").read_text())
    return json.dumps({**shipped, "metrics": {"quality": quality, "auc": 0.5}}).encode()


def _constant(claimed_quality: float) -> bytes:
    """A model that gives everyone the same score (no ranking at all: quality 0 on any
    rows), whose artefact claims ``claimed_quality``."""
    shipped = json.loads((REPO / "models" / "churn.json").read_text())
    leaf = {"feature": [-1], "threshold": [0.0], "missing_left": [0], "left": [0], "right": [0]}
    return json.dumps(
        {
            **shipped,
            "trees": [{**leaf, "value": [0.0]}],
            "metrics": {"quality": claimed_quality, "auc": 1.0},
        }
    ).encode()


def _decisions(logged: _Kept) -> dict[str, dict[str, Any]]:
    fields = ("decision", "old_quality", "new_quality", "old_auc", "new_auc", "reason")
    return {
        record.__dict__["prediction"]: {name: record.__dict__[name] for name in fields}
        for record in logged.records
        if record.getMessage() == "model decision"
    }


def test_with_no_current_model_the_trained_one_is_written(
    aws: Aws, train: Invoke, logged: _Kept
) -> None:
    """Nothing in the bucket: churn's new artefact is written, and it loads and scores."""
    # given
    aws.s3.delete_object(Bucket=aws.models_bucket, Key=CHURN_KEY)

    # when
    response = train(SCHEDULED)

    # then
    assert response["models"]["churn"] == "replaced"
    written = parse_model(_current(aws))
    assert isinstance(written, ScoreModel)
    assert written.about["trained"]["at"] == "2026-04-10T00:00:00+00:00"
    assert _decisions(logged)["churn"]["new_quality"] == written.about["metrics"]["quality"]


def test_a_current_model_of_better_quality_is_kept(aws: Aws, train: Invoke) -> None:
    """The shipped model, trained on 2,000 shoppers, ranks the new held-out rows better than
    a model trained on these 60 can: it stays, whatever quality it claims (here 0)."""
    # given
    shipped = _with_quality(0.0)
    aws.s3.put_object(Bucket=aws.models_bucket, Key=CHURN_KEY, Body=shipped)

    # when
    response = train(SCHEDULED)

    # then
    assert response["models"]["churn"] == "kept"
    assert _current(aws) == shipped


def test_a_current_model_of_worse_quality_is_replaced(aws: Aws, train: Invoke) -> None:
    """A current model no better than random on the new held-out rows is replaced, though
    its artefact claims a perfect quality: the two are judged on the same rows."""
    # given
    aws.s3.put_object(Bucket=aws.models_bucket, Key=CHURN_KEY, Body=_constant(1.0))

    # when
    response = train(SCHEDULED)

    # then
    assert response["models"]["churn"] == "replaced"
    assert json.loads(_current(aws))["metrics"]["quality"] > 0.0


def test_each_decision_is_logged_with_both_qualities_and_no_person(
    aws: Aws, train: Invoke, logged: _Kept
) -> None:
    """One line a prediction: old and new quality, kept or replaced, why; no userId."""
    # given
    aws.s3.put_object(Bucket=aws.models_bucket, Key=CHURN_KEY, Body=_constant(1.0))

    # when
    train(SCHEDULED)

    # then
    decisions = _decisions(logged)
    assert sorted(decisions) == ["churn", "purchase"]
    assert decisions["churn"]["decision"] == "replaced"
    assert decisions["churn"]["old_quality"] == pytest.approx(0.0, abs=1e-9)
    assert 0.0 < decisions["churn"]["new_quality"] < 1.0
    assert "truth-" not in " ".join(str(record.__dict__) for record in logged.records)
