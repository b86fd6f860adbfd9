"""Journeys on the in-memory fakes: the shipped cart_recovery_series walked step by step as
the stream and the scheduler drive Evaluate; each step once and in order, exits, wait_until,
branches, duplicate and stale timer fires; the model's limits; and the backtest's per-step
report."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from nudge.domain.intake import StoredEvent
from nudge.domain.person import PersonId
from nudge.domain.triggers.engine import TriggerIndex, collected
from nudge.domain.triggers.journey import next_position
from nudge.domain.triggers.loader import parse_trigger
from nudge.domain.triggers.model import Trigger
from nudge.service.backtest import backtest
from nudge.service.evaluate import EvaluateService, TimerPayload
from nudge.service.recorded_events import read_events
from pydantic import ValidationError

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
HOUR, DAY = timedelta(hours=1), timedelta(days=1)
ARN = "arn:aws:lambda:us-east-1:123456789012:function:nudge-Evaluate"
ADA = PersonId.user("ada")
TRIGGER = "cart_recovery_series"
CONTINUE_ON_CHECKOUT = """\
id: checkout_nudge
when: {event: Product Added}
key: properties.cart_id
steps:
  - wait_until: {event: Checkout Started, within: 1d, same: properties.cart_id, then: continue}
  - send: {channel: email, template: cart_reminder}
"""


def _shipped() -> Trigger:
    text = (REPO / "triggers" / f"{TRIGGER}.yaml").read_text(encoding="utf-8")
    trigger, problems = parse_trigger(text, f"{TRIGGER}.yaml", REPO / "triggers" / "templates")
    assert problems == []
    assert trigger is not None
    return trigger.model_copy(update={"enabled": True})  # shipped off: on for these tests


def _journey(text: str) -> Trigger:
    trigger, problems = parse_trigger(text, "journey.yaml", REPO / "triggers" / "templates")
    assert problems == [], problems
    assert trigger is not None
    return trigger


class Evaluate:
    """EvaluateService on fakes, fed as the stream and the scheduler feed it."""

    def __init__(self, trigger: Trigger) -> None:
        self.people, self.engine = InMemoryPeople(), InMemoryEngineStore()
        self.scheduler, self.queue = FakeScheduler(), FakeQueue()
        self.service = EvaluateService(
            self.people,
            self.engine,
            self.scheduler,
            self.queue,
            TriggerIndex.of([trigger]),
            InMemoryExperiments(),
        )
        self._sequence = itertools.count(1)
        self._ids = itertools.count(1)

    def identify(self, at: datetime = NOW - timedelta(minutes=1)) -> None:
        self._stream(
            {"type": "identify", "userId": ADA.value, "traits": {"email": "ada@example.com"}}, at
        )

    def track(self, event: str, at: datetime, **properties: Any) -> None:
        self._stream(
            {"type": "track", "userId": ADA.value, "event": event, "properties": properties}, at
        )

    def _stream(self, message: dict[str, Any], at: datetime) -> None:
        message = {**message, "messageId": f"m{next(self._ids)}", "timestamp": at.isoformat()}
        intake = parse({"batch": [message]}, route="batch", received_at=at)
        stored = [StoredEvent(person=ADA, event=event) for event in intake.events]
        self.people.put_events(stored, {}, timedelta(days=90))
        work = self.service.batch(stored, ARN, at)
        for each in stored:
            work.handle(next(self._sequence), each, at)
        assert work.finish() == set()

    def fire_schedule(self, armed: Armed, at: datetime | None = None) -> None:
        """EventBridge Scheduler invoking Evaluate with the schedule's input, then deleting
        the schedule (ActionAfterCompletion: DELETE)."""
        moment = at or armed.due
        payload = {**armed.payload, "scheduledTime": moment.isoformat()}
        self.service.on_timer(TimerPayload.parse(payload), ARN)
        self.scheduler.schedules.pop(armed.name, None)

    def next_schedule(self) -> Armed:
        (armed,) = self.scheduler.schedules.values()
        return armed

    def run_until(self, moment: datetime) -> None:
        """Every schedule due by ``moment``, earliest first."""
        while True:
            due = sorted(
                (armed for armed in self.scheduler.schedules.values() if armed.due <= moment),
                key=lambda armed: armed.due,
            )
            if not due:
                return
            self.fire_schedule(due[0])

    def sent(self) -> list[tuple[str, str]]:
        """(occurrence, template) of every fire queued, in order."""
        return [(q.fire.occurrence or "", q.fire.template) for q in self.queue.messages]

    def outcomes(self) -> list[tuple[str, str | None]]:
        return [(d.outcome, d.step) for d in self.engine.decisions]


def _added_to_cart(evaluate: Evaluate, price: float = 10.0) -> None:
    evaluate.identify()
    evaluate.track("Product Added", NOW, cart_id="c1", name="Mug", price=price, quantity=1)


# ---- the steps, in order -------------------------------------------------------------


def test_entering_the_journey_arms_its_first_wait_and_sends_nothing() -> None:
    # given
    evaluate = Evaluate(_shipped())

    # when
    _added_to_cart(evaluate)

    # then
    assert evaluate.sent() == []
    assert evaluate.next_schedule().due == NOW + HOUR
    assert evaluate.outcomes() == [("pending", "0")]


def test_after_the_first_wait_the_reminder_goes_and_the_journey_waits_for_checkout() -> None:
    # given
    evaluate = Evaluate(_shipped())
    _added_to_cart(evaluate)

    # when
    evaluate.run_until(NOW + HOUR)

    # then
    assert evaluate.sent() == [("cart_id=c1/1", "cart_reminder")]
    assert evaluate.next_schedule().due == NOW + HOUR + DAY
    ((timer, _),) = evaluate.engine.timers([ADA])
    assert (timer.step, timer.kind) == ("2", "wait_until")


def test_a_small_cart_gets_the_last_call_when_checkout_never_starts() -> None:
    # given
    evaluate = Evaluate(_shipped())
    _added_to_cart(evaluate, price=10.0)

    # when
    evaluate.run_until(NOW + 3 * DAY)

    # then
    assert evaluate.sent() == [
        ("cart_id=c1/1", "cart_reminder"),
        ("cart_id=c1/3.else.0", "cart_last_call"),
    ]
    assert evaluate.engine.timers([ADA]) == []
    assert evaluate.outcomes()[-1] == ("completed", None)


def test_a_cart_over_100_gets_free_shipping() -> None:
    # given
    evaluate = Evaluate(_shipped())
    _added_to_cart(evaluate, price=150.0)

    # when
    evaluate.run_until(NOW + 3 * DAY)

    # then
    assert evaluate.sent()[-1] == ("cart_id=c1/3.then.0", "cart_free_shipping")


def test_an_item_added_during_the_wait_counts_towards_the_branch() -> None:
    """The lists are collected when the branch is decided: 60 + 60 is over 100."""
    # given
    evaluate = Evaluate(_shipped())
    _added_to_cart(evaluate, price=60.0)
    evaluate.track("Product Added", NOW + 2 * HOUR, cart_id="c1", name="Pan", price=60.0)

    # when
    evaluate.run_until(NOW + 3 * DAY)

    # then
    assert evaluate.sent()[-1] == ("cart_id=c1/3.then.0", "cart_free_shipping")


# ---- ending early --------------------------------------------------------------------


def test_an_order_between_steps_ends_the_journey_at_the_step_it_waits_at() -> None:
    # given
    evaluate = Evaluate(_shipped())
    _added_to_cart(evaluate)
    evaluate.run_until(NOW + HOUR)

    # when
    evaluate.track("Order Completed", NOW + 2 * HOUR, cart_id="c1")
    evaluate.run_until(NOW + 3 * DAY)

    # then
    assert evaluate.sent() == [("cart_id=c1/1", "cart_reminder")]
    assert evaluate.engine.timers([ADA]) == []
    assert evaluate.scheduler.schedules == {}
    assert evaluate.outcomes()[-1] == ("exited", "2")


def test_checkout_for_the_cart_during_the_wait_ends_the_journey() -> None:
    # given
    evaluate = Evaluate(_shipped())
    _added_to_cart(evaluate)
    evaluate.run_until(NOW + HOUR)

    # when
    evaluate.track("Checkout Started", NOW + 5 * HOUR, cart_id="c1")
    evaluate.run_until(NOW + 3 * DAY)

    # then
    assert evaluate.sent() == [("cart_id=c1/1", "cart_reminder")]
    (exited,) = [d for d in evaluate.engine.decisions if d.outcome == "exited"]
    assert "Checkout Started" in exited.reason
    assert "then exit" in exited.reason


def test_checkout_for_another_cart_does_not_end_the_journey() -> None:
    # given
    evaluate = Evaluate(_shipped())
    _added_to_cart(evaluate)
    evaluate.run_until(NOW + HOUR)

    # when
    evaluate.track("Checkout Started", NOW + 5 * HOUR, cart_id="c2")
    evaluate.run_until(NOW + 3 * DAY)

    # then
    assert evaluate.sent()[-1] == ("cart_id=c1/3.else.0", "cart_last_call")


def test_a_checkout_the_stream_has_not_delivered_yet_is_seen_when_the_wait_is_due() -> None:
    """The event is stored before the timeout, but its stream record comes after: the due
    timer finds it in the person's history and ends the journey all the same."""
    # given
    evaluate = Evaluate(_shipped())
    _added_to_cart(evaluate)
    evaluate.run_until(NOW + HOUR)
    late = StoredEvent(
        person=ADA,
        event=parse(
            {
                "type": "track",
                "userId": ADA.value,
                "event": "Checkout Started",
                "messageId": "late-checkout",
                "timestamp": (NOW + 5 * HOUR).isoformat(),
                "properties": {"cart_id": "c1"},
            },
            route="track",
            received_at=NOW + 5 * HOUR,
        ).events[0],
    )
    evaluate.people.put_events([late], {}, timedelta(days=90))

    # when
    evaluate.run_until(NOW + 3 * DAY)

    # then
    assert evaluate.sent() == [("cart_id=c1/1", "cart_reminder")]
    assert evaluate.outcomes()[-1] == ("exited", "2")


def test_wait_until_with_continue_moves_on_when_the_event_comes() -> None:
    # given
    evaluate = Evaluate(_journey(CONTINUE_ON_CHECKOUT))
    evaluate.identify()
    evaluate.track("Product Added", NOW, cart_id="c1")

    # when
    evaluate.track("Checkout Started", NOW + 2 * HOUR, cart_id="c1")

    # then: sent at once, at the event's time, not after the day
    (queued,) = evaluate.queue.messages
    assert queued.fire.occurrence == "cart_id=c1/1"
    assert queued.fire.fired_at.startswith((NOW + 2 * HOUR).strftime("%Y-%m-%dT%H:%M"))
    assert evaluate.engine.timers([ADA]) == []


def test_wait_until_with_continue_moves_on_after_the_timeout_without_the_event() -> None:
    # given
    evaluate = Evaluate(_journey(CONTINUE_ON_CHECKOUT))
    evaluate.identify()
    evaluate.track("Product Added", NOW, cart_id="c1")

    # when
    evaluate.run_until(NOW + 2 * DAY)

    # then
    (queued,) = evaluate.queue.messages
    assert queued.fire.fired_at.startswith((NOW + DAY).strftime("%Y-%m-%dT%H:%M"))


# ---- exactly once --------------------------------------------------------------------


def test_a_schedule_fired_twice_sends_its_step_once() -> None:
    # given
    evaluate = Evaluate(_shipped())
    _added_to_cart(evaluate)
    first = evaluate.next_schedule()

    # when
    evaluate.fire_schedule(first)
    evaluate.fire_schedule(first)

    # then
    assert evaluate.sent() == [("cart_id=c1/1", "cart_reminder")]
    ((timer, _),) = evaluate.engine.timers([ADA])
    assert timer.step == "2"


def test_an_old_steps_schedule_fired_after_the_journey_moved_on_does_nothing() -> None:
    # given
    evaluate = Evaluate(_shipped())
    _added_to_cart(evaluate)
    first = evaluate.next_schedule()
    evaluate.fire_schedule(first)
    second = evaluate.next_schedule()

    # when: the first schedule comes again a day late
    evaluate.fire_schedule(first, at=NOW + DAY)

    # then
    assert evaluate.sent() == [("cart_id=c1/1", "cart_reminder")]
    assert evaluate.next_schedule() == second


def test_a_due_step_leaves_its_schedule_to_scheduler_to_delete() -> None:
    """Moving on from a step that came due, and finishing after the last, call no
    DeleteSchedule: the running schedule is deleted by Scheduler once it has run."""
    # given
    evaluate = Evaluate(_shipped())
    _added_to_cart(evaluate)

    # when
    evaluate.run_until(NOW + 3 * DAY)

    # then
    assert evaluate.sent()[-1] == ("cart_id=c1/3.else.0", "cart_last_call")
    assert [call.split()[0] for call in evaluate.scheduler.calls] == ["create", "create"]
    assert evaluate.scheduler.schedules == {}


def test_an_exit_before_the_step_is_due_deletes_its_schedule() -> None:
    """An order while the journey waits ends it early: the waiting step's schedule has
    not fired, so it is deleted."""
    # given
    evaluate = Evaluate(_shipped())
    _added_to_cart(evaluate)
    waiting = evaluate.next_schedule()

    # when
    evaluate.track("Order Completed", NOW + HOUR / 2, cart_id="c1")

    # then
    assert evaluate.scheduler.calls[-1] == f"delete {waiting.name}"
    assert evaluate.scheduler.schedules == {}


def test_a_late_timer_runs_its_step_once_from_its_scheduled_time() -> None:
    # given
    evaluate = Evaluate(_shipped())
    _added_to_cart(evaluate)
    first = evaluate.next_schedule()

    # when: Scheduler delivers it five hours late
    evaluate.scheduler.schedules.pop(first.name)
    evaluate.fire_schedule(first, at=NOW + 6 * HOUR)

    # then: the next wait counts from when the step ran
    assert evaluate.sent() == [("cart_id=c1/1", "cart_reminder")]
    assert evaluate.next_schedule().due == NOW + 6 * HOUR + DAY


def test_a_second_product_added_to_the_same_cart_does_not_begin_it_again() -> None:
    # given
    evaluate = Evaluate(_shipped())
    _added_to_cart(evaluate)

    # when
    evaluate.track("Product Added", NOW + 10 * 60 * timedelta(seconds=1), cart_id="c1", price=5)
    evaluate.run_until(NOW + 3 * DAY)

    # then
    assert [occurrence for occurrence, _ in evaluate.sent()] == [
        "cart_id=c1/1",
        "cart_id=c1/3.else.0",
    ]


def test_a_journey_whose_steps_were_edited_under_a_waiting_person_ends_there() -> None:
    """The timer waits at step 2; the new version's step 2 is a send: the journey ends,
    saying why, rather than guess where the person should be."""
    # given
    evaluate = Evaluate(_shipped())
    _added_to_cart(evaluate)
    evaluate.run_until(NOW + HOUR)
    edited = _journey(
        "id: cart_recovery_series\nwhen: {event: Product Added}\nkey: properties.cart_id\n"
        "steps:\n  - wait: 1h\n  - send: {channel: email, template: cart_reminder}\n"
        "  - send: {channel: email, template: cart_last_call}\n"
    )
    evaluate.service.index = TriggerIndex.of([edited])

    # when
    evaluate.run_until(NOW + 3 * DAY)

    # then
    assert evaluate.sent() == [("cart_id=c1/1", "cart_reminder")]
    assert evaluate.engine.timers([ADA]) == []
    (exited,) = [d for d in evaluate.engine.decisions if d.outcome == "exited"]
    assert "steps changed" in exited.reason


# ---- the model's limits --------------------------------------------------------------


def _steps_trigger(steps: list[Any], **extra: Any) -> dict[str, Any]:
    return {"id": "j", "when": {"event": "A"}, "steps": steps, **extra}


SEND = {"send": {"channel": "email", "template": "cart_reminder"}}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (_steps_trigger([SEND] * 21), "21 steps: a journey has at most 20"),
        (
            _steps_trigger(
                [
                    {
                        "if": {"path": "traits.a", "exists": True},
                        "then": [
                            {
                                "if": {"path": "traits.b", "exists": True},
                                "then": [
                                    {
                                        "if": {"path": "traits.c", "exists": True},
                                        "then": [
                                            {
                                                "if": {"path": "traits.d", "exists": True},
                                                "then": [SEND],
                                            }
                                        ],
                                    }
                                ],
                            }
                        ],
                    }
                ]
            ),
            "branches nest deeper than 3 levels",
        ),
        (
            _steps_trigger(
                [
                    {"wait": "60d"},
                    SEND,
                    {
                        "if": {"path": "traits.a", "exists": True},
                        "then": [{"wait": "1d"}],
                        "else": [{"wait": "31d"}],
                    },
                    SEND,
                ]
            ),
            "the longest way through waits 91d: at most 90d",
        ),
        (_steps_trigger([]), "steps is empty"),
        (_steps_trigger([{"wait": "1h"}]), "at least one send step"),
        (_steps_trigger([SEND], send=SEND["send"]), "has both send and steps"),
        (_steps_trigger([SEND], delay="1h"), "a journey waits with a wait step, not delay"),
        (
            _steps_trigger([{"wait_until": {"event": "B", "within": "1d", "then": "maybe"}}]),
            "'exit' or 'continue'",
        ),
        (_steps_trigger([{"wait": "30s"}, SEND]), "out of range"),
        (_steps_trigger([{"wait": "91d"}, SEND]), "out of range"),
        (
            _steps_trigger(
                [{"wait": "1d"}, SEND], unless={"event": "Order Completed", "within": "1h"}
            ),
            "unless.within (1h) is shorter than the journey's waits (1d)",
        ),
        (_steps_trigger([{"foo": 1}, SEND]), "a step is one of wait, send, wait_until or if"),
        (_steps_trigger([{"if": {"path": "traits.a", "exists": True}}, SEND]), "then"),
        (
            _steps_trigger([{"send": {"channel": "email", "template": "x", "at": "25:00"}}]),
            "'25:00' is neither a time of day",
        ),
    ],
    ids=[
        "too many steps",
        "too deep",
        "too long",
        "empty",
        "no send",
        "send and steps",
        "delay",
        "bad then",
        "short wait",
        "long wait",
        "unless shorter than the waits",
        "unknown step",
        "if without then",
        "bad send time",
    ],
)
def test_a_journey_outside_the_limits_is_refused(document: dict[str, Any], message: str) -> None:
    # given / when
    with pytest.raises(ValidationError) as refused:
        Trigger.model_validate(document)

    # then
    assert message in str(refused.value)


def test_a_missing_template_in_a_step_is_reported_at_that_steps_line() -> None:
    # given
    text = (
        "id: j\nwhen: {event: A}\nsteps:\n  - wait: 1h\n"
        "  - send: {channel: email, template: no_such_template}\n"
    )

    # when
    _, problems = parse_trigger(text, "j.yaml", REPO / "triggers" / "templates")

    # then
    (problem,) = problems
    assert problem.line == 5
    assert "steps.1.send.template: no template named 'no_such_template'" in problem.message


@pytest.mark.parametrize(
    ("step", "line", "message"),
    [
        ("- foo: 1", 4, "steps.0: a step is one of wait, send, wait_until or if"),
        ("- if: {path: traits.a, exists: true}", 4, "steps.0: then is required"),
        ("- wait: 0", 4, "steps.0.wait: 0s is out of range (1m to 90d)"),
    ],
    ids=["unknown step", "if without then", "wait of 0"],
)
def test_nudge_validate_names_the_line_of_a_bad_step(step: str, line: int, message: str) -> None:
    # given
    text = f"id: j\nwhen: {{event: A}}\nsteps:\n  {step}\n  - {SEND_TEXT}\n"

    # when
    _, problems = parse_trigger(text, "j.yaml", REPO / "triggers" / "templates")

    # then
    (problem,) = problems
    assert (problem.line, problem.message) == (line, message)


SEND_TEXT = "send: {channel: email, template: cart_reminder}"


def test_positions_go_into_a_branch_and_out_after_it() -> None:
    # given
    steps = _shipped().steps or []

    # when / then
    assert next_position(steps, "0") == "1"
    assert next_position(steps, "2") == "3"
    assert next_position(steps, "3.then.0") is None
    assert next_position(steps, "3.else.0") is None


def test_collected_lists_carry_their_count_and_total() -> None:
    """price x quantity per product, a product added twice counted once, at its latest."""
    # given
    trigger = _shipped()
    entry = {
        "type": "track",
        "event": "Product Added",
        "messageId": "a",
        "timestamp": NOW.isoformat(),
        "properties": {"cart_id": "c1", "product_id": "p1", "price": 20, "quantity": 2},
    }
    history = [
        {**entry, "messageId": "b", "properties": {"cart_id": "c1", "product_id": "p2",
                                                   "price": 5.5}},
        {**entry, "messageId": "c", "properties": {"cart_id": "c2", "product_id": "p3",
                                                   "price": 99}},
        {**entry, "messageId": "d", "properties": {"cart_id": "c1", "product_id": "p4",
                                                   "price": "free"}},
    ]  # fmt: skip

    # when
    lists = collected(trigger, entry, history, NOW + HOUR)

    # then
    assert (lists["items_count"], lists["items_total"]) == (3, 45.5)


# ---- the backtest ----------------------------------------------------------------------


def test_the_backtest_reports_each_step_entered_sent_and_left() -> None:
    # given: one shopper orders, one starts checkout, one small and one big cart go quiet
    def track(user: str, event: str, at: datetime, **properties: Any) -> str:
        return json.dumps(
            {"type": "track", "event": event, "userId": user, "messageId": f"{user}-{event}",
             "timestamp": at.isoformat(), "properties": {"cart_id": "c1", **properties}}
        )  # fmt: skip

    lines = [
        json.dumps({"type": "identify", "userId": user, "messageId": f"id-{user}",
                    "timestamp": NOW.isoformat(), "traits": {"email": f"{user}@example.com"}})
        for user in ("buyer", "checker", "small", "big")
    ]  # fmt: skip
    lines += [track(user, "Product Added", NOW, price=10) for user in ("buyer", "checker", "small")]
    lines += [
        track("big", "Product Added", NOW, price=150),
        track("buyer", "Order Completed", NOW + timedelta(minutes=30)),
        track("checker", "Checkout Started", NOW + 3 * HOUR),
    ]
    events, _ = read_events(lines)

    # when
    report = backtest(events, [_shipped()], until=NOW + 3 * DAY).to_json()

    # then
    journey = report["triggers"][TRIGGER]["journey"]
    assert journey["entered"] == 4
    assert journey["steps"]["0"] == {
        "entered": 4, "sent": 0, "exited": {"exit: Order Completed": 1}
    }  # fmt: skip
    assert journey["steps"]["1"]["sent"] == 3
    assert journey["steps"]["2"]["exited"] == {"wait_until: Checkout Started": 1, "completed": 2}
    assert journey["steps"]["3.then.0"]["sent"] == 1
    assert journey["steps"]["3.else.0"]["sent"] == 1


def test_a_step_fire_names_its_step_and_is_capped_apart_from_the_other_steps() -> None:
    """Delivery's per-trigger cap counts a journey's steps apart: the reminder and the last
    call may go on one day; the channel caps still count both."""
    # given
    evaluate = Evaluate(_journey(CONTINUE_ON_CHECKOUT))
    evaluate.identify()
    evaluate.track("Product Added", NOW, cart_id="c1")

    # when
    evaluate.track("Checkout Started", NOW + 2 * HOUR, cart_id="c1")

    # then
    (queued,) = evaluate.queue.messages
    assert queued.fire.step == "1"
    assert queued.fire.cap_key == "checkout_nudge/1"
    assert queued.fire.to_record()["step"] == "1"
