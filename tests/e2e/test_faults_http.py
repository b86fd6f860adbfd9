"""Faults injected into the local stack, and what delivery does with them: nothing lost,
nothing sent twice (except in the one window docs/delivery.md owns up to).

SES, SQS and DynamoDB faults are asked of the stack (`POST /_local/faults`): moto answers
errors or the runtime kills the Send function's process; the queue poller hands a message
out twice; DynamoDB write calls are refused as throttled. Webhook faults are the receiver's
own doing: a loopback server that hangs, closes the connection or redirects. The functions
run unchanged throughout.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest

from bench.receiver import CLOSE, HANG, Received, Receiver, Redirect
from tests.arms import shopper_in
from tests.e2e.conftest import StackClient
from tests.e2e.shop import advance as _advance  # asserts the advance completed

pytestmark = pytest.mark.e2e

MINUTE = 60
HOUR = 60 * MINUTE
DAY = 24 * HOUR
VISIBILITY_TIMEOUT = 180  # the send queue's: when a failed message is handed out again
SEND_QUEUE = "nudge-local-SendQueue"
DEAD_LETTERS = "nudge-local-SendDeadLetterQueue"
ITEM = {"name": "Mug", "price": 9, "quantity": 1, "url": "https://shop.example/mug"}
CART_ITEM = {**ITEM, "image_url": None}  # an item as the abandoned cart's collect gives it


# ---- people, fires and the clock ---------------------------------------------------------


def _new_user(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _zone_where(moment: datetime, local_hour: int) -> str:
    """A whole-hour Etc/GMT zone in which `moment` falls within the hour `local_hour`."""
    offset = (local_hour - moment.hour) % 24
    if offset > 14:
        offset -= 24  # Etc/GMT zones run from UTC-12 to UTC+14
    return "UTC" if offset == 0 else f"Etc/GMT{-offset:+d}"  # Etc/GMT signs are inverted


def _shopper(stack: StackClient, user: str, at: datetime) -> tuple[str, str]:
    """A person with an email, in a timezone where `at` is midday (outside quiet hours)."""
    address = f"{user}@example.com"
    traits = {"email": address, "timezone": _zone_where(at, 12)}
    assert stack.post("/v1/identify", {"userId": user, "traits": traits}).status_code == 200
    return user, address


def _abandon_cart(stack: StackClient, prefix: str) -> tuple[str, str]:
    """A shopper who adds to a cart now; the abandoned cart fires a day later, at midday
    (the shopper is one the abandoned_cart experiment puts in h24)."""
    at = stack.now() + timedelta(days=1, minutes=1)
    user, address = _shopper(stack, shopper_in(prefix), at)
    properties = {"cart_id": "c1", **ITEM}
    track = {"userId": user, "event": "Product Added", "properties": properties}
    assert stack.post("/v1/track", track).status_code == 200
    stack.drain()
    return user, address


def _start_vip_checkout(stack: StackClient) -> str:
    """A VIP who starts checkout now: the CRM webhook is due an hour later."""
    user = _new_user("vip")
    traits = {"email": f"{user}@example.com", "name": "Ada Vip", "tier": "vip"}
    stack.post("/v1/identify", {"userId": user, "traits": traits})
    checkout = {"cart_id": "c1", "total": 250.0}
    stack.post("/v1/track", {"userId": user, "event": "Checkout Started", "properties": checkout})
    stack.drain()
    return user


def _inject(stack: StackClient, faults: dict[str, Any]) -> dict[str, Any]:
    response = stack.post("/_local/faults", faults)
    assert response.status_code == 200, response.text
    pending: dict[str, Any] = response.json()
    return pending


# ---- what came out -----------------------------------------------------------------------


def _decisions(stack: StackClient, user: str, trigger: str) -> list[dict[str, Any]]:
    """Delivery's decisions on the user's fires of the trigger (not the engine's own)."""
    stack.drain()
    response = stack.get("/_local/explain/" + quote(user, safe=""))
    return [
        decision
        for decision in response.json()["decisions"]
        if decision["trigger"] == trigger and decision["outcome"] not in ("pending", "fired")
    ]


def _outcomes(stack: StackClient, user: str, trigger: str = "abandoned_cart") -> list[str]:
    return [decision["outcome"] for decision in _decisions(stack, user, trigger)]


def _emails_to(stack: StackClient, address: str) -> list[dict[str, Any]]:
    stack.drain()
    outbox = stack.get("/_local/outbox").json()
    return [m for m in outbox if m.get("channel") == "email" and m.get("to") == [address]]


def _fire_id(stack: StackClient, user: str) -> str:
    (fire,) = stack.get("/_local/fires?userId=" + quote(user, safe="")).json()
    return str(fire["fireId"])


def _dead_letters(stack: StackClient) -> list[tuple[dict[str, Any], str]]:
    """(fire, reason) of each message on the send dead-letter queue."""
    sqs = stack.aws("sqs")
    url = sqs.get_queue_url(QueueName=DEAD_LETTERS)["QueueUrl"]
    messages = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    ).get("Messages", [])
    return [
        (json.loads(m["Body"]), m.get("MessageAttributes", {}).get("reason", {}).get("StringValue"))
        for m in messages
    ]


def _webhook_ids(received: list[Received]) -> set[str]:
    return {request.headers["webhook-id"] for request in received}


def _tracks(user: str, count: int) -> list[dict[str, Any]]:
    """`count` track messages of one user, each with its own messageId."""
    return [
        {
            "type": "track",
            "userId": user,
            "event": "Product Viewed",
            "messageId": f"msg-{uuid.uuid4().hex[:12]}",
            "properties": {"sku": str(n)},
        }
        for n in range(count)
    ]


def _beacon(route: str, user: str) -> dict[str, Any]:
    """A Segment body for the route: one track message, or a batch of three."""
    if route == "/v1/batch":
        return {"batch": _tracks(user, 3)}
    (message,) = _tracks(user, 1)
    return message


# ---- SES ---------------------------------------------------------------------------------


def test_ses_throttling_past_the_sdk_retries_is_retried_by_nudge_and_sent_once(stack: StackClient):
    """SES refusing every attempt the SDK makes is not a loss: Nudge retries later, once."""
    # given
    user, address = _abandon_cart(stack, "throttled")
    _inject(stack, {"ses": {"throttle": 10}})

    # when
    _advance(stack, DAY + MINUTE)
    refused = _emails_to(stack, address)
    _inject(stack, {"ses": {"throttle": 0}})
    _advance(stack, 2 * MINUTE)

    # then
    assert refused == []
    assert _outcomes(stack, user) == ["retry", "sent"]
    assert len(_emails_to(stack, address)) == 1


def test_ses_5xx_on_some_calls_is_retried_and_sent_once(stack: StackClient):
    """SES answering 500 to four calls in a row: the SDK's four attempts (a try and three
    retries) all fail, Nudge retries the send a minute later and it goes out: one email."""
    # given
    user, address = _abandon_cart(stack, "five-hundred")
    _inject(stack, {"ses": {"serverError": 4}})

    # when
    _advance(stack, DAY + 3 * MINUTE)

    # then: the send that went out is the retry, a minute or more after the refused one.
    # (Checking the outbox between the two would race the virtual clock, which keeps
    # running while the fire is processed.)
    retry, sent = _decisions(stack, user, "abandoned_cart")
    assert (retry["outcome"], sent["outcome"]) == ("retry", "sent")
    waited = datetime.fromisoformat(sent["at"]) - datetime.fromisoformat(retry["at"])
    assert waited >= timedelta(minutes=1)
    assert len(_emails_to(stack, address)) == 1
    assert stack.get("/_local/faults").json()["ses"]["serverError"] == 0


def test_ses_accepting_then_send_crashing_is_not_sent_again(stack: StackClient):
    """SES accepts the email, then Send's process dies before it marks the fire sent. SES's
    Send event reaches Feedback, which records a receipt for the fire; the redelivery after
    the visibility timeout finds it and does not send again: one email, none lost."""
    # given
    user, address = _abandon_cart(stack, "crashed")
    _inject(stack, {"ses": {"acceptThenCrash": 1}})

    # when
    _advance(stack, DAY + MINUTE)
    accepted = _emails_to(stack, address)
    decided_before = _outcomes(stack, user)
    _advance(stack, VISIBILITY_TIMEOUT + 1)
    _advance(stack, DAY)

    # then
    assert len(accepted) == 1
    assert decided_before == []  # the process died before it recorded anything
    emails = _emails_to(stack, address)
    assert [email["fire"] for email in emails] == [_fire_id(stack, user)]
    (decision,) = _decisions(stack, user, "abandoned_cart")
    assert decision["outcome"] == "duplicate"
    assert "SES accepted it" in decision["reason"]
    assert _dead_letters(stack) == []


# ---- SQS ---------------------------------------------------------------------------------


def test_a_fire_the_queue_delivers_twice_is_sent_once(stack: StackClient):
    """SQS handing the same message out twice: the second copy finds the fire sent."""
    # given
    user, address = _abandon_cart(stack, "twice")
    _inject(stack, {"sqs": {"duplicate": 1}})

    # when
    _advance(stack, DAY + MINUTE)

    # then
    assert stack.get("/_local/faults").json()["sqs"]["duplicate"] == 0
    assert len(_emails_to(stack, address)) == 1
    # Both copies are decided at the message's time, so their records sort either way.
    assert sorted(_outcomes(stack, user)) == ["duplicate", "sent"]


def test_a_poison_fire_is_dead_lettered_and_the_rest_of_its_batch_is_sent(stack: StackClient):
    """A fire whose template cannot render goes to the DLQ with the reason; the fires beside
    it in the batch are each sent once."""
    # given
    now = stack.now()
    people = [_shopper(stack, _new_user(prefix), now) for prefix in ("before", "poison", "after")]
    stack.drain()
    fires = [
        {
            "fireId": f"fire-{uuid.uuid4().hex[:12]}",
            "trigger": "abandoned_cart",
            "person": f"u:{user}",
            "userId": user,
            "occurrence": "cart_id=c1",
            "firedAt": now.isoformat(),
            "channel": "email",
            "template": "abandoned_cart",
            "event": {"type": "track", "event": "Product Added", "properties": ITEM},
            # The template lists `items` (as the engine collects them); the poison fire has none.
            "context": {} if user.startswith("poison") else {"items": [CART_ITEM]},
        }
        for user, _ in people
    ]
    sqs = stack.aws("sqs")
    queue = sqs.get_queue_url(QueueName=SEND_QUEUE)["QueueUrl"]

    # when
    sqs.send_message_batch(
        QueueUrl=queue,
        Entries=[{"Id": str(n), "MessageBody": json.dumps(fire)} for n, fire in enumerate(fires)],
    )

    # then
    (before, _), (poison, _), (after, _) = people
    assert [len(_emails_to(stack, address)) for _, address in people] == [1, 0, 1]
    ((dead, reason),) = _dead_letters(stack)
    assert dead == fires[1]
    assert "items" in reason
    assert _outcomes(stack, poison) == ["dead_letter"]
    assert _outcomes(stack, before) == _outcomes(stack, after) == ["sent"]


def test_a_delayed_message_waits_on_the_virtual_clock(stack: StackClient):
    """A fire put on the send queue with DelaySeconds is handed out when the virtual clock has
    passed its delay, not before: the queue keeps the stack's clock, as retries rely on."""
    # given
    user, address = _shopper(stack, _new_user("delayed"), stack.now() + timedelta(minutes=10))
    stack.drain()
    fire = {
        "fireId": f"fire-{uuid.uuid4().hex[:12]}",
        "trigger": "abandoned_cart",
        "person": f"u:{user}",
        "userId": user,
        "occurrence": "cart_id=c1",
        "firedAt": stack.now().isoformat(),
        "channel": "email",
        "template": "abandoned_cart",
        "context": {"items": [CART_ITEM]},
    }
    sqs = stack.aws("sqs")
    queue = sqs.get_queue_url(QueueName=SEND_QUEUE)["QueueUrl"]

    # when
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(fire), DelaySeconds=600)
    _advance(stack, 590)
    early = _emails_to(stack, address)
    _advance(stack, 11)

    # then
    assert early == []
    assert len(_emails_to(stack, address)) == 1


# ---- DynamoDB ----------------------------------------------------------------------------

# More write calls than the SDK makes for one request (its first try and four retries).
PAST_THE_SDK_RETRIES = 100


@pytest.mark.parametrize("route", ["/v1/track", "/v1/batch"])
def test_writes_throttled_past_the_sdk_retries_answer_503_and_store_nothing(
    stack: StackClient, route: str
):
    """A table refusing every write the SDK tries is a 503 with Retry-After and nothing
    stored, and the stack goes on serving."""
    # given
    user = _new_user("throttled")
    _inject(stack, {"dynamodb": {"throttle": PAST_THE_SDK_RETRIES}})

    # when
    response = stack.post(route, _beacon(route, user))

    # then
    assert response.status_code == 503, response.text
    assert response.json()["code"] == "unavailable"
    assert int(response.headers["Retry-After"]) >= 1
    assert stack.user(user) is None
    assert stack.get("/_local/health").status_code == 200


def test_the_clients_retry_once_the_throttle_clears_is_stored_and_folded_once(
    stack: StackClient,
):
    """A request refused with 503 while writes were throttled, sent again with the same
    messageId once they are not, is stored once and counted once in the profile."""
    # given
    user = _new_user("retried")
    message = _beacon("/v1/track", user)
    _inject(stack, {"dynamodb": {"throttle": PAST_THE_SDK_RETRIES}})
    refused = stack.post("/v1/track", message)
    cleared = _inject(stack, {"dynamodb": {}})

    # when
    retry = stack.post("/v1/track", message, {"X-Retry-Count": "1"})

    # then
    assert refused.status_code == 503, refused.text
    assert cleared["dynamodb"] == {"throttle": 0}
    assert retry.status_code == 200, retry.text
    view = stack.user(user)
    assert view is not None
    assert [event["messageId"] for event in view["events"]] == [message["messageId"]]
    assert view["profile"]["events"] == 1


def test_a_throttle_the_sdk_retries_absorb_is_stored_once(stack: StackClient):
    """Two refused write calls are absorbed by the SDK's own retries: 200, stored once."""
    # given
    user = _new_user("absorbed")
    message = _beacon("/v1/track", user)
    _inject(stack, {"dynamodb": {"throttle": 2}})

    # when
    response = stack.post("/v1/track", message)

    # then
    assert response.status_code == 200, response.text
    assert stack.get("/_local/faults").json()["dynamodb"] == {"throttle": 0}
    view = stack.user(user)
    assert view is not None
    assert [event["messageId"] for event in view["events"]] == [message["messageId"]]
    assert view["profile"]["events"] == 1


# ---- the webhook receiver ------------------------------------------------------------------


@pytest.fixture
def elsewhere() -> Iterator[Receiver]:
    """Another loopback server, where a redirect points: it must never be reached."""
    with Receiver(path="/elsewhere").serving("elsewhere") as receiver:
        yield receiver


def test_a_receiver_that_hangs_past_the_timeout_gets_the_same_webhook_again(
    delivery_stack: StackClient, crm_receiver: Receiver
):
    """A receiver that holds the request past the 5 s timeout is sent the webhook again 5 s
    later with the same webhook-id, so it can tell the two apart; one is answered 2xx."""
    # given
    stack = delivery_stack
    crm_receiver.reset(script=[HANG])
    user = _start_vip_checkout(stack)

    # when: the timer and, 5 s after the hung attempt, the retry, all in one advance
    _advance(stack, HOUR + MINUTE)

    # then
    received = crm_receiver.received()
    assert [request.status for request in received] == [None, 204]
    assert _webhook_ids(received) == {_fire_id(stack, user)}
    assert len(crm_receiver.delivered()) == 1
    retry, sent = _decisions(stack, user, "vip_checkout_call")
    assert (retry["outcome"], sent["outcome"]) == ("retry", "sent")
    assert "no answer within 5s" in retry["reason"]


def test_a_receiver_that_closes_the_connection_gets_the_same_webhook_again(
    delivery_stack: StackClient, crm_receiver: Receiver
):
    """A receiver that closes the connection without answering is retried 5 s later with the
    same webhook-id, and the retry is delivered once."""
    # given
    stack = delivery_stack
    crm_receiver.reset(script=[CLOSE])
    user = _start_vip_checkout(stack)

    # when
    _advance(stack, HOUR + MINUTE)
    _advance(stack, 6)
    _advance(stack, DAY)

    # then
    received = crm_receiver.received()
    assert [request.status for request in received] == [None, 204]
    assert _webhook_ids(received) == {_fire_id(stack, user)}
    retry, sent = _decisions(stack, user, "vip_checkout_call")
    assert (retry["outcome"], sent["outcome"]) == ("retry", "sent")
    assert "connection failed" in retry["reason"]


def _redirected(stack: StackClient, receiver: Receiver, location: str) -> str:
    """A VIP's webhook, answered with a redirect to `location`; returns the user."""
    receiver.reset(script=[Redirect(location)])
    user = _start_vip_checkout(stack)
    _advance(stack, HOUR + MINUTE)
    _advance(stack, DAY)
    return user


def test_a_redirect_to_loopback_is_not_followed_and_the_fire_is_dead_lettered(
    delivery_stack: StackClient, crm_receiver: Receiver, elsewhere: Receiver
):
    """A 302 to 127.0.0.1 is not delivered and not followed (a redirect could point anywhere):
    the fire goes to the DLQ with the reason, and is not retried."""
    # given
    stack = delivery_stack

    # when
    user = _redirected(stack, crm_receiver, elsewhere.url)

    # then
    assert len(crm_receiver.received()) == 1
    assert elsewhere.received() == []
    ((dead, reason),) = _dead_letters(stack)
    assert dead["fireId"] == _fire_id(stack, user)
    assert f"redirect (302) to '{elsewhere.url}' not followed" in reason
    assert _outcomes(stack, user, "vip_checkout_call") == ["dead_letter"]


def test_a_redirect_to_a_private_address_is_not_followed_and_the_fire_is_dead_lettered(
    delivery_stack: StackClient, crm_receiver: Receiver
):
    """A 302 to a private address (10.0.0.0/8) is not followed: the fire goes to the DLQ."""
    # given
    stack = delivery_stack
    private = "http://10.0.0.7/internal/admin"

    # when
    user = _redirected(stack, crm_receiver, private)

    # then
    assert len(crm_receiver.received()) == 1
    ((dead, reason),) = _dead_letters(stack)
    assert dead["fireId"] == _fire_id(stack, user)
    assert f"redirect (302) to '{private}' not followed" in reason
    assert _outcomes(stack, user, "vip_checkout_call") == ["dead_letter"]


# ---- the fault control ---------------------------------------------------------------------


def test_the_fault_control_reports_what_is_still_to_be_injected(stack: StackClient):
    """Each count given replaces that fault's count; the answer lists every fault's."""
    # given
    _inject(stack, {"ses": {"throttle": 2}})

    # when
    pending = _inject(stack, {"ses": {"serverError": 1}, "sqs": {"duplicate": 3}})

    # then
    assert pending == {
        "ses": {"throttle": 2, "serverError": 1, "acceptThenCrash": 0},
        "sqs": {"duplicate": 3},
        "dynamodb": {"throttle": 0},
    }
    assert stack.get("/_local/faults").json() == pending


@pytest.mark.parametrize(
    "clear",
    [{"dynamodb": {}}, {"dynamodb": {"throttle": 0}}, "reset"],
    ids=["empty object", "zero", "reset"],
)
def test_a_dynamodb_throttle_is_pending_until_cleared(stack: StackClient, clear: Any):
    """A DynamoDB throttle shows as pending until {} or a count of 0 clears it, or a reset
    does; the other services' faults are left as they were."""
    # given
    pending = _inject(stack, {"dynamodb": {"throttle": 7}, "sqs": {"duplicate": 1}})

    # when
    if clear == "reset":
        stack.reset()
    else:
        _inject(stack, clear)

    # then
    assert pending["dynamodb"] == {"throttle": 7}
    after = stack.get("/_local/faults").json()
    assert after["dynamodb"] == {"throttle": 0}
    assert after["sqs"] == {"duplicate": 0 if clear == "reset" else 1}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "body"),
        ([], "body"),
        ({"ses": {"throttle": -1}}, "ses.throttle"),
        ({"ses": {"throttle": "many"}}, "ses.throttle"),
        ({"ses": {"throttle": True}}, "ses.throttle"),
        ({"ses": {"explode": 1}}, "ses.explode"),
        ({"ses": 3}, "ses"),
        ({"sqs": {"duplicate": 1.5}}, "sqs.duplicate"),
        ({"dynamodb": {"throttle": -1}}, "dynamodb.throttle"),
        ({"dynamodb": {"explode": 1}}, "dynamodb.explode"),
        ({"dynamodb": "x"}, "dynamodb"),
        ({"ses": {"throttle": 1}, "dynamodb": {"throttle": -1}}, "dynamodb.throttle"),
        ({"s3": {"throttle": 1}}, "s3"),
    ],
)
def test_a_bad_fault_request_is_refused(stack: StackClient, body: Any, field: str):
    """The fault control answers a malformed request with a 400 naming the field, and
    changes no pending fault (not even those the body names correctly)."""
    # given
    before = _inject(stack, {"dynamodb": {"throttle": 2}})

    # when
    response = stack.post("/_local/faults", body)

    # then
    assert response.status_code == 400
    assert response.json()["field"] == field
    assert stack.get("/_local/faults").json() == before
