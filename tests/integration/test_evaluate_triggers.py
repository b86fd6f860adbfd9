"""The Evaluate function deciding the shipped triggers on moto: timers armed as schedules,
fired through the handler as EventBridge Scheduler would, exactly once onto the send queue."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any, cast

import pytest
from nudge.adapters import keys
from nudge.adapters.engine_store import EngineStore
from nudge.adapters.queue import SendQueue
from nudge.adapters.store import EventStore
from nudge.domain.messages import FireMessage
from nudge.domain.person import PersonId
from nudge.domain.triggers.engine import Pending

from tests.arms import shopper_in
from tests.integration._harness import NOW, Aws, Invoke, Stream, beacon

DAY = timedelta(days=1)
# ada: a shopper the abandoned_cart experiment puts in h24 (no order within 24h), so her cart
# is due a day after the Product Added at NOW.
ADA_ID = shopper_in("ada")
ADA = f"u:{ADA_ID}"
CART_DUE = NOW + DAY


# ---- the world around the function: beacons in, the stream, schedules, the queue -------


def _send(ingest: Invoke, *messages: dict[str, Any], at: datetime = NOW) -> None:
    response = ingest(beacon("batch", {"batch": list(messages)}, at=at))
    assert response["statusCode"] == 200, response


def _evaluate(stream: Stream, at: datetime) -> list[dict[str, Any]]:
    """Deliver what the stream holds, stamped as written at ``at`` (the decision time)."""
    records = stream.read()
    for record in records:
        record["dynamodb"]["ApproximateCreationDateTime"] = int(at.timestamp())
    return stream.deliver(records)


def _identify(
    user: str, email: str | None = None, anonymous_id: str | None = None, **traits: Any
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "type": "identify",
        "userId": user,
        "messageId": f"id-{user}-{anonymous_id}",
        "timestamp": (NOW - timedelta(minutes=5)).isoformat(),
        "traits": {**({"email": email} if email else {}), **traits},
    }
    if anonymous_id:
        message["anonymousId"] = anonymous_id
    return message


def _track(
    event: str,
    message_id: str,
    at: datetime = NOW,
    *,
    user: str | None = None,
    anonymous_id: str | None = None,
    **properties: Any,
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "type": "track",
        "event": event,
        "messageId": message_id,
        "timestamp": at.isoformat(),
        "properties": properties,
    }
    if user:
        message["userId"] = user
    if anonymous_id:
        message["anonymousId"] = anonymous_id
    return message


def _product_added(cart: str, sku: str, at: datetime = NOW, **who: Any) -> dict[str, Any]:
    return _track(
        "Product Added",
        f"add-{cart}-{sku}",
        at,
        cart_id=cart,
        product_id=sku,
        name=f"Product {sku}",
        price=10.0,
        quantity=1,
        **who,
    )


def _order_completed(cart: str, at: datetime, **who: Any) -> dict[str, Any]:
    return _track("Order Completed", f"order-{cart}", at, cart_id=cart, total=10.0, **who)


def _env(aws: Aws, name: str) -> str:
    return aws.environment("Evaluate")[name]


def _schedules(aws: Aws, trigger: str) -> list[dict[str, Any]]:
    """The trigger's schedules in the timer group, each with its Target.Input parsed."""
    group = _env(aws, "NUDGE_SCHEDULE_GROUP")
    found = []
    for summary in aws.scheduler.list_schedules(GroupName=group)["Schedules"]:
        schedule = aws.scheduler.get_schedule(Name=summary["Name"], GroupName=group)
        payload = json.loads(schedule["Target"]["Input"])
        if payload.get("trigger") == trigger:  # the recurring sweep has none
            found.append({**schedule, "payload": payload})
    return sorted(found, key=lambda schedule: str(schedule["Name"]))


def _timer_event(schedule: dict[str, Any], scheduled: datetime | None = None) -> dict[str, Any]:
    """What EventBridge Scheduler invokes with: the Input, its scheduled time filled in."""
    raw = str(schedule["Target"]["Input"])
    at = scheduled or datetime.fromisoformat(schedule["payload"]["due"])
    stamped = raw.replace("<aws.scheduler.scheduled-time>", at.strftime("%Y-%m-%dT%H:%M:%SZ"))
    event: dict[str, Any] = json.loads(stamped)
    return event


def _timers(aws: Aws, person: str, trigger: str) -> list[dict[str, Any]]:
    items = aws.dynamodb.query(
        TableName=aws.table,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :timer)",
        ExpressionAttributeValues={
            ":pk": {"S": keys.person_pk(PersonId.parse(person))},
            ":timer": {"S": f"{keys.TIMER_SK_PREFIX}{trigger}#"},
        },
    )["Items"]
    return items


def _decisions(aws: Aws, person: str, trigger: str) -> list[dict[str, Any]]:
    """What explain lists for the person and trigger, oldest first: the decision records,
    and the latest not_matched, which the profile keeps."""
    partition = PersonId.parse(person)
    engine = EngineStore(aws.dynamodb, aws.table, timedelta(days=30))
    found = [record for record in engine.decisions([partition]) if record["trigger"] == trigger]
    profile = EventStore(aws.dynamodb, aws.table).load_profiles([partition]).get(partition)
    miss = profile.misses.get(trigger) if profile else None
    if miss is not None:
        found.append(
            {
                "trigger": trigger,
                "outcome": "not_matched",
                "at": miss.at,
                "occurrence": miss.occurrence or "",
                "reason": miss.reason,
            }
        )
    return sorted(found, key=lambda decision: decision["at"])


def _interest_queued(aws: Aws) -> list[dict[str, Any]]:
    """product_interest's fires on the send queue (a long look fires product_offer too)."""
    return [fire for fire in _queued(aws) if fire["trigger"] == "product_interest"]


def _queued(aws: Aws) -> list[dict[str, Any]]:
    """Every fire waiting on the send queue (received, so each is seen once)."""
    url = _env(aws, "NUDGE_SEND_QUEUE_URL")
    fires: list[dict[str, Any]] = []
    while True:
        messages = aws.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return fires
        fires += [json.loads(message["Body"]) for message in messages]


def _fire_all_due(aws: Aws, evaluate: Invoke, trigger: str) -> list[dict[str, Any]]:
    """Each of the trigger's schedules invoked at its due time; the handler's answers."""
    return [evaluate(_timer_event(schedule)) for schedule in _schedules(aws, trigger)]


@pytest.fixture
def cart_armed(ingest: Invoke, stream: Stream) -> None:
    """ada (with an email) added one item to cart c1 at NOW; Evaluate has seen it."""
    _send(ingest, _identify(ADA_ID, "ada@example.com"), _product_added("c1", "sku-1", user=ADA_ID))
    assert _evaluate(stream, NOW) == [{"batchItemFailures": []}]


# ---- abandoned_cart: arm, fire, exit ---------------------------------------------------


def test_product_added_arms_a_schedule_and_a_timer_due_in_24_hours(aws: Aws, cart_armed: None):
    """A Product Added from a user with an email arms one schedule and one timer, due 24h on."""
    # given: the cart_armed fixture
    # when
    schedules = _schedules(aws, "abandoned_cart")
    timers = _timers(aws, ADA, "abandoned_cart")
    # then
    assert len(schedules) == 1
    assert schedules[0]["ScheduleExpression"] == "at(2026-11-29T10:00:00)"
    assert schedules[0]["payload"]["occurrence"] == "cart_id=c1"
    assert [timer["schedule"]["S"] for timer in timers] == [schedules[0]["Name"]]
    assert [timer["due"]["S"] for timer in timers] == ["2026-11-29T10:00:00.000Z"]


def test_due_timer_fires_once_onto_the_send_queue_with_the_cart_items(
    aws: Aws, evaluate: Invoke, cart_armed: None
):
    """The schedule's payload, invoked at its due time, queues one fire with the cart's items."""
    # given
    (schedule,) = _schedules(aws, "abandoned_cart")
    # when
    response = evaluate(_timer_event(schedule))
    # then
    assert response == {"decisions": ["fired"]}
    (fire,) = _queued(aws)
    assert (fire["trigger"], fire["person"], fire["userId"]) == ("abandoned_cart", ADA, ADA_ID)
    assert fire["occurrence"] == "cart_id=c1"
    assert fire["context"]["items"] == [
        {"name": "Product sku-1", "price": 10.0, "quantity": 1, "image_url": None, "url": None}
    ]
    assert _timers(aws, ADA, "abandoned_cart") == []


def test_order_before_due_cancels_the_cart(
    aws: Aws, ingest: Invoke, stream: Stream, cart_armed: None
):
    """An Order Completed for the cart before its due deletes the schedule and timer: exited."""
    # given
    _send(ingest, _order_completed("c1", NOW + timedelta(hours=2), user=ADA_ID), at=NOW + DAY / 12)
    # when
    responses = _evaluate(stream, NOW + timedelta(hours=2))
    # then
    assert responses == [{"batchItemFailures": []}]
    assert _schedules(aws, "abandoned_cart") == []
    assert _timers(aws, ADA, "abandoned_cart") == []
    assert [d["outcome"] for d in _decisions(aws, ADA, "abandoned_cart")] == [
        "pending",
        "exited",
    ]
    assert _queued(aws) == []


def test_a_cancelled_schedule_delivered_anyway_does_not_fire(
    aws: Aws, ingest: Invoke, stream: Stream, evaluate: Invoke, cart_armed: None
):
    """A schedule that was already on its way when the order cancelled it decides nothing."""
    # given
    (schedule,) = _schedules(aws, "abandoned_cart")
    _send(ingest, _order_completed("c1", NOW + timedelta(hours=2), user=ADA_ID), at=NOW + DAY / 12)
    _evaluate(stream, NOW + timedelta(hours=2))
    # when
    response = evaluate(_timer_event(schedule))
    # then
    assert response == {"decisions": []}
    assert _queued(aws) == []


# ---- exactly once --------------------------------------------------------------------


def test_stream_records_delivered_twice_decide_once(aws: Aws, ingest: Invoke, stream: Stream):
    """The same batch of records delivered twice makes one fire and one message."""
    # given
    _send(
        ingest,
        _identify(ADA_ID, "ada@example.com"),
        _track("Page Engaged", "view-1", user=ADA_ID, product_id="p1", active_seconds=300),
    )
    records = stream.read()
    stream.deliver(records)
    # when
    responses = stream.deliver(records)
    # then
    assert responses == [{"batchItemFailures": []}]
    fires = _interest_queued(aws)
    assert [(fire["trigger"], fire["occurrence"]) for fire in fires] == [
        ("product_interest", "product_id=p1")
    ]
    assert [d["outcome"] for d in _decisions(aws, ADA, "product_interest")] == ["fired"]


def test_the_same_schedule_invoked_twice_fires_once(aws: Aws, evaluate: Invoke, cart_armed: None):
    """Scheduler delivering a timer's payload twice (at least once) enqueues one fire."""
    # given
    (schedule,) = _schedules(aws, "abandoned_cart")
    evaluate(_timer_event(schedule))
    # when
    again = evaluate(_timer_event(schedule))
    # then
    assert again == {"decisions": []}
    assert [fire["occurrence"] for fire in _queued(aws)] == ["cart_id=c1"]


def test_a_schedule_invoked_days_late_fires_once(aws: Aws, evaluate: Invoke, cart_armed: None):
    """A timer whose scheduled time is three days after its due still fires, and only once."""
    # given
    (schedule,) = _schedules(aws, "abandoned_cart")
    late = CART_DUE + timedelta(days=3)
    # when
    responses = [evaluate(_timer_event(schedule, late)) for _ in range(2)]
    # then
    assert responses == [{"decisions": ["fired"]}, {"decisions": []}]
    (fire,) = _queued(aws)
    assert fire["firedAt"] == "2026-12-02T10:00:00.000Z"
    assert [item["name"] for item in fire["context"]["items"]] == ["Product sku-1"]


def test_a_crash_between_the_fire_record_and_the_enqueue_is_resumed_on_redelivery(
    aws: Aws, evaluate: Invoke, cart_armed: None, monkeypatch: pytest.MonkeyPatch
):
    """When the send fails once, the redelivered timer enqueues the fire exactly once."""
    # given
    (schedule,) = _schedules(aws, "abandoned_cart")
    send = SendQueue.send
    failures = [RuntimeError("the process died before the message was sent")]

    def crash_once(queue: SendQueue, fire: FireMessage) -> None:
        if failures:
            raise failures.pop()
        send(queue, fire)

    monkeypatch.setattr(SendQueue, "send", crash_once)
    with pytest.raises(RuntimeError, match="died"):
        evaluate(_timer_event(schedule))
    # when
    retry = evaluate(_timer_event(schedule))
    # then
    assert retry == {"decisions": ["fired"]}
    (fire,) = _queued(aws)
    assert fire["occurrence"] == "cart_id=c1"
    assert evaluate(_timer_event(schedule)) == {"decisions": []}
    assert _queued(aws) == []


def test_a_crash_after_the_enqueue_does_not_send_again_on_redelivery(
    aws: Aws, evaluate: Invoke, cart_armed: None, monkeypatch: pytest.MonkeyPatch
):
    """When the timer outlives a sent fire (a crash before its delete), the retry is a duplicate."""
    # given
    (schedule,) = _schedules(aws, "abandoned_cart")
    delete_timer = EngineStore.delete_timer
    failures = [RuntimeError("the process died after the message was sent")]

    def crash_once(store: EngineStore, timer: Pending) -> None:
        if failures:
            raise failures.pop()
        delete_timer(store, timer)

    monkeypatch.setattr(EngineStore, "delete_timer", crash_once)
    with pytest.raises(RuntimeError, match="died"):
        evaluate(_timer_event(schedule))
    # when
    retry = evaluate(_timer_event(schedule))
    # then
    assert retry == {"decisions": ["duplicate"]}
    assert [fire["occurrence"] for fire in _queued(aws)] == ["cart_id=c1"]
    assert _timers(aws, ADA, "abandoned_cart") == []


def test_a_crash_before_the_enqueue_on_the_stream_is_resumed_on_redelivery(
    aws: Aws, ingest: Invoke, stream: Stream, monkeypatch: pytest.MonkeyPatch
):
    """An immediate fire whose send fails is reported, and the redelivered record sends it once."""
    # given
    _send(
        ingest,
        _identify(ADA_ID, "ada@example.com"),
        _track("Page Engaged", "view-1", user=ADA_ID, product_id="p1", active_seconds=300),
    )
    records = stream.read()
    send = SendQueue.send
    failures = [RuntimeError("the process died before the message was sent")]

    def crash_once(queue: SendQueue, fire: FireMessage) -> None:
        if failures:
            raise failures.pop()
        send(queue, fire)

    monkeypatch.setattr(SendQueue, "send", crash_once)
    (first,) = stream.deliver(records)
    failed_from = min(int(failure["itemIdentifier"]) for failure in first["batchItemFailures"])
    # when
    retry = stream.deliver(
        [r for r in records if int(r["dynamodb"]["SequenceNumber"]) >= failed_from]
    )
    # then
    assert retry == [{"batchItemFailures": []}]
    assert [fire["trigger"] for fire in _interest_queued(aws)] == ["product_interest"]


# ---- order and identity ---------------------------------------------------------------


def test_an_order_arriving_after_the_due_but_timestamped_before_it_exits_the_cart(
    aws: Aws, ingest: Invoke, stream: Stream, evaluate: Invoke, cart_armed: None
):
    """An order sent late (an offline client) but made before the due still cancels the cart."""
    # given
    (schedule,) = _schedules(aws, "abandoned_cart")
    arrival = CART_DUE + timedelta(hours=1)
    _send(ingest, _order_completed("c1", NOW + timedelta(hours=3), user=ADA_ID), at=arrival)
    _evaluate(stream, arrival)
    # when
    response = evaluate(_timer_event(schedule, arrival + timedelta(minutes=1)))
    # then
    assert response == {"decisions": []}
    assert _queued(aws) == []
    assert [d["outcome"] for d in _decisions(aws, ADA, "abandoned_cart")] == [
        "pending",
        "exited",
    ]


def test_an_order_streamed_before_its_cart_but_timestamped_after_it_exits_at_due(
    aws: Aws, ingest: Invoke, stream: Stream, evaluate: Invoke
):
    """An order that reaches the stream before the (earlier-timestamped) add is found at due."""
    # given
    _send(ingest, _identify(ADA_ID, "ada@example.com"))
    _send(ingest, _order_completed("c1", NOW + timedelta(hours=1), user=ADA_ID))
    _send(ingest, _product_added("c1", "sku-1", user=ADA_ID))
    _evaluate(stream, NOW + timedelta(hours=1))
    # when
    responses = _fire_all_due(aws, evaluate, "abandoned_cart")
    # then
    assert responses == [{"decisions": ["exited"]}]
    assert _queued(aws) == []
    assert [d["outcome"] for d in _decisions(aws, ADA, "abandoned_cart")][-1] == "exited"


def test_two_carts_get_two_timers_and_two_fires(
    aws: Aws, ingest: Invoke, stream: Stream, evaluate: Invoke
):
    """Two carts of one user are two occurrences: two schedules, two timers, two messages."""
    # given
    _send(
        ingest,
        _identify(ADA_ID, "ada@example.com"),
        _product_added("c1", "sku-1", user=ADA_ID),
        _product_added("c2", "sku-2", NOW + timedelta(minutes=10), user=ADA_ID),
    )
    _evaluate(stream, NOW + timedelta(minutes=10))
    # when
    timers = _timers(aws, ADA, "abandoned_cart")
    responses = _fire_all_due(aws, evaluate, "abandoned_cart")
    # then
    assert len(timers) == 2
    assert responses == [{"decisions": ["fired"]}, {"decisions": ["fired"]}]
    fires = sorted(_queued(aws), key=lambda fire: str(fire["occurrence"]))
    assert [(f["occurrence"], [i["name"] for i in f["context"]["items"]]) for f in fires] == [
        ("cart_id=c1", ["Product sku-1"]),
        ("cart_id=c2", ["Product sku-2"]),
    ]


def test_an_anonymous_cart_is_cancelled_by_the_users_order_after_identify(
    aws: Aws, ingest: Invoke, stream: Stream
):
    """A visitor's cart is exited by an Order Completed sent under the userId they identified as."""
    # given
    _send(ingest, _product_added("c1", "sku-1", anonymous_id="anon-1"))
    _evaluate(stream, NOW)
    _send(ingest, _identify(ADA_ID, "ada@example.com", anonymous_id="anon-1"), at=NOW + DAY / 24)
    _send(ingest, _order_completed("c1", NOW + timedelta(hours=2), user=ADA_ID), at=NOW + DAY / 12)
    # when
    responses = _evaluate(stream, NOW + timedelta(hours=2))
    # then
    assert responses == [{"batchItemFailures": []}]
    assert _schedules(aws, "abandoned_cart") == []
    assert _timers(aws, "a:anon-1", "abandoned_cart") == []
    assert [d["outcome"] for d in _decisions(aws, "a:anon-1", "abandoned_cart")] == [
        "pending",
        "exited",
    ]


def test_an_anonymous_cart_fires_to_the_user_it_identified_as(
    aws: Aws, ingest: Invoke, stream: Stream, evaluate: Invoke
):
    """A visitor's cart, due after they identified with an email, fires to u:<user>."""
    # given
    _send(ingest, _product_added("c1", "sku-1", anonymous_id="anon-1"))
    _evaluate(stream, NOW)
    _send(ingest, _identify(ADA_ID, "ada@example.com", anonymous_id="anon-1"), at=NOW + DAY / 24)
    _evaluate(stream, NOW + timedelta(hours=1))
    # when
    responses = _fire_all_due(aws, evaluate, "abandoned_cart")
    # then
    assert responses == [{"decisions": ["fired"]}]
    (fire,) = _queued(aws)
    assert (fire["person"], fire["userId"], fire["anonymousId"]) == (ADA, ADA_ID, "anon-1")
    assert [item["name"] for item in fire["context"]["items"]] == ["Product sku-1"]


# ---- conditions: product_interest, vip_checkout_call ----------------------------------


def test_a_property_of_the_wrong_type_does_not_match_and_does_not_fail_the_batch(
    aws: Aws, ingest: Invoke, stream: Stream
):
    """active_seconds "long" is not greater than 120: not_matched, and the batch succeeds."""
    # given
    _send(
        ingest,
        _identify(ADA_ID, "ada@example.com"),
        _track("Page Engaged", "view-1", user=ADA_ID, product_id="p1", active_seconds="long"),
        _track("Page Engaged", "view-2", user=ADA_ID, product_id="p2", active_seconds=300),
    )
    # when
    responses = _evaluate(stream, NOW)
    # then
    assert responses == [{"batchItemFailures": []}]
    outcomes = {d["occurrence"]: d["outcome"] for d in _decisions(aws, ADA, "product_interest")}
    assert outcomes == {"product_id=p1": "not_matched", "product_id=p2": "fired"}
    assert [fire["occurrence"] for fire in _interest_queued(aws)] == ["product_id=p2"]


@pytest.mark.parametrize(("dwell", "fires"), [(180, ["product_id=p1"]), (60, [])])
def test_product_interest_fires_at_once_only_past_two_minutes(
    aws: Aws, ingest: Invoke, stream: Stream, dwell: int, fires: list[str]
):
    """A Page Engaged with active_seconds 180 fires at once, with no timer; 60 does not fire."""
    # given
    _send(
        ingest,
        _identify(ADA_ID, "ada@example.com"),
        _track("Page Engaged", "view-1", user=ADA_ID, product_id="p1", active_seconds=dwell),
    )
    # when
    _evaluate(stream, NOW)
    # then
    assert [fire["occurrence"] for fire in _interest_queued(aws)] == fires
    assert _schedules(aws, "product_interest") == []


def _checkout(ingest: Invoke, stream: Stream, tier: str) -> None:
    _send(
        ingest,
        _identify(ADA_ID, "ada@example.com", tier=tier),
        _track("Checkout Started", "checkout-1", user=ADA_ID, cart_id="c1"),
    )
    assert _evaluate(stream, NOW) == [{"batchItemFailures": []}]


def test_vip_checkout_without_order_fires_after_an_hour(
    aws: Aws, ingest: Invoke, stream: Stream, evaluate: Invoke
):
    """A vip's Checkout Started with no order is reminded an hour on and fires the call."""
    # given
    _checkout(ingest, stream, "vip")
    # when
    (schedule,) = _schedules(aws, "vip_checkout_call")
    response = evaluate(_timer_event(schedule))
    # then
    assert schedule["ScheduleExpression"] == "at(2026-11-28T11:00:00)"
    assert response == {"decisions": ["fired"]}
    fires = [fire for fire in _queued(aws) if fire["trigger"] == "vip_checkout_call"]
    assert [(fire["userId"], fire["channel"], fire["template"]) for fire in fires] == [
        (ADA_ID, "webhook", "vip_call")
    ]


def test_vip_checkout_call_is_not_matched_for_another_tier(
    aws: Aws, ingest: Invoke, stream: Stream
):
    """A gold customer's Checkout Started arms nothing and is not_matched on the tier."""
    # given
    _checkout(ingest, stream, "gold")
    # when
    decisions = _decisions(aws, ADA, "vip_checkout_call")
    # then
    assert _schedules(aws, "vip_checkout_call") == []
    assert [d["outcome"] for d in decisions] == ["not_matched"]
    assert "traits.tier" in decisions[0]["reason"]
    assert _queued(aws) == []


# ---- re_engagement: the hourly inactivity sweep ----------------------------------------
# ada is seen at NOW (10:00). The sweep reads the hour 7 days and 1 hour behind its
# scheduled time, so the first sweep that looks at ada's hour runs at NOW + 7 days + 1 hour.
FIRST_SWEEP_AFTER_A_WEEK = NOW + 7 * DAY + timedelta(hours=1)


def _page(name: str, message_id: str, at: datetime = NOW, **who: Any) -> dict[str, Any]:
    return {
        "type": "page",
        "name": name,
        "messageId": message_id,
        "timestamp": at.isoformat(),
        **who,
    }


def _short_visit(ingest: Invoke, stream: Stream, crm_status: str, at: datetime = NOW) -> None:
    """ada, with the CRM status given, views two pages at ``at``; Evaluate has seen it."""
    _send(
        ingest,
        _identify(ADA_ID, "ada@example.com", crm_status=crm_status),
        _page("home", f"home-{at.isoformat()}", at, userId=ADA_ID),
        _page("pricing", f"pricing-{at.isoformat()}", at, userId=ADA_ID),
        at=at,
    )
    assert _evaluate(stream, at) == [{"batchItemFailures": []}]


def _sweep(aws: Aws, evaluate: Invoke, at: datetime) -> dict[str, Any]:
    """The template's InactivitySweep schedule invoking Evaluate with its scheduled time."""
    raw = str(aws.template.schedules["InactivitySweep"]["Target"]["Input"])
    stamped = raw.replace("<aws.scheduler.scheduled-time>", at.strftime("%Y-%m-%dT%H:%M:%SZ"))
    return evaluate(json.loads(stamped))


def test_the_sweep_a_week_after_a_quiet_short_visit_fires_re_engagement(
    aws: Aws, ingest: Invoke, stream: Stream, evaluate: Invoke
):
    """The first sweep that reads ada's hour fires re_engagement once, onto the send queue."""
    # given
    _short_visit(ingest, stream, "inactive")
    # when
    response = _sweep(aws, evaluate, FIRST_SWEEP_AFTER_A_WEEK)
    # then
    assert response == {"decisions": ["fired"]}
    (fire,) = _queued(aws)
    assert (fire["trigger"], fire["userId"], fire["channel"]) == ("re_engagement", ADA_ID, "email")
    assert fire["occurrence"].startswith("inactive@2026-12-05T10:00")


def test_the_sweep_an_hour_earlier_does_not_read_the_visit(
    aws: Aws, ingest: Invoke, stream: Stream, evaluate: Invoke
):
    """An hour before, the sweep reads the hour before ada's visit: nothing is decided."""
    # given
    _short_visit(ingest, stream, "inactive")
    # when
    response = _sweep(aws, evaluate, FIRST_SWEEP_AFTER_A_WEEK - timedelta(hours=1))
    # then
    assert response == {"decisions": []}
    assert _queued(aws) == []


def test_a_retried_sweep_fires_once(aws: Aws, ingest: Invoke, stream: Stream, evaluate: Invoke):
    """The same scheduled time swept twice (a Scheduler retry) reads the same hour: one fire."""
    # given
    _short_visit(ingest, stream, "inactive")
    _sweep(aws, evaluate, FIRST_SWEEP_AFTER_A_WEEK)
    # when
    response = _sweep(aws, evaluate, FIRST_SWEEP_AFTER_A_WEEK)
    # then
    assert response == {"decisions": ["duplicate"]}
    assert [fire["trigger"] for fire in _queued(aws)] == ["re_engagement"]


def test_a_person_who_came_back_is_swept_a_week_after_the_return(
    aws: Aws, ingest: Invoke, stream: Stream, evaluate: Invoke
):
    """ada returns on day 5: the sweep of her first visit's hour finds nobody; the sweep a
    week after her return fires."""
    # given
    _short_visit(ingest, stream, "inactive")
    returned = NOW + 5 * DAY
    _short_visit(ingest, stream, "inactive", at=returned)
    # when
    early = _sweep(aws, evaluate, FIRST_SWEEP_AFTER_A_WEEK)
    late = _sweep(aws, evaluate, FIRST_SWEEP_AFTER_A_WEEK + 5 * DAY)
    # then
    assert early == {"decisions": []}
    assert late == {"decisions": ["fired"]}
    (fire,) = _queued(aws)
    assert fire["occurrence"].startswith("inactive@2026-12-10T10:00")


def test_the_sweep_finds_an_active_crm_status_not_matched(
    aws: Aws, ingest: Invoke, stream: Stream, evaluate: Invoke
):
    """crm_status active: the sweep decides not_matched, naming the trait, and fires nothing."""
    # given
    _short_visit(ingest, stream, "active")
    # when
    response = _sweep(aws, evaluate, FIRST_SWEEP_AFTER_A_WEEK)
    # then
    assert response == {"decisions": ["not_matched"]}
    (decision,) = _decisions(aws, ADA, "re_engagement")
    assert "traits.crm_status" in decision["reason"]
    assert _queued(aws) == []


def test_events_arm_no_schedule_for_inactivity(aws: Aws, ingest: Invoke, stream: Stream):
    """Inactivity costs no Scheduler call per event: a visit arms no re_engagement schedule."""
    # given / when
    _short_visit(ingest, stream, "inactive")
    # then
    assert _schedules(aws, "re_engagement") == []
    assert _timers(aws, ADA, "re_engagement") == []


def test_a_visitor_and_the_user_they_became_found_in_one_hour_are_decided_once(
    aws: Aws, ingest: Invoke, stream: Stream, evaluate: Invoke
):
    """An anonymous visit and the identify that links it, in the same hour: the sweep finds
    both partitions and decides the one person once."""
    # given
    visit = NOW + timedelta(minutes=5)
    _send(ingest, _page("home", "anon-home", visit, anonymousId="anon-1"), at=visit)
    _evaluate(stream, visit)
    identify = {
        **_identify(ADA_ID, "ada@example.com", anonymous_id="anon-1", crm_status="inactive"),
        "timestamp": (NOW + timedelta(minutes=10)).isoformat(),
    }
    _send(ingest, identify, at=NOW + timedelta(minutes=10))
    _evaluate(stream, NOW + timedelta(minutes=10))
    # when
    response = _sweep(aws, evaluate, FIRST_SWEEP_AFTER_A_WEEK)
    # then
    assert response == {"decisions": ["fired"]}
    (fire,) = _queued(aws)
    assert (fire["person"], fire["userId"]) == (ADA, ADA_ID)


def test_a_late_event_is_swept_in_the_hour_it_arrived_not_the_hour_it_is_stamped(
    aws: Aws, ingest: Invoke, stream: Stream, evaluate: Invoke
):
    """A search stamped 10:05 that reaches Evaluate at 13:00 files ada under 13:00: the sweep
    of 10:00 does not find her, the sweep of 13:00 does and fires (quiet since 10:05)."""
    # given
    _short_visit(ingest, stream, "inactive")
    arrived = NOW + timedelta(hours=3)
    late = _track("Products Searched", "late-search", NOW + timedelta(minutes=5), user=ADA_ID)
    _send(ingest, late, at=arrived)
    _evaluate(stream, arrived)
    # when
    early = _sweep(aws, evaluate, FIRST_SWEEP_AFTER_A_WEEK)
    late_sweep = _sweep(aws, evaluate, FIRST_SWEEP_AFTER_A_WEEK + timedelta(hours=3))
    # then
    assert early == {"decisions": []}
    assert late_sweep == {"decisions": ["fired"]}
    (fire,) = _queued(aws)
    assert fire["occurrence"].startswith("inactive@2026-12-05T10:05")


def test_an_inactivity_timer_armed_before_the_sweep_is_decided_like_the_sweep(
    aws: Aws, ingest: Invoke, stream: Stream, evaluate: Invoke
):
    """Upgrading from per-person timers: an old re_engagement timer that comes due for a
    quiet person fires, under the sweep's occurrence name, and is gone."""
    # given
    _short_visit(ingest, stream, "inactive")
    due = NOW + 7 * DAY
    occurrence = f"inactive@{due.isoformat()}"
    old = Pending(
        "re_engagement", PersonId.user(ADA_ID), occurrence, due, cast(Any, "inactivity"), {}
    )
    engine = EngineStore(aws.dynamodb, aws.table, DAY)
    assert engine.save_timer(old, "re_engagement-legacy")
    payload = {
        "source": "nudge.timer",
        "trigger": "re_engagement",
        "person": ADA,
        "occurrence": occurrence,
        "due": due.isoformat(),
        "kind": "inactivity",
        "schedule": "re_engagement-legacy",
        "entry": {},
        "scheduledTime": due.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    # when
    response = evaluate(payload)
    # then
    assert response == {"decisions": ["fired"]}
    (fire,) = _queued(aws)
    assert fire["occurrence"].startswith("inactive@2026-12-05T10:00")
    assert _timers(aws, ADA, "re_engagement") == []


def test_a_visitor_who_never_logged_in_is_swept_without_a_record(
    aws: Aws, ingest: Invoke, stream: Stream, evaluate: Invoke
):
    """An anonymous visitor quiet for a week fails re_engagement's CRM condition: nothing is
    sent and nothing recorded (most of a busy hour, and nobody asks explain about them)."""
    # given
    _send(ingest, _page("home", "anon-only", NOW, anonymousId="anon-9"))
    _evaluate(stream, NOW)
    # when
    response = _sweep(aws, evaluate, FIRST_SWEEP_AFTER_A_WEEK)
    # then
    assert response == {"decisions": []}
    assert _decisions(aws, "a:anon-9", "re_engagement") == []
    assert _queued(aws) == []
