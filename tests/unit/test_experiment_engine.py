"""Experiments in the engine, on the in-memory fakes: each person enters in one arm and
keeps it, a variant's timing is its own, the holdout is decided like everyone else and
recorded but never queued, and a variant's fire names its arm for delivery."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from nudge.domain.intake import StoredEvent
from nudge.domain.person import PersonId
from nudge.domain.triggers.engine import TriggerIndex, arm_key
from nudge.domain.triggers.experiment import HOLDOUT
from nudge.domain.triggers.loader import parse_trigger
from nudge.service.backtest import backtest
from nudge.service.evaluate import EvaluateService, TimerPayload
from nudge.service.recorded_events import read_events

from tests.arms import user_in
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
ARN = "arn:aws:lambda:us-east-1:123456789012:function:nudge-Evaluate"
CART_EXPERIMENT = """\
id: abandoned_cart
when: {event: Product Added}
key: properties.cart_id
unless: {event: Order Completed, within: 24h, same: properties.cart_id}
audience: {path: traits.email, exists: true}
send: {channel: email, template: abandoned_cart}
experiment:
  variants:
    - {id: h24, weight: 45, unless: {within: 24h}}
    - {id: h48, weight: 45, unless: {within: 48h}, send: {template: re_engagement}}
  holdout: 10%
"""


@pytest.fixture(scope="module")
def index() -> TriggerIndex:
    trigger, problems = parse_trigger(
        CART_EXPERIMENT, "abandoned_cart.yaml", REPO / "triggers" / "templates"
    )
    assert problems == []
    assert trigger is not None
    return TriggerIndex.of([trigger])


def someone_in(index: TriggerIndex, arm: str) -> PersonId:
    """The first user-<n> the stable hash puts in ``arm``."""
    return user_in(index.triggers["abandoned_cart"], arm)


class Evaluate:
    """EvaluateService on fakes, fed as the stream and the scheduler feed it."""

    def __init__(self, index: TriggerIndex) -> None:
        self.people, self.engine = InMemoryPeople(), InMemoryEngineStore()
        self.scheduler, self.queue = FakeScheduler(), FakeQueue()
        self.experiments = InMemoryExperiments()
        self.service = EvaluateService(
            self.people, self.engine, self.scheduler, self.queue, index, self.experiments
        )
        self._sequence = itertools.count(1)

    def cart(self, person: PersonId, cart: str, at: datetime = NOW) -> None:
        user = person.value
        messages: list[dict[str, Any]] = [
            {"type": "identify", "userId": user, "messageId": f"id-{user}-{cart}",
             "timestamp": (at - timedelta(minutes=1)).isoformat(),
             "traits": {"email": f"{user}@example.com"}},
            {"type": "track", "userId": user, "event": "Product Added",
             "messageId": f"add-{user}-{cart}", "timestamp": at.isoformat(),
             "properties": {"cart_id": cart, "name": "Teapot", "price": 9.5}},
        ]  # fmt: skip
        intake = parse({"batch": messages}, route="batch", received_at=at)
        stored = [StoredEvent(person=person, event=event) for event in intake.events]
        self.people.put_events(stored, {}, timedelta(days=90))
        work = self.service.batch(stored, ARN, at)
        for each in stored:
            work.handle(next(self._sequence), each, at)
        assert work.finish() == set()

    def due(self) -> Iterator[Armed]:
        for armed in list(self.scheduler.schedules.values()):
            payload = {**armed.payload, "scheduledTime": armed.due.isoformat()}
            self.service.on_timer(TimerPayload.parse(payload), ARN)
            yield armed


def test_a_person_enters_in_one_arm_and_it_is_kept_with_their_profile(
    index: TriggerIndex,
) -> None:
    """The first entry assigns the stable arm and the saved profile keeps it."""
    # given
    evaluate, person = Evaluate(index), someone_in(index, "h24")

    # when
    evaluate.cart(person, "c1")

    # then
    key = arm_key(index.triggers["abandoned_cart"])
    assert evaluate.people.profiles[person].arms == {key: "h24"}
    (pending,) = [d for d in evaluate.engine.decisions if d.outcome == "pending"]
    assert pending.arm == "h24"


def test_a_kept_arm_wins_over_what_the_weights_would_give_now(index: TriggerIndex) -> None:
    """A person whose profile already holds an arm re-enters in it, not in the hash's."""
    # given: someone the hash puts in h24, but whose profile says h48
    evaluate, person = Evaluate(index), someone_in(index, "h24")
    evaluate.cart(person, "c1")
    key = arm_key(index.triggers["abandoned_cart"])
    profile = evaluate.people.profiles[person]
    evaluate.people.profiles[person] = type(profile)(**{**profile.__dict__, "arms": {key: "h48"}})

    # when
    evaluate.cart(person, "c2", at=NOW + timedelta(hours=1))

    # then
    arms = [d.arm for d in evaluate.engine.decisions if d.occurrence == "cart_id=c2"]
    assert arms == ["h48"]


def test_each_variant_waits_its_own_absence_window(index: TriggerIndex) -> None:
    """h48's reminder is due 48 hours after the cart, h24's after 24."""
    # given
    evaluate = Evaluate(index)

    # when
    evaluate.cart(someone_in(index, "h24"), "c24")
    evaluate.cart(someone_in(index, "h48"), "c48")

    # then
    due = sorted(armed.due - NOW for armed in evaluate.scheduler.schedules.values())
    assert due == [timedelta(hours=24), timedelta(hours=48)]


def test_the_holdout_is_decided_and_recorded_but_never_queued(index: TriggerIndex) -> None:
    """A holdout cart is waited for like the others; at its due time the fire is recorded
    (held_out, naming the holdout) and nothing goes to the send queue."""
    # given
    evaluate, person = Evaluate(index), someone_in(index, HOLDOUT)
    evaluate.cart(person, "c1")

    # when
    list(evaluate.due())

    # then
    assert evaluate.queue.messages == []
    (fire,) = evaluate.engine.fires.values()
    assert fire.variant == HOLDOUT
    (held,) = [d for d in evaluate.engine.decisions if d.outcome == "held_out"]
    assert held.arm == HOLDOUT
    assert "not sent" in held.reason


def test_a_variants_fire_carries_its_arm_and_its_template(index: TriggerIndex) -> None:
    """h48's fire is queued naming its arm, with the template the variant chose."""
    # given
    evaluate = Evaluate(index)
    evaluate.cart(someone_in(index, "h48"), "c1")

    # when
    list(evaluate.due())

    # then
    (queued,) = evaluate.queue.messages
    assert (queued.fire.variant, queued.fire.template) == ("h48", "re_engagement")


def test_the_backtest_counts_fires_per_arm(index: TriggerIndex) -> None:
    """Replayed carts fire in each person's arm; the arms' counts add up to the fires, and
    the holdout's share is about its 10 %."""
    # given: 300 people each leave a cart, and a bystander runs the clock three days on
    messages: list[dict[str, Any]] = []
    for n in range(300):
        user = f"user-{n}"
        messages += [
            {"type": "identify", "userId": user, "traits": {"email": f"{user}@example.com"},
             "timestamp": NOW.isoformat()},
            {"type": "track", "userId": user, "event": "Product Added",
             "properties": {"cart_id": f"c-{n}"}, "timestamp": NOW.isoformat()},
        ]  # fmt: skip
    messages.append(
        {"type": "track", "userId": "bystander", "event": "Ping",
         "timestamp": (NOW + timedelta(days=3)).isoformat()}
    )  # fmt: skip
    events, skipped = read_events(json.dumps(message) for message in messages)
    assert skipped == []

    # when
    report = backtest(events, list(index.triggers.values())).to_json()

    # then
    cart = report["triggers"]["abandoned_cart"]
    assert set(cart["per_arm"]) == {"h24", "h48", HOLDOUT}
    assert sum(cart["per_arm"].values()) == cart["fires"] == 300
    assert 15 <= cart["per_arm"][HOLDOUT] <= 45
