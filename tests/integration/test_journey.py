"""Journeys on moto through the real handlers: the shipped cart_recovery_series (switched on in
a copy of the triggers folder) walked by the stream and by its schedules, invoked as
EventBridge Scheduler would. Each send step reaches the send queue once and in order,
whatever is redelivered, late or interrupted."""

from __future__ import annotations

import contextlib
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from nudge.adapters import keys
from nudge.adapters.engine_store import EngineStore
from nudge.adapters.queue import SendQueue
from nudge.domain.person import PersonId

from tests.integration._harness import NOW, Aws, Invoke, Stream, beacon
from tests.integration._journeys import SERIES, journey_folder

HOUR, DAY = timedelta(hours=1), timedelta(days=1)
ADA_ID = "ada"
ADA = f"u:{ADA_ID}"
REMINDER_DUE = NOW + HOUR  # step 0 waits an hour
BRANCH_DUE = REMINDER_DUE + DAY  # step 2 waits up to a day for checkout
# A journey of its own: wait up to a day for checkout, then (either way) a last call.
FOLLOW_UP = "checkout_follow_up"
FOLLOW_UP_YAML = f"""\
id: {FOLLOW_UP}
when: {{event: Product Added}}
key: properties.cart_id
audience: {{path: traits.email, exists: true}}
reentry: every_time
steps:
  - wait_until: {{event: Checkout Started, within: 1d, same: properties.cart_id, then: continue}}
  - send: {{channel: email, template: cart_last_call}}
"""


# ---- the functions, loaded on the journey triggers -------------------------------------


@pytest.fixture
def evaluate(aws: Aws, tmp_path: Path) -> Invoke:
    """Evaluate on a triggers folder holding the series and the follow-up journey."""
    folder = journey_folder(tmp_path / "triggers", {f"{FOLLOW_UP}.yaml": FOLLOW_UP_YAML})
    aws.monkeypatch.setenv("NUDGE_TRIGGERS_DIR", str(folder))
    return aws.load_handler("Evaluate")


@pytest.fixture
def ingest(aws: Aws, evaluate: Invoke) -> Invoke:
    return aws.load_handler("Ingest")


@pytest.fixture
def stream(aws: Aws, evaluate: Invoke) -> Stream:
    return Stream.of(aws, evaluate)


# ---- messages in, the stream, schedules, the queue -----------------------------------


def _send(ingest: Invoke, stream: Stream, *messages: dict[str, Any], at: datetime) -> None:
    """Ingest receives the messages at ``at``; Evaluate decides them then."""
    assert stream.deliver(_received(ingest, stream, list(messages), at)) == [
        {"batchItemFailures": []}
    ]


def _received(
    ingest: Invoke, stream: Stream, messages: list[dict[str, Any]], at: datetime
) -> list[dict[str, Any]]:
    """The stream records Ingest writes for ``messages`` received at ``at``, stamped then."""
    response = ingest(beacon("batch", {"batch": messages}, at=at))
    assert response["statusCode"] == 200, response
    records = stream.read()
    for record in records:
        record["dynamodb"]["ApproximateCreationDateTime"] = int(at.timestamp())
    return records


def _identify(user: str, anonymous_id: str | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {
        "type": "identify",
        "userId": user,
        "messageId": f"id-{user}-{anonymous_id}",
        "timestamp": (NOW - timedelta(minutes=5)).isoformat(),
        "traits": {"email": f"{user}@example.com"},
    }
    if anonymous_id:
        message["anonymousId"] = anonymous_id
    return message


def _track(
    event: str, message_id: str, at: datetime, who: dict[str, str], **properties: Any
) -> dict[str, Any]:
    return {
        "type": "track",
        "event": event,
        "messageId": message_id,
        "timestamp": at.isoformat(),
        "properties": properties,
        **who,
    }


def _added(cart: str, price: float, at: datetime = NOW, **who: str) -> dict[str, Any]:
    return _track(
        "Product Added",
        f"add-{cart}-{price}",
        at,
        who or {"userId": ADA_ID},
        cart_id=cart,
        product_id=f"sku-{price}",
        name=f"Product at {price}",
        price=price,
        quantity=1,
    )


def _checkout(cart: str, at: datetime) -> dict[str, Any]:
    return _track("Checkout Started", f"checkout-{cart}", at, {"userId": ADA_ID}, cart_id=cart)


def _order(cart: str, at: datetime) -> dict[str, Any]:
    return _track("Order Completed", f"order-{cart}", at, {"userId": ADA_ID}, cart_id=cart)


def _schedules(aws: Aws, trigger: str = SERIES) -> list[dict[str, Any]]:
    """The trigger's schedules in the timer group, each with its Target.Input parsed."""
    group = aws.environment("Evaluate")["NUDGE_SCHEDULE_GROUP"]
    found = []
    for summary in aws.scheduler.list_schedules(GroupName=group)["Schedules"]:
        schedule = aws.scheduler.get_schedule(Name=summary["Name"], GroupName=group)
        payload = json.loads(schedule["Target"]["Input"])
        if payload.get("trigger") == trigger:
            found.append({**schedule, "payload": payload})
    return sorted(found, key=lambda schedule: str(schedule["payload"]["due"]))


def _timer_event(schedule: dict[str, Any], scheduled: datetime | None = None) -> dict[str, Any]:
    """What EventBridge Scheduler invokes with: the Input, its scheduled time filled in."""
    at = scheduled or datetime.fromisoformat(schedule["payload"]["due"])
    raw = str(schedule["Target"]["Input"])
    stamped = raw.replace("<aws.scheduler.scheduled-time>", at.strftime("%Y-%m-%dT%H:%M:%SZ"))
    event: dict[str, Any] = json.loads(stamped)
    return event


def _run(
    aws: Aws, evaluate: Invoke, schedule: dict[str, Any], scheduled: datetime | None = None
) -> dict[str, Any]:
    """Scheduler runs a schedule: Evaluate invoked with its input; the run complete, the
    schedule is deleted (ActionAfterCompletion DELETE), which moto does not do itself."""
    response = evaluate(_timer_event(schedule, scheduled))
    group = aws.environment("Evaluate")["NUDGE_SCHEDULE_GROUP"]
    with contextlib.suppress(aws.scheduler.exceptions.ResourceNotFoundException):
        aws.scheduler.delete_schedule(Name=schedule["Name"], GroupName=group)
    return response


def _run_clock(aws: Aws, evaluate: Invoke, until: datetime, trigger: str = SERIES) -> None:
    """Each of the trigger's schedules due by ``until`` invoked at its due time, earliest
    first, the ones a step arms included."""
    invoked: set[str] = set()
    while due := [
        s
        for s in _schedules(aws, trigger)
        if s["Name"] not in invoked and datetime.fromisoformat(s["payload"]["due"]) <= until
    ]:
        invoked.add(due[0]["Name"])
        _run(aws, evaluate, due[0])


def _timers(aws: Aws, trigger: str = SERIES, person: str = ADA) -> list[dict[str, Any]]:
    return aws.dynamodb.query(
        TableName=aws.table,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :timer)",
        ExpressionAttributeValues={
            ":pk": {"S": keys.person_pk(PersonId.parse(person))},
            ":timer": {"S": f"{keys.TIMER_SK_PREFIX}{trigger}#"},
        },
    )["Items"]


def _decisions(aws: Aws, trigger: str = SERIES, person: str = ADA) -> list[dict[str, Any]]:
    engine = EngineStore(aws.dynamodb, aws.table, timedelta(days=30))
    return [d for d in engine.decisions([PersonId.parse(person)]) if d["trigger"] == trigger]


def _queued(aws: Aws, trigger: str = SERIES) -> list[tuple[str, str, str]]:
    """The trigger's fires on the send queue, in the order queued: (occurrence, template,
    fired at). Received, so each is seen once."""
    return [
        (fire["occurrence"], fire["template"], fire["firedAt"])
        for fire in _queued_fires(aws)
        if fire["trigger"] == trigger
    ]


def _queued_fires(aws: Aws) -> list[dict[str, Any]]:
    url = aws.environment("Evaluate")["NUDGE_SEND_QUEUE_URL"]
    fires = []
    while messages := aws.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get(
        "Messages", []
    ):
        fires += [json.loads(message["Body"]) for message in messages]
    return fires


def _at(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


REMINDER = ("cart_id=c1/1", "cart_reminder", _at(REMINDER_DUE))
LAST_CALL = ("cart_id=c1/3.else.0", "cart_last_call", _at(BRANCH_DUE))


@pytest.fixture
def cart_begun(ingest: Invoke, stream: Stream) -> None:
    """ada (with an email) put one item of 10 in cart c1 at NOW: the series waits an hour."""
    _send(ingest, stream, _identify(ADA_ID), _added("c1", 10.0), at=NOW)


# ---- each step once, in order ---------------------------------------------------------


def test_a_small_cart_gets_the_reminder_then_the_last_call(
    aws: Aws, evaluate: Invoke, cart_begun: None
):
    """A cart of 10 gets the reminder at +1h and the last call (the else branch) a day later."""
    # given: the cart_begun fixture
    # when
    _run_clock(aws, evaluate, BRANCH_DUE + DAY)
    # then
    assert _queued(aws) == [REMINDER, LAST_CALL]
    assert _timers(aws) == []
    assert _schedules(aws) == []


def test_a_cart_over_100_gets_the_reminder_then_free_shipping(
    aws: Aws, ingest: Invoke, stream: Stream, evaluate: Invoke
):
    """A cart of 150 takes the then branch: the reminder, then free shipping, nothing else."""
    # given
    _send(ingest, stream, _identify(ADA_ID), _added("c1", 150.0), at=NOW)
    # when
    _run_clock(aws, evaluate, BRANCH_DUE + DAY)
    # then
    assert _queued(aws) == [
        REMINDER,
        ("cart_id=c1/3.then.0", "cart_free_shipping", _at(BRANCH_DUE)),
    ]


def test_the_first_timer_sends_the_reminder_and_waits_at_the_checkout_step(
    aws: Aws, evaluate: Invoke, cart_begun: None
):
    """At +1h the reminder goes and the one timer moves to step 2, due a day later."""
    # given
    (schedule,) = _schedules(aws)
    # when
    response = _run(aws, evaluate, schedule)
    # then
    assert response == {"decisions": ["fired", "pending"]}
    assert _queued(aws) == [REMINDER]
    ((timer,),) = [_timers(aws)]
    assert (timer["step"]["S"], timer["due"]["S"]) == ("2", _at(BRANCH_DUE))
    assert [s["payload"]["due"] for s in _schedules(aws)] == [BRANCH_DUE.isoformat()]


# ---- exits and wait_until ---------------------------------------------------------------


def test_an_order_between_steps_ends_the_journey_at_the_step_it_waits_at(
    aws: Aws, ingest: Invoke, stream: Stream, evaluate: Invoke, cart_begun: None
):
    """An Order Completed during the day's wait: no later send, no timer, no schedule."""
    # given
    _run_clock(aws, evaluate, REMINDER_DUE)
    ordered = REMINDER_DUE + 3 * HOUR
    # when
    _send(ingest, stream, _order("c1", ordered), at=ordered)
    _run_clock(aws, evaluate, BRANCH_DUE + DAY)
    # then
    assert _queued(aws) == [REMINDER]
    assert _timers(aws) == []
    assert _schedules(aws) == []
    (exited,) = [d for d in _decisions(aws) if d["outcome"] == "exited"]
    assert exited["reason"].startswith("step 2: Order Completed at")


def test_checkout_for_the_cart_during_the_wait_ends_the_journey(
    aws: Aws, ingest: Invoke, stream: Stream, evaluate: Invoke, cart_begun: None
):
    """wait_until then exit: Checkout Started for c1 within the day means no branch send."""
    # given
    _run_clock(aws, evaluate, REMINDER_DUE)
    started = REMINDER_DUE + 2 * HOUR
    # when
    _send(ingest, stream, _checkout("c1", started), at=started)
    _run_clock(aws, evaluate, BRANCH_DUE + DAY)
    # then
    assert _queued(aws) == [REMINDER]
    assert (_timers(aws), _schedules(aws)) == ([], [])
    (exited,) = [d for d in _decisions(aws) if d["outcome"] == "exited"]
    assert exited["reason"].startswith("step 2: Checkout Started at")


def test_checkout_for_another_cart_does_not_end_the_journey(
    aws: Aws, ingest: Invoke, stream: Stream, evaluate: Invoke, cart_begun: None
):
    """A Checkout Started for cart c2 is not the one step 2 waits for: the last call goes."""
    # given
    _run_clock(aws, evaluate, REMINDER_DUE)
    started = REMINDER_DUE + 2 * HOUR
    # when
    _send(ingest, stream, _checkout("c2", started), at=started)
    _run_clock(aws, evaluate, BRANCH_DUE + DAY)
    # then
    assert _queued(aws) == [REMINDER, LAST_CALL]


def test_wait_until_continue_moves_on_when_the_event_comes(
    aws: Aws, ingest: Invoke, stream: Stream, evaluate: Invoke, cart_begun: None
):
    """then: continue: Checkout Started at +2h sends the next step at +2h, and ends it."""
    # given
    started = NOW + 2 * HOUR
    # when
    _send(ingest, stream, _checkout("c1", started), at=started)
    # then
    assert _queued(aws, FOLLOW_UP) == [("cart_id=c1/1", "cart_last_call", _at(started))]
    assert (_timers(aws, FOLLOW_UP), _schedules(aws, FOLLOW_UP)) == ([], [])
    _run_clock(aws, evaluate, NOW + 2 * DAY, FOLLOW_UP)
    assert _queued(aws, FOLLOW_UP) == []


def test_wait_until_continue_times_out_into_the_next_step(
    aws: Aws, evaluate: Invoke, cart_begun: None
):
    """then: continue without the event: the next step is sent when the day is up."""
    # given: the cart_begun fixture, and no checkout
    # when
    _run_clock(aws, evaluate, NOW + 2 * DAY, FOLLOW_UP)
    # then
    assert _queued(aws, FOLLOW_UP) == [("cart_id=c1/1", "cart_last_call", _at(NOW + DAY))]
    assert _timers(aws, FOLLOW_UP) == []


# ---- exactly once: redelivered, repeated, late, interrupted -----------------------------


def test_stream_records_delivered_twice_begin_the_journey_once(
    aws: Aws, ingest: Invoke, stream: Stream, evaluate: Invoke
):
    """The same records delivered twice: one timer, and each step sent once."""
    # given
    records = _received(ingest, stream, [_identify(ADA_ID), _added("c1", 10.0)], NOW)
    stream.deliver(records)
    # when
    assert stream.deliver(records) == [{"batchItemFailures": []}]
    _run_clock(aws, evaluate, BRANCH_DUE + DAY)
    # then
    assert _queued(aws) == [REMINDER, LAST_CALL]


def test_a_second_add_to_the_cart_does_not_begin_it_again(
    aws: Aws, ingest: Invoke, stream: Stream, evaluate: Invoke, cart_begun: None
):
    """Another Product Added to c1 in the first wait leaves the journey where it is."""
    # given
    later = NOW + 10 * timedelta(minutes=1)
    _send(ingest, stream, _added("c1", 20.0, later), at=later)
    # when
    _run_clock(aws, evaluate, BRANCH_DUE + DAY)
    # then
    assert [(occurrence, template) for occurrence, template, _ in _queued(aws)] == [
        REMINDER[:2],
        LAST_CALL[:2],
    ]


def test_a_schedule_invoked_twice_sends_its_step_once(aws: Aws, evaluate: Invoke, cart_begun: None):
    """Scheduler delivering the first timer twice: one reminder, the journey one step on."""
    # given
    (schedule,) = _schedules(aws)
    _run(aws, evaluate, schedule)
    # when: the same run delivered again (at least once)
    again = evaluate(_timer_event(schedule))
    # then
    assert again == {"decisions": []}
    assert _queued(aws) == [REMINDER]
    assert [timer["step"]["S"] for timer in _timers(aws)] == ["2"]


def test_an_old_steps_schedule_fired_after_the_journey_moved_on_does_nothing(
    aws: Aws, evaluate: Invoke, cart_begun: None
):
    """The first timer's schedule, fired again once step 2's has run, neither sends nor skips."""
    # given
    (first,) = _schedules(aws)
    _run(aws, evaluate, first)
    (second,) = _schedules(aws)
    _run(aws, evaluate, second)
    # when
    late = evaluate(_timer_event(first, BRANCH_DUE + HOUR))
    # then
    assert late == {"decisions": []}
    assert _queued(aws) == [REMINDER, LAST_CALL]


def test_the_last_steps_schedule_invoked_twice_sends_once(
    aws: Aws, evaluate: Invoke, cart_begun: None
):
    """Step 2's schedule delivered twice: one last call."""
    # given
    (first,) = _schedules(aws)
    _run(aws, evaluate, first)
    (second,) = _schedules(aws)
    _run(aws, evaluate, second)
    # when
    again = evaluate(_timer_event(second))
    # then
    assert again == {"decisions": []}
    assert _queued(aws) == [REMINDER, LAST_CALL]


def test_a_late_timer_runs_its_step_once(aws: Aws, evaluate: Invoke, cart_begun: None):
    """The first timer invoked five hours after its due still sends the reminder, once."""
    # given
    (schedule,) = _schedules(aws)
    late = REMINDER_DUE + 5 * HOUR
    # when
    responses = [_run(aws, evaluate, schedule, late), evaluate(_timer_event(schedule, late))]
    # then
    assert responses == [{"decisions": ["fired", "pending"]}, {"decisions": []}]
    assert _queued(aws) == [("cart_id=c1/1", "cart_reminder", _at(late))]
    assert [timer["due"]["S"] for timer in _timers(aws)] == [_at(late + DAY)]


def test_a_crash_before_the_timer_moved_on_does_not_send_the_step_again(
    aws: Aws, evaluate: Invoke, cart_begun: None, monkeypatch: pytest.MonkeyPatch
):
    """The process dies after the reminder was queued, before the timer moved to step 2:
    the redelivered timer sends no second reminder and the journey goes on to step 2."""
    # given
    (schedule,) = _schedules(aws)
    _crash_once(monkeypatch, EngineStore, "save_timer")
    with pytest.raises(RuntimeError, match="died"):
        evaluate(_timer_event(schedule))
    assert _queued(aws) == [REMINDER]
    # when: Scheduler retries the failed run
    retry = _run(aws, evaluate, schedule)
    # then
    assert retry == {"decisions": ["duplicate", "pending"]}
    assert [timer["step"]["S"] for timer in _timers(aws)] == ["2"]
    _run_clock(aws, evaluate, BRANCH_DUE + DAY)
    assert _queued(aws) == [LAST_CALL]


def test_a_crash_before_a_steps_send_was_queued_sends_it_on_redelivery(
    aws: Aws, evaluate: Invoke, cart_begun: None, monkeypatch: pytest.MonkeyPatch
):
    """The process dies after claiming the reminder, before queueing it: the redelivered
    timer queues it once and moves on."""
    # given
    (schedule,) = _schedules(aws)
    _crash_once(monkeypatch, SendQueue, "send")
    with pytest.raises(RuntimeError, match="died"):
        evaluate(_timer_event(schedule))
    assert _queued(aws) == []
    # when: Scheduler retries the failed run
    retry = _run(aws, evaluate, schedule)
    # then
    assert retry == {"decisions": ["fired", "pending"]}
    assert _queued(aws) == [REMINDER]
    assert [timer["step"]["S"] for timer in _timers(aws)] == ["2"]


def _crash_once(monkeypatch: pytest.MonkeyPatch, owner: type, name: str) -> None:
    """``owner.name`` raises the first time it is called, then works."""
    real = getattr(owner, name)
    failures = [RuntimeError("the process died halfway")]

    def crash_once(self: Any, *args: Any) -> Any:
        if failures:
            raise failures.pop()
        return real(self, *args)

    monkeypatch.setattr(owner, name, crash_once)


# ---- identity -------------------------------------------------------------------------------


def test_a_visitor_who_identifies_during_the_first_wait_gets_the_reminder(
    aws: Aws, ingest: Invoke, stream: Stream, evaluate: Invoke
):
    """An anonymous cart begins the journey; identified with an email within the hour, the
    reminder goes to the user they became (the audience is judged when the wait is over)."""
    # given
    _send(ingest, stream, _added("c1", 10.0, anonymousId="anon-1"), at=NOW)
    identified = NOW + 20 * timedelta(minutes=1)
    _send(ingest, stream, _identify(ADA_ID, anonymous_id="anon-1"), at=identified)
    # when
    _run_clock(aws, evaluate, REMINDER_DUE)
    # then
    (fire,) = _queued_fires(aws)
    assert (fire["occurrence"], fire["template"], fire["firedAt"]) == REMINDER
    assert (fire["person"], fire["userId"], fire["anonymousId"]) == (ADA, ADA_ID, "anon-1")
    assert [timer["step"]["S"] for timer in _timers(aws, person="a:anon-1")] == ["2"]


def test_a_visitors_journey_is_ended_by_the_order_of_the_user_they_became(
    aws: Aws, ingest: Invoke, stream: Stream, evaluate: Invoke
):
    """The timer stays under the visitor's partition; the user's Order Completed ends it."""
    # given
    _send(ingest, stream, _added("c1", 10.0, anonymousId="anon-1"), at=NOW)
    _send(ingest, stream, _identify(ADA_ID, anonymous_id="anon-1"), at=NOW + HOUR / 3)
    _run_clock(aws, evaluate, REMINDER_DUE)
    ordered = REMINDER_DUE + HOUR
    # when
    _send(ingest, stream, _order("c1", ordered), at=ordered)
    _run_clock(aws, evaluate, BRANCH_DUE + DAY)
    # then
    assert _queued(aws) == [REMINDER]
    assert (_timers(aws, person="a:anon-1"), _schedules(aws)) == ([], [])


def test_a_visitor_who_never_identifies_leaves_at_the_first_wait(
    aws: Aws, ingest: Invoke, stream: Stream, evaluate: Invoke
):
    """An anonymous cart whose visitor never gives an email: no reminder, the journey ends."""
    # given
    _send(ingest, stream, _added("c1", 10.0, anonymousId="anon-1"), at=NOW)
    # when
    _run_clock(aws, evaluate, BRANCH_DUE + DAY)
    # then
    assert _queued(aws) == []
    assert _timers(aws, person="a:anon-1") == []


def test_a_visitor_without_an_email_is_not_sent_the_step_a_checkout_moves_on_to(
    aws: Aws, ingest: Invoke, stream: Stream
):
    """then: continue on a visitor's Checkout Started judges the audience first: a visitor
    with no email leaves the journey there, as they would have at the timeout."""
    # given
    _send(ingest, stream, _added("c1", 10.0, anonymousId="anon-1"), at=NOW)
    started = NOW + 2 * HOUR
    checkout = _track("Checkout Started", "checkout-c1", started, {"anonymousId": "anon-1"})
    checkout["properties"] = {"cart_id": "c1"}
    # when
    _send(ingest, stream, checkout, at=started)
    # then
    assert _queued(aws, FOLLOW_UP) == []
    assert _timers(aws, FOLLOW_UP, "a:anon-1") == []
    (exited,) = [d for d in _decisions(aws, FOLLOW_UP, "a:anon-1") if d["outcome"] == "exited"]
    assert "no longer in the audience" in exited["reason"]
