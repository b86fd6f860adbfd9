"""`nudge train --table` on moto: the events read back from the table are the events of the
file they were sent as, so training from either sees the same training set."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from nudge.adapters.store import EventStore
from nudge.domain.intake import Event, StoredEvent
from nudge.domain.person import PersonId
from nudge.domain.predictions.loader import load_predictions
from nudge.domain.predictions.model import Prediction
from nudge.entrypoints.cli import main
from nudge.service.recorded_events import read_events, read_items
from nudge.service.training_set import Row, cutoff_times, training_rows

from bench.shop_truth import TruthMix, simulate_truth
from tests.conftest import REPO
from tests.integration._harness import Aws

CHURN = load_predictions(REPO / "predictions").get("churn")
SENT_TOGETHER = 400  # events a put_events call stores: one item per person per call


@dataclass(frozen=True)
class Recorded:
    """A small simulated shop: its events as an export file, and the same events stored."""

    file: Path
    events: list[Event]


def _stored(events: list[Event]) -> Iterator[list[StoredEvent]]:
    for start in range(0, len(events), SENT_TOGETHER):
        yield [
            StoredEvent(person=PersonId.user(str(event.user_id)), event=event)
            for event in events[start : start + SENT_TOGETHER]
        ]


@pytest.fixture
def recorded(aws: Aws, tmp_path: Path) -> Recorded:
    shop = simulate_truth(TruthMix(people=60, seed=3))
    file = tmp_path / "events.jsonl"
    file.write_text("".join(json.dumps(message) + "\n" for message in shop.messages))
    with file.open() as lines:
        events, skipped = read_events(lines)
    assert skipped == []
    store = EventStore(aws.dynamodb, aws.table)
    for group in _stored(events):
        store.put_events(group, {}, retention=timedelta(days=90))
    return Recorded(file, events)


def _rows(events: list[Event], prediction: Prediction) -> list[Row]:
    cutoffs = cutoff_times(
        events[0].timestamp, events[-1].timestamp, prediction.horizon, 8, timedelta(days=7)
    )
    return sorted(
        training_rows(events, prediction, cutoffs), key=lambda row: (row.cutoff, row.person)
    )


def test_every_event_reads_back_each_stored_event_once(aws: Aws, recorded: Recorded) -> None:
    """The Scan finds every event the shop sent, however they were packed into items."""
    # given
    store = EventStore(aws.dynamodb, aws.table)

    # when
    events, skipped = read_items(store.every_event())

    # then
    assert skipped == []
    assert sorted(event.message_id for event in events) == sorted(
        event.message_id for event in recorded.events
    )


def test_the_table_gives_the_training_set_of_the_equivalent_file(
    aws: Aws, recorded: Recorded
) -> None:
    """Same people, cut-offs, features and labels from the table as from the file."""
    # given
    assert CHURN is not None
    store = EventStore(aws.dynamodb, aws.table)

    # when
    from_table, _ = read_items(store.every_event())
    with recorded.file.open() as lines:
        from_file, _ = read_events(lines)

    # then
    rows = _rows(from_table, CHURN)
    assert len(rows) > 100
    assert rows == _rows(from_file, CHURN)


def test_every_event_leaves_out_the_items_that_are_not_events(aws: Aws) -> None:
    """Profiles, links and the engine's records are in the table too; none is read as one."""
    # given
    store = EventStore(aws.dynamodb, aws.table)
    store.put_events([], {"anon-1": "ada"}, retention=timedelta(days=90))

    # when
    found = list(store.every_event())

    # then
    assert aws.item_count() == 1
    assert found == []


def test_nudge_train_with_a_table_writes_the_model_the_file_would_give(
    aws: Aws, recorded: Recorded, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command reads the table it is given and trains the same trees as from the file."""
    # given
    from_table, from_file = tmp_path / "table.json", tmp_path / "file.json"
    options = ["--trees", "20", "--depth", "3"]

    # when
    table_status = main(
        ["train", "churn", "--table", aws.table, "--out", str(from_table), *options]
    )
    file_status = main(
        ["train", "churn", "--events", str(recorded.file), "--out", str(from_file), *options]
    )

    # then
    assert (table_status, file_status) == (0, 0)
    trained = json.loads(from_table.read_text())
    expected = json.loads(from_file.read_text())
    assert trained["trees"] == expected["trees"]
    assert trained["metrics"] == expected["metrics"]
    assert f"wrote {from_table}" in capsys.readouterr().out


def test_nudge_train_without_events_or_table_names_both(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No --events, no --table and no NUDGE_TABLE_NAME: a clear refusal, exit 2."""
    # given
    monkeypatch.delenv("NUDGE_TABLE_NAME", raising=False)

    # when
    status = main(["train", "churn", "--predictions", str(REPO / "predictions")])

    # then
    assert status == 2
    assert "--events FILE, --table or NUDGE_TABLE_NAME" in capsys.readouterr().err
