"""Faults injected into the local stack's fake AWS, and what delivery does with them."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from tests.e2e.conftest import StackClient

pytestmark = pytest.mark.e2e

DAY = 86400


def _daytime_zone(stack: StackClient) -> str:
    """An Etc/GMT zone where the cart's due time (a day from now) is around noon."""
    due = stack.now() + timedelta(days=1, minutes=1)
    hours = (12 - due.hour + 12) % 24 - 12  # local = UTC + hours, within -12..+11
    return "Etc/GMT" + (f"{-hours:+d}" if hours else "")


def _decisions(stack: StackClient, user: str) -> list[dict[str, Any]]:
    stack.drain()
    response = stack.get(f"/_local/explain/{user}")
    return [d for d in response.json()["decisions"] if d["trigger"] == "abandoned_cart"]


def _emails_to(stack: StackClient, address: str) -> list[dict[str, Any]]:
    outbox = stack.get("/_local/outbox").json()
    return [
        m
        for m in outbox
        if m.get("channel") == "email" and m.get("to") == [address] and m.get("delivered")
    ]


def test_ses_throttling_past_the_sdk_retries_is_retried_by_nudge_and_sent_once(stack: StackClient):
    """SES refusing every attempt the SDK makes is not a loss: Nudge retries later, once."""
    # given
    user = f"throttled-{uuid.uuid4().hex[:8]}"
    address = f"{user}@example.com"
    stack.post(
        "/v1/identify",
        {"userId": user, "traits": {"email": address, "timezone": _daytime_zone(stack)}},
    )
    stack.post(
        "/v1/track",
        {
            "userId": user,
            "event": "Product Added",
            "properties": {
                "cart_id": "c1",
                "name": "Mug",
                "price": 9,
                "quantity": 1,
                "url": "https://shop.example/mug",
            },
        },
    )
    stack.drain()
    assert stack.post("/_local/faults", {"ses": {"throttle": 10}}).status_code == 200

    # when
    stack.post("/_local/clock/advance", {"seconds": DAY + 60})
    refused = _emails_to(stack, address)
    stack.post("/_local/faults", {"ses": {"throttle": 0}})
    stack.post("/_local/clock/advance", {"seconds": 120})

    # then
    outcomes = [d["outcome"] for d in _decisions(stack, user)]
    assert refused == []
    assert outcomes[-2:] == ["retry", "sent"]
    assert len(_emails_to(stack, address)) == 1


@pytest.mark.parametrize("body", [{}, {"ses": {"throttle": -1}}, {"ses": {"throttle": "many"}}])
def test_a_bad_fault_request_is_refused(stack: StackClient, body: dict[str, Any]):
    """The fault control answers a malformed request with a 400 naming the field."""
    # given / when
    response = stack.post("/_local/faults", body)

    # then
    assert response.status_code == 400
    assert response.json()["field"] == "ses.throttle"
