"""EvaluateService on the in-memory fakes, with the shipped triggers: a stream batch folds
and arms, a due timer fires, an order exits, a redelivery decides once, and the hourly
sweep fires re_engagement for someone quiet a week (the same cases as
tests/integration/test_evaluate_triggers.py, without moto)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from nudge.domain.intake import Event, StoredEvent
from nudge.domain.person import PersonId
from nudge.domain.triggers.engine import Decision, TriggerIndex
from nudge.domain.triggers.loader import load_triggers
from nudge.service.evaluate import EvaluateService, TimerPayload

from tests.arms import shopper_in
from tests.conftest import REPO
from tests.fakes import (
    Armed,
    FakeQueue,
    FakeScheduler,
    InMemoryEngineStore,
    InMemoryExperiments,
    InMemoryPeople,
)
from tests.unit.builders import parse

NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
DAY = timedelta(days=1)
# ada: a shopper the abandoned_cart experiment puts in h24, so her reminder is due 24 h on.
ADA_ID = shopper_in("ada")
ADA = PersonId.user(ADA_ID)
ARN = "arn:aws:lambda:us-east-1:123456789012:function:nudge-Evaluate"
RETENTION = timedelta(days=90)
# The first sweep that reads the hour of a visit at NOW: a week and an hour later.
FIRST_SWEEP_AFTER_A_WEEK = NOW + 7 * DAY + timedelta(hours=1)


@pytest.fixture(scope="module")
def shipped() -> TriggerIndex:
    loaded = load_triggers(REPO / "triggers")
    assert loaded.problems == []
    return TriggerIndex.of(loaded.triggers)


Record = tuple[int, StoredEvent]  # a stream record: its sequence number and the event


@dataclass
class World:
    """Evaluate and what it talks to; events reach it as Ingest and the stream bring them."""

    service: EvaluateService
    people: InMemoryPeople
    engine: InMemoryEngineStore
    scheduler: FakeScheduler
    queue: FakeQueue
    sequences: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def ingest(self, *messages: dict[str, Any], at: datetime = NOW) -> list[Record]:
        """Stores the messages as Ingest does; the stream records their writes make."""
        intake = parse({"batch": list(messages)}, route="batch", received_at=at)
        stored = [StoredEvent(person=_partition(event), event=event) for event in intake.events]
        self.people.put_events(stored, {}, RETENTION)
        return [(next(self.sequences), each) for each in stored]

    def deliver(self, records: list[Record], at: datetime = NOW) -> set[PersonId]:
        """One stream batch, decided at ``at``; the persons whose profile was refused."""
        work = self.service.batch([stored for _, stored in records], ARN, at)
        for sequence, stored in records:
            work.handle(sequence, stored, at)
        return work.finish()

    def stream(self, *messages: dict[str, Any], at: datetime = NOW) -> None:
        assert self.deliver(self.ingest(*messages, at=at), at) == set()

    def timer_due(self, armed: Armed, at: datetime | None = None) -> list[Decision]:
        """What Scheduler invokes Evaluate with, its scheduled time filled in."""
        payload = {**armed.payload, "scheduledTime": (at or armed.due).isoformat()}
        return self.service.on_timer(TimerPayload.parse(payload), ARN)

    def outcomes(self, trigger: str) -> list[str]:
        return [d.outcome for d in self.engine.decisions if d.trigger == trigger]


@pytest.fixture
def world(shipped: TriggerIndex) -> World:
    people, engine, scheduler, queue = (
        InMemoryPeople(),
        InMemoryEngineStore(),
        FakeScheduler(),
        FakeQueue(),
    )
    service = EvaluateService(
        events=people,
        engine=engine,
        reminders=scheduler,
        queue=queue,
        index=shipped,
        experiments=InMemoryExperiments(),
    )
    return World(service, people, engine, scheduler, queue)


def _partition(event: Event) -> PersonId:
    assert event.user_id is not None  # these tests send users' events only
    return PersonId.user(event.user_id)


# ---- messages as a browser would send them -------------------------------------------------


def identify(at: datetime = NOW - timedelta(minutes=5), **traits: Any) -> dict[str, Any]:
    return {
        "type": "identify",
        "userId": ADA_ID,
        "messageId": f"identify-{at.isoformat()}",
        "timestamp": at.isoformat(),
        "traits": {"email": "ada@example.com", **traits},
    }


def track(event: str, message_id: str, at: datetime = NOW, **properties: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "userId": ADA_ID,
        "event": event,
        "messageId": message_id,
        "timestamp": at.isoformat(),
        "properties": properties,
    }


def product_added(cart: str, sku: str) -> dict[str, Any]:
    return track(
        "Product Added",
        f"add-{cart}-{sku}",
        cart_id=cart,
        product_id=sku,
        name=f"Product {sku}",
        price=10.0,
        quantity=1,
    )


def page(name: str, at: datetime) -> dict[str, Any]:
    return {
        "type": "page",
        "userId": ADA_ID,
        "name": name,
        "messageId": f"{name}-{at.isoformat()}",
        "timestamp": at.isoformat(),
    }


@pytest.fixture
def cart_armed(world: World) -> Armed:
    """ada (with an email) added one item to cart c1 at NOW; Evaluate has seen it."""
    world.stream(identify(), product_added("c1", "sku-1"))
    (armed,) = world.scheduler.schedules.values()
    return armed


def short_visit(world: World, at: datetime = NOW) -> None:
    """ada, inactive in the CRM, views two pages at ``at``; Evaluate has seen it."""
    crm = identify(at - timedelta(minutes=5), crm_status="inactive")
    world.stream(crm, page("home", at), page("pricing", at), at=at)


# ---- the stream ----------------------------------------------------------------------------


def test_a_batch_folds_its_events_into_the_profile(world: World) -> None:
    """The profile saved after a batch holds the identify's traits and the last sequence."""
    # given
    records = world.ingest(identify(), product_added("c1", "sku-1"))

    # when
    world.deliver(records)

    # then
    profile = world.people.profiles[ADA]
    assert profile.traits["email"] == "ada@example.com"
    assert profile.applied_seq == records[-1][0]


def test_a_product_added_arms_one_schedule_and_its_timer_a_day_ahead(world: World) -> None:
    """A cart arms one reminder due 24 h on, and one timer item naming that reminder."""
    # given: ada with an email

    # when
    world.stream(identify(), product_added("c1", "sku-1"))

    # then
    (armed,) = world.scheduler.schedules.values()
    assert armed.due == NOW + DAY
    assert armed.payload["occurrence"] == "cart_id=c1"
    assert [name for _, name in world.engine.timers([ADA])] == [armed.name]
    assert world.outcomes("abandoned_cart") == ["pending"]


def test_the_due_timer_fires_the_cart_onto_the_queue_with_its_items(
    world: World, cart_armed: Armed
) -> None:
    """The reminder, at its due time, queues one fire carrying the cart's items."""
    # given: the cart_armed fixture

    # when
    decisions = world.timer_due(cart_armed)

    # then
    assert [d.outcome for d in decisions] == ["fired"]
    (queued,) = world.queue.messages
    assert (queued.fire.trigger, queued.fire.person) == ("abandoned_cart", ADA)
    assert queued.fire.context["items"] == [
        {"name": "Product sku-1", "price": 10.0, "quantity": 1, "image_url": None, "url": None}
    ]
    assert world.engine.timers([ADA]) == []


def test_an_order_before_the_due_cancels_the_cart(world: World, cart_armed: Armed) -> None:
    """An Order Completed for the cart two hours later exits it: reminder and timer gone."""
    # given
    later = NOW + timedelta(hours=2)
    order = track("Order Completed", "order-c1", later, cart_id="c1", total=10.0)

    # when
    world.stream(order, at=later)

    # then
    assert world.scheduler.schedules == {}
    assert world.engine.timers([ADA]) == []
    assert world.outcomes("abandoned_cart") == ["pending", "exited"]


def test_records_delivered_twice_decide_once(world: World) -> None:
    """The same stream records delivered again (a retried batch) fire each trigger once."""
    # given
    records = world.ingest(
        identify(), track("Page Engaged", "view-1", product_id="p1", active_seconds=300)
    )
    world.deliver(records)

    # when
    world.deliver(records)

    # then
    queued = sorted(queued.fire.trigger for queued in world.queue.messages)
    assert queued == ["product_interest", "product_offer"]
    assert world.outcomes("product_interest") == ["fired"]


def test_a_reminder_delivered_twice_fires_once(world: World, cart_armed: Armed) -> None:
    """Scheduler invoking the same reminder twice (at least once) queues one fire."""
    # given
    world.timer_due(cart_armed)

    # when
    again = world.timer_due(cart_armed)

    # then
    assert again == []
    assert len(world.queue.messages) == 1


# ---- the hourly inactivity sweep -----------------------------------------------------------


def test_the_sweep_a_week_after_a_quiet_short_visit_fires_re_engagement(world: World) -> None:
    """The first sweep that reads ada's hour fires re_engagement once, onto the send queue."""
    # given
    short_visit(world)

    # when
    decisions = world.service.sweep(FIRST_SWEEP_AFTER_A_WEEK, ARN)

    # then
    assert [d.outcome for d in decisions] == ["fired"]
    (queued,) = world.queue.messages
    assert (queued.fire.trigger, queued.fire.user_id) == ("re_engagement", ADA_ID)


def test_the_sweep_does_not_fire_for_someone_who_came_back(world: World) -> None:
    """ada returned on day 5: the sweep of her first visit's hour finds nobody to decide."""
    # given
    short_visit(world)
    short_visit(world, at=NOW + 5 * DAY)

    # when
    decisions = world.service.sweep(FIRST_SWEEP_AFTER_A_WEEK, ARN)

    # then
    assert decisions == []
    assert world.queue.messages == []


def test_an_event_that_does_not_match_writes_no_decision_record(world: World) -> None:
    """A short look at a product is not_matched for product_interest: nothing is written for
    it but the profile the event updates anyway."""
    # given
    records = world.ingest(
        identify(), track("Page Engaged", "look-1", product_id="p1", active_seconds=40)
    )

    # when
    world.deliver(records)

    # then
    assert world.outcomes("product_interest") == []
    miss = world.people.load_profiles([ADA])[ADA].misses["product_interest"]
    assert (miss.occurrence, "active_seconds" in miss.reason) == ("product_id=p1", True)


def test_the_profile_keeps_each_triggers_latest_miss(world: World) -> None:
    """Two short looks: the profile remembers the second, for explain's "why not"."""
    # given
    world.stream(identify(), track("Page Engaged", "look-1", product_id="p1", active_seconds=40))

    # when
    world.stream(track("Page Engaged", "look-2", product_id="p2", active_seconds=50))

    # then
    miss = world.people.load_profiles([ADA])[ADA].misses["product_interest"]
    assert miss.occurrence == "product_id=p2"
    assert "found 50" in miss.reason


def test_a_second_item_in_the_same_cart_creates_no_schedule(
    world: World, cart_armed: Armed
) -> None:
    """The cart's first timer stands: a second Product Added to it calls Scheduler not at
    all (no schedule created only to be refused and deleted)."""
    # given
    calls_before = list(world.scheduler.calls)

    # when
    world.stream(product_added("c1", "sku-2"), at=NOW + timedelta(minutes=10))

    # then
    assert world.scheduler.calls == calls_before
    assert list(world.scheduler.schedules.values()) == [cart_armed]
