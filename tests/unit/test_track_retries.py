"""An open or click the table refuses is not lost: Track queues it and stores it later from
the queue (the pixel and the redirect are served either way)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from nudge.config import Settings
from nudge.delivery_config import TrackingSettings
from nudge.domain.intake import StoredEvent
from nudge.domain.person import PersonId
from nudge.domain.tokens import ClickClaims, OpenClaims, sign_link
from nudge.service.ports import Unavailable
from nudge.service.track import TrackService

from tests.fakes import InMemoryPeople, InMemorySuppressionList

NOW = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
SECRET = "a-tracking-secret-for-tests"
ADA = PersonId.user("ada")


class RefusingPeople(InMemoryPeople):
    """The table, throttling every write while ``refusing`` is set."""

    refusing = True

    def put_events(
        self, events: Sequence[StoredEvent], new_links: Mapping[str, str], retention: timedelta
    ) -> int:
        if self.refusing:
            raise Unavailable("writing events: ProvisionedThroughputExceededException")
        return super().put_events(events, new_links, retention)


@dataclass
class FakeRetries:
    bodies: list[str] = field(default_factory=list)
    refusing: bool = False

    def send(self, body: str) -> None:
        if self.refusing:
            raise Unavailable("queueing a link event: ThrottlingException")
        self.bodies.append(body)


def _service(people: InMemoryPeople, retries: FakeRetries | None) -> TrackService:
    return TrackService(
        events=people,
        suppressions=InMemorySuppressionList(),
        settings=Settings.from_env({"NUDGE_TABLE_NAME": "t", "NUDGE_WRITE_KEY": "k"}),
        secret=TrackingSettings.of(SECRET).secret,
        retries=retries,
    )


def _pixel() -> str:
    return sign_link(OpenClaims("fire-1", ADA, "abandoned_cart"), SECRET.encode())


def _stored_names(people: InMemoryPeople) -> list[str]:
    return [str(event.name) for event in people.events.get(ADA, {}).values()]


def test_an_open_the_table_refuses_is_queued_and_counts_as_recorded() -> None:
    # given
    people, retries = RefusingPeople(), FakeRetries()
    # when
    recorded = _service(people, retries).open(_pixel(), NOW)
    # then
    assert recorded is True
    assert len(retries.bodies) == 1
    assert _stored_names(people) == []


def test_the_queued_open_is_stored_once_the_table_takes_writes() -> None:
    # given
    people, retries = RefusingPeople(), FakeRetries()
    service = _service(people, retries)
    service.open(_pixel(), NOW)
    people.refusing = False
    # when
    service.store_queued(retries.bodies[0])
    # then
    (event,) = people.events[ADA].values()
    assert (event.name, event.timestamp) == ("Email Opened", NOW)


def test_storing_a_queued_open_twice_keeps_one_event() -> None:
    """The queue may hand a message out twice: the event's id comes from the link."""
    # given
    people, retries = RefusingPeople(), FakeRetries()
    service = _service(people, retries)
    service.open(_pixel(), NOW)
    people.refusing = False
    # when
    service.store_queued(retries.bodies[0])
    service.store_queued(retries.bodies[0])
    # then
    assert _stored_names(people) == ["Email Opened"]


def test_a_queued_click_still_refused_stays_on_the_queue() -> None:
    """Unavailable again: the consumer fails the record and SQS hands it out later."""
    # given
    people, retries = RefusingPeople(), FakeRetries()
    service = _service(people, retries)
    click = sign_link(
        ClickClaims("fire-1", ADA, "abandoned_cart", url="https://shop.example/"),
        SECRET.encode(),
    )
    service.click(click, NOW)
    # when / then
    with pytest.raises(Unavailable):
        service.store_queued(retries.bodies[0])


def test_an_open_is_lost_only_when_the_queue_refuses_it_too() -> None:
    # given
    people, retries = RefusingPeople(), FakeRetries(refusing=True)
    # when
    recorded = _service(people, retries).open(_pixel(), NOW)
    # then
    assert recorded is False
