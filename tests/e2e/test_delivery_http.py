"""Delivery over real HTTP: fires become emails (SES, read back from /_local/outbox) and
signed webhooks (to a loopback CRM receiver), under the contact policy.

This module runs its own stack, configured with a sender address, a webhook secret and a
CRM webhook URL pointing at a receiver started first on 127.0.0.1. Events carry no
timestamp, so each one is received at the stack's virtual "now"; the clock only moves
forward, so timezones are chosen from the clock to put due times at the hour a test needs.
A cart's shopper is ``shopper_in("user")``: one the abandoned_cart experiment puts in h24, so
the reminder these tests time is due a day after the cart.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from standardwebhooks import Webhook

from bench.receiver import Receiver
from tests.arms import shopper_in
from tests.e2e.conftest import (
    FROM_EMAIL,
    REQUEST_TIMEOUT,
    WEBHOOK_SECRET,
    StackClient,
)
from tests.e2e.shop import (
    DAY,
    HOUR,
    MINUTE,
    add_to_cart,
    advance,
    advance_to,
    emails,
    identify,
    new_id,
    send_outcomes,
    track,
    zone_where,
)

pytestmark = pytest.mark.e2e

ONE_CLICK = {"Content-Type": "application/x-www-form-urlencoded"}


# ---- events in, the clock, and what came out ---------------------------------------------


def _unsubscribe_url(email: dict[str, Any]) -> str:
    return str(email["headers"]["List-Unsubscribe"]).strip().removeprefix("<").removesuffix(">")


def _abandon_cart_by_day(stack: StackClient, user_id: str, carts: int = 1) -> None:
    """Carts added now by a user (in h24) whose timezone makes their 24-hour mark midday."""
    due = stack.now() + timedelta(days=1, minutes=1)
    identify(stack, user_id, email=f"{user_id}@example.com", timezone=zone_where(due, 12))
    for number in range(carts):
        add_to_cart(stack, user_id, new_id("cart"), f"sku-{number}", 10.0 + number)


# ---- email ---------------------------------------------------------------------------


def test_a_product_link_in_the_email_records_the_click_and_redirects(
    delivery_stack: StackClient,
):
    """The cart email's product links go through the click tracker to the product page."""
    # given
    stack, user = delivery_stack, shopper_in("user")
    due = stack.now() + timedelta(days=1, minutes=1)
    identify(stack, user, email=f"{user}@example.com", timezone=zone_where(due, 12))
    add_to_cart(stack, user, new_id("cart"), "sku-1", 19.5)
    advance(stack, DAY + MINUTE)
    link = re.findall(r'href="([^"]+/c/[^"]+)"', emails(stack)[0]["html"])[0]

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
    stack, user = delivery_stack, shopper_in("user")
    address = f"{user}@example.com"
    due = stack.now() + timedelta(days=1, minutes=1)
    identify(stack, user, email=address, timezone=zone_where(due, 12))
    cart = new_id("cart")
    add_to_cart(stack, user, cart, "sku-1", 19.5)
    add_to_cart(stack, user, cart, "sku-2", 5.0)

    # when
    advance(stack, DAY + MINUTE)

    # then
    sent = emails(stack)
    assert len(sent) == 1, sent
    email = sent[0]
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
    stack, user = delivery_stack, shopper_in("user")
    _abandon_cart_by_day(stack, user)
    advance(stack, DAY + MINUTE)
    (email,) = emails(stack)

    # when
    response = stack.session.post(
        _unsubscribe_url(email),
        data="List-Unsubscribe=One-Click",
        headers=ONE_CLICK,
        timeout=REQUEST_TIMEOUT,
    )
    add_to_cart(stack, user, new_id("cart"), "sku-9", 9.0)
    advance(stack, DAY + MINUTE)

    # then
    assert response.status_code == 200, response.text
    assert len(emails(stack)) == 1
    assert send_outcomes(stack, user, "abandoned_cart") == ["sent", "suppressed"]


def test_five_abandoned_carts_in_one_day_give_one_email(delivery_stack: StackClient):
    """Five carts abandoned the same day: one email, the other four fires capped."""
    # given
    stack, user = delivery_stack, shopper_in("user")
    _abandon_cart_by_day(stack, user, carts=5)

    # when
    advance(stack, DAY + MINUTE)

    # then
    assert len(emails(stack)) == 1
    outcomes = send_outcomes(stack, user, "abandoned_cart")
    assert sorted(outcomes) == ["capped"] * 4 + ["sent"], outcomes


def test_a_fire_due_in_quiet_hours_is_emailed_when_they_end(delivery_stack: StackClient):
    """A fire due at night in the person's timezone is emailed at 08:00 their time."""
    # given
    stack, user = delivery_stack, shopper_in("user")
    due = stack.now() + timedelta(days=1, minutes=1)
    zone = zone_where(due, 22)
    identify(stack, user, email=f"{user}@example.com", timezone=zone)
    add_to_cart(stack, user, new_id("cart"), "sku-1", 10.0)
    morning = datetime.combine(
        due.astimezone(ZoneInfo(zone)).date() + timedelta(days=1), time(8), tzinfo=ZoneInfo(zone)
    )

    # when
    advance_to(stack, due)

    # then
    assert emails(stack) == []
    assert send_outcomes(stack, user, "abandoned_cart") == ["deferred"]

    # when
    advance_to(stack, morning - timedelta(minutes=1))

    # then
    assert emails(stack) == []

    # when
    advance_to(stack, morning + timedelta(minutes=1))

    # then
    (email,) = emails(stack)
    assert email["to"] == [f"{user}@example.com"]
    assert send_outcomes(stack, user, "abandoned_cart") == ["deferred", "sent"]


# ---- webhook -------------------------------------------------------------------------


def _start_vip_checkout(stack: StackClient, user: str) -> dict[str, Any]:
    """A VIP who starts checkout now; returns the stored Checkout Started event."""
    identify(stack, user, email=f"{user}@example.com", name="Ada Vip", tier="vip")
    track(stack, user, "Checkout Started", {"cart_id": new_id("cart"), "total": 250.0})
    (event,) = [event for event in stack.events(user) if event.get("event") == "Checkout Started"]
    return event


def test_vip_checkout_without_an_order_posts_one_signed_webhook(
    delivery_stack: StackClient, crm_receiver: Receiver
):
    """A VIP's unfinished checkout gets one signed vip_call webhook to the CRM after 1 h."""
    # given
    stack, user = delivery_stack, new_id("vip")
    event = _start_vip_checkout(stack, user)
    started = int(datetime.now(UTC).timestamp())

    # when
    advance(stack, HOUR + MINUTE)

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
    assert send_outcomes(stack, user, "vip_checkout_call") == ["sent"]
