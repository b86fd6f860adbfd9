"""Delivery over real HTTP: fires become emails (SES, read back from /_local/outbox) and
signed webhooks (to a loopback CRM receiver), under the contact policy.

This module runs its own stack, configured with a sender address, a webhook secret and a
CRM webhook URL pointing at a receiver started first on 127.0.0.1. Events carry no
timestamp, so each one is received at the stack's virtual "now"; the clock only moves
forward, so timezones are chosen from the clock to put due times at the hour a test needs.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, time, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
from standardwebhooks import Webhook

from tests.e2e.conftest import (
    FROM_EMAIL,
    REQUEST_TIMEOUT,
    WEBHOOK_SECRET,
    Receiver,
    StackClient,
)

pytestmark = pytest.mark.e2e

MINUTE = 60
HOUR = 60 * MINUTE
DAY = 24 * HOUR
ONE_CLICK = {"Content-Type": "application/x-www-form-urlencoded"}


# ---- events in, the clock, and what came out ---------------------------------------------


def _new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _send(stack: StackClient, kind: str, message: dict[str, Any]) -> None:
    response = stack.post(f"/v1/{kind}", message)
    assert response.status_code == 200, response.text


def _identify(stack: StackClient, user_id: str, **traits: Any) -> None:
    _send(stack, "identify", {"userId": user_id, "traits": traits})


def _track(stack: StackClient, user_id: str, event: str, properties: dict[str, Any]) -> None:
    _send(stack, "track", {"userId": user_id, "event": event, "properties": properties})


def _add_to_cart(stack: StackClient, user_id: str, cart_id: str, sku: str, price: float) -> None:
    _track(
        stack,
        user_id,
        "Product Added",
        {
            "cart_id": cart_id,
            "product_id": sku,
            "name": f"Product {sku}",
            "price": price,
            "quantity": 1,
            "image_url": f"https://shop.example/img/{sku}.jpg",
            "url": f"https://shop.example/p/{sku}",
        },
    )


def _advance(stack: StackClient, seconds: float) -> None:
    response = stack.session.post(
        stack.url("/_local/clock/advance"), json={"seconds": seconds}, timeout=REQUEST_TIMEOUT * 2
    )
    assert response.status_code == 200, response.text


def _advance_to(stack: StackClient, moment: datetime) -> None:
    _advance(stack, max(0.0, (moment - stack.now()).total_seconds()))


def _zone_where(moment: datetime, local_hour: int) -> str:
    """A whole-hour zone in which `moment` falls within the hour `local_hour`."""
    offset = (local_hour - moment.hour) % 24
    if offset > 14:
        offset -= 24  # Etc/GMT zones run from UTC-12 to UTC+14
    return "UTC" if offset == 0 else f"Etc/GMT{-offset:+d}"  # Etc/GMT signs are inverted


def _emails(stack: StackClient) -> list[dict[str, Any]]:
    stack.drain()
    response = stack.get("/_local/outbox")
    assert response.status_code == 200, response.text
    return [entry for entry in response.json() if "html" in entry]


def _send_outcomes(stack: StackClient, user_id: str, trigger: str) -> list[str]:
    """The trigger's decisions for the user, less the engine's own (pending, fired)."""
    stack.drain()
    response = stack.get("/_local/explain/" + quote(user_id, safe=""))
    assert response.status_code == 200, response.text
    return [
        decision["outcome"]
        for decision in response.json()["decisions"]
        if decision["trigger"] == trigger and decision["outcome"] not in ("pending", "fired")
    ]


def _unsubscribe_url(email: dict[str, Any]) -> str:
    return str(email["headers"]["List-Unsubscribe"]).strip().removeprefix("<").removesuffix(">")


def _abandon_cart_by_day(stack: StackClient, user_id: str, carts: int = 1) -> None:
    """Carts added now by a user whose timezone makes their 24-hour mark midday."""
    due = stack.now() + timedelta(days=1, minutes=1)
    _identify(stack, user_id, email=f"{user_id}@example.com", timezone=_zone_where(due, 12))
    for number in range(carts):
        _add_to_cart(stack, user_id, _new_id("cart"), f"sku-{number}", 10.0 + number)


# ---- email ---------------------------------------------------------------------------


def test_a_product_link_in_the_email_records_the_click_and_redirects(
    delivery_stack: StackClient,
):
    """The cart email's product links go through the click tracker to the product page."""
    # given
    stack, user = delivery_stack, _new_id("user")
    due = stack.now() + timedelta(days=1, minutes=1)
    _identify(stack, user, email=f"{user}@example.com", timezone=_zone_where(due, 12))
    _add_to_cart(stack, user, _new_id("cart"), "sku-1", 19.5)
    _advance(stack, DAY + MINUTE)
    link = re.findall(r'href="([^"]+/c/[^"]+)"', _emails(stack)[0]["html"])[0]

    # when
    response = stack.session.get(link, allow_redirects=False, timeout=10)

    # then
    assert response.status_code == 302
    assert response.headers["Location"] == "https://shop.example/p/sku-1"


def test_abandoned_cart_becomes_one_email_with_one_click_unsubscribe(
    delivery_stack: StackClient,
):
    """An abandoned cart's fire is one email listing the cart, with RFC 8058 headers."""
    # given
    stack, user = delivery_stack, _new_id("user")
    address = f"{user}@example.com"
    due = stack.now() + timedelta(days=1, minutes=1)
    _identify(stack, user, email=address, timezone=_zone_where(due, 12))
    cart = _new_id("cart")
    _add_to_cart(stack, user, cart, "sku-1", 19.5)
    _add_to_cart(stack, user, cart, "sku-2", 5.0)

    # when
    _advance(stack, DAY + MINUTE)

    # then
    emails = _emails(stack)
    assert len(emails) == 1, emails
    email = emails[0]
    assert email["delivered"] is True
    assert email["to"] == [address]
    assert email["from"] == FROM_EMAIL
    assert email["trigger"] == "abandoned_cart"
    assert "Product sku-1" in email["html"]
    assert "Product sku-2" in email["html"]
    assert "https://shop.example/p/sku-1" in email["text"]
    assert _unsubscribe_url(email).startswith(stack.base_url + "/u/")
    assert email["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    page = stack.get("/_local/outbox/0")
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert page.text == email["html"]


def test_one_click_unsubscribe_stops_later_emails(delivery_stack: StackClient):
    """POSTing List-Unsubscribe=One-Click to the header's URL suppresses later fires."""
    # given
    stack, user = delivery_stack, _new_id("user")
    _abandon_cart_by_day(stack, user)
    _advance(stack, DAY + MINUTE)
    (email,) = _emails(stack)

    # when
    response = stack.session.post(
        _unsubscribe_url(email),
        data="List-Unsubscribe=One-Click",
        headers=ONE_CLICK,
        timeout=REQUEST_TIMEOUT,
    )
    _add_to_cart(stack, user, _new_id("cart"), "sku-9", 9.0)
    _advance(stack, DAY + MINUTE)

    # then
    assert response.status_code == 200, response.text
    assert len(_emails(stack)) == 1
    assert _send_outcomes(stack, user, "abandoned_cart") == ["sent", "suppressed"]


def test_five_abandoned_carts_in_one_day_give_one_email(delivery_stack: StackClient):
    """Five carts abandoned the same day: one email, the other four fires capped."""
    # given
    stack, user = delivery_stack, _new_id("user")
    _abandon_cart_by_day(stack, user, carts=5)

    # when
    _advance(stack, DAY + MINUTE)

    # then
    assert len(_emails(stack)) == 1
    outcomes = _send_outcomes(stack, user, "abandoned_cart")
    assert sorted(outcomes) == ["capped"] * 4 + ["sent"], outcomes


def test_a_fire_due_in_quiet_hours_is_emailed_when_they_end(delivery_stack: StackClient):
    """A fire due at night in the person's timezone is emailed at 08:00 their time."""
    # given
    stack, user = delivery_stack, _new_id("user")
    due = stack.now() + timedelta(days=1, minutes=1)
    zone = _zone_where(due, 22)
    _identify(stack, user, email=f"{user}@example.com", timezone=zone)
    _add_to_cart(stack, user, _new_id("cart"), "sku-1", 10.0)
    morning = datetime.combine(
        due.astimezone(ZoneInfo(zone)).date() + timedelta(days=1), time(8), tzinfo=ZoneInfo(zone)
    )

    # when
    _advance_to(stack, due)

    # then
    assert _emails(stack) == []
    assert _send_outcomes(stack, user, "abandoned_cart") == ["deferred"]

    # when
    _advance_to(stack, morning - timedelta(minutes=1))

    # then
    assert _emails(stack) == []

    # when
    _advance_to(stack, morning + timedelta(minutes=1))

    # then
    (email,) = _emails(stack)
    assert email["to"] == [f"{user}@example.com"]
    assert _send_outcomes(stack, user, "abandoned_cart") == ["deferred", "sent"]


# ---- webhook -------------------------------------------------------------------------


def _start_vip_checkout(stack: StackClient, user: str) -> dict[str, Any]:
    """A VIP who starts checkout now; returns the stored Checkout Started event."""
    _identify(stack, user, email=f"{user}@example.com", name="Ada Vip", tier="vip")
    _track(stack, user, "Checkout Started", {"cart_id": _new_id("cart"), "total": 250.0})
    (event,) = [event for event in stack.events(user) if event.get("event") == "Checkout Started"]
    return event


def test_vip_checkout_without_an_order_posts_one_signed_webhook(
    delivery_stack: StackClient, crm_receiver: Receiver
):
    """A VIP's unfinished checkout gets one signed vip_call webhook to the CRM after 1 h."""
    # given
    stack, user = delivery_stack, _new_id("vip")
    event = _start_vip_checkout(stack, user)
    started = int(datetime.now(UTC).timestamp())

    # when
    _advance(stack, HOUR + MINUTE)

    # then
    (request,) = crm_receiver.received()
    assert request.path == "/crm/tasks"
    # Signed at the real time of the attempt, not the stack's virtual time an hour ahead:
    # the receiver verifies against its own clock.
    stamp = int(request.headers["webhook-timestamp"])
    assert started <= stamp <= int(datetime.now(UTC).timestamp())
    payload = Webhook(WEBHOOK_SECRET).verify(request.body, request.headers)
    assert payload == {
        "type": "task",
        "subject": "Call VIP Ada Vip about an unfinished checkout",
        "email": f"{user}@example.com",
        "userId": user,
        "checkoutStartedAt": event["timestamp"],
    }
    assert json.loads(request.body) == payload
    assert _send_outcomes(stack, user, "vip_checkout_call") == ["sent"]


def test_a_failing_receiver_gets_the_same_webhook_until_it_succeeds(
    delivery_stack: StackClient, crm_receiver: Receiver
):
    """Two 500s, then the webhook arrives once, retried 5 s and 5 min later, same webhook-id."""
    # given
    stack, user = delivery_stack, _new_id("vip")
    crm_receiver.reset(failures=2)
    _start_vip_checkout(stack, user)
    started = int(datetime.now(UTC).timestamp())

    # when
    _advance(stack, HOUR + MINUTE)
    first = crm_receiver.received()
    # The 5 s retry waits on the send queue (DelaySeconds), which keeps the virtual clock;
    # real time moves that clock too, so "not yet" is asked well before the 5 s are up.
    _advance(stack, 2)
    not_yet = crm_receiver.received()
    _advance(stack, 4)
    second = crm_receiver.received()
    _advance(stack, 5 * MINUTE + 2)
    third = crm_receiver.received()
    _advance(stack, DAY)

    # then
    assert [len(first), len(not_yet), len(second), len(third)] == [1, 1, 2, 3]
    received = crm_receiver.received()
    assert [request.status for request in received] == [500, 500, 204]
    assert len({request.headers["webhook-id"] for request in received}) == 1
    # The retries come 5 s and 5 min later on the virtual clock; each is signed with the
    # real time it was sent, which the receiver's verify accepts.
    stamps = [int(request.headers["webhook-timestamp"]) for request in received]
    assert started <= stamps[0] <= stamps[1] <= stamps[2] <= int(datetime.now(UTC).timestamp())
    assert Webhook(WEBHOOK_SECRET).verify(received[-1].body, received[-1].headers)["userId"] == user
    assert _send_outcomes(stack, user, "vip_checkout_call") == ["retry", "retry", "sent"]
