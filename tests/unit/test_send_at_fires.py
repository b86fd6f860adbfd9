"""Evaluate hands `send.at` to delivery: a fire of a trigger (or of an experiment arm) with a
time of day carries it on the queue, where Send waits for it (tests/unit/test_send_service.py)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from nudge.domain.intake import Event, StoredEvent
from nudge.domain.person import PersonId
from nudge.domain.triggers.engine import TriggerIndex
from nudge.domain.triggers.experiment import assign
from nudge.domain.triggers.loader import load_triggers
from nudge.service.evaluate import EvaluateService

from tests.fakes import (
    FakeQueue,
    FakeScheduler,
    InMemoryEngineStore,
    InMemoryExperiments,
    InMemoryPeople,
)
from tests.unit.builders import parse

NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
ARN = "arn:aws:lambda:us-east-1:123456789012:function:nudge-Evaluate"
RETENTION = timedelta(days=90)

ORDER_THANKS = """\
id: order_thanks
when:
  event: Order Completed
send:
  channel: email
  template: thanks
  at: "09:30"
"""
# Every arm waits for a time of its own: the A/B question "morning or evening?"
ORDER_THANKS_AB = (
    ORDER_THANKS
    + """\
experiment:
  variants:
    - id: morning
      weight: 50
    - id: evening
      weight: 50
      send: {at: "19:00"}
  goal:
    event: Order Completed
    within: 7d
"""
)


def _index(folder: Path, text: str) -> TriggerIndex:
    (folder / "templates").mkdir(exist_ok=True)
    for part in ("subject", "html", "txt"):
        (folder / "templates" / f"thanks.{part}.j2").write_text("Thanks")
    (folder / "order_thanks.yaml").write_text(text, encoding="utf-8")
    loaded = load_triggers(folder)
    assert loaded.problems == []
    return TriggerIndex.of(loaded.triggers)


def _queued_send_at(index: TriggerIndex, user: str) -> str | None:
    """The sendAt of the one fire an order by ``user`` queues."""
    queue = FakeQueue()
    people = InMemoryPeople()
    service = EvaluateService(
        events=people,
        engine=InMemoryEngineStore(),
        reminders=FakeScheduler(),
        queue=queue,
        index=index,
        experiments=InMemoryExperiments(),
    )
    order = {
        "type": "track",
        "userId": user,
        "event": "Order Completed",
        "messageId": f"order-{user}",
        "timestamp": NOW.isoformat(),
    }
    intake = parse({"batch": [order]}, route="batch", received_at=NOW)
    stored = [StoredEvent(person=_person(event), event=event) for event in intake.events]
    people.put_events(stored, {}, RETENTION)
    work = service.batch(stored, ARN, NOW)
    for sequence, each in enumerate(stored, start=1):
        work.handle(sequence, each, NOW)
    assert work.finish() == set()
    (queued,) = queue.messages
    return queued.fire.send_at


def _person(event: Event) -> PersonId:
    assert event.user_id is not None
    return PersonId.user(event.user_id)


def test_a_triggers_send_at_rides_on_its_fire(tmp_path: Path) -> None:
    # given
    index = _index(tmp_path, ORDER_THANKS)
    # when
    send_at = _queued_send_at(index, "ada")
    # then
    assert send_at == "09:30"


@pytest.mark.parametrize(("arm", "expected"), [("morning", "09:30"), ("evening", "19:00")])
def test_an_arms_send_at_replaces_the_triggers(tmp_path: Path, arm: str, expected: str) -> None:
    """Each arm's fire carries its own time: 19:00 for evening, the trigger's for morning."""
    # given
    index = _index(tmp_path, ORDER_THANKS_AB)
    experiment = index.triggers["order_thanks"].experiment
    assert experiment is not None
    user = next(
        f"user-{n}"
        for n in itertools.count()
        if assign("order_thanks", experiment, PersonId.user(f"user-{n}")) == arm
    )
    # when
    send_at = _queued_send_at(index, user)
    # then
    assert send_at == expected
