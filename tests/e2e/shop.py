"""A shopper's steps over the beacon API, the virtual clock, and what came out, shared by
the end-to-end tests of delivery and of time."""

from __future__ import annotations

import uuid
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

from tests.e2e.conftest import REQUEST_TIMEOUT, StackClient

MINUTE = 60
HOUR = 60 * MINUTE
DAY = 24 * HOUR


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def send(stack: StackClient, kind: str, message: dict[str, Any]) -> None:
    response = stack.post(f"/v1/{kind}", message)
    assert response.status_code == 200, response.text


def identify(stack: StackClient, user_id: str, **traits: Any) -> None:
    send(stack, "identify", {"userId": user_id, "traits": traits})


def track(stack: StackClient, user_id: str, event: str, properties: dict[str, Any]) -> None:
    send(stack, "track", {"userId": user_id, "event": event, "properties": properties})


def add_to_cart(stack: StackClient, user_id: str, cart_id: str, sku: str, price: float) -> None:
    track(
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


def advance(stack: StackClient, seconds: float) -> dict[str, Any]:
    response = stack.session.post(
        stack.url("/_local/clock/advance"), json={"seconds": seconds}, timeout=REQUEST_TIMEOUT * 4
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["complete"], body
    return body


def advance_to(stack: StackClient, moment: datetime) -> None:
    advance(stack, max(0.0, (moment - stack.now()).total_seconds()))


def zone_where(moment: datetime, local_hour: int) -> str:
    """A whole-hour zone in which `moment` falls within the hour `local_hour`."""
    offset = (local_hour - moment.hour) % 24
    if offset > 14:
        offset -= 24  # Etc/GMT zones run from UTC-12 to UTC+14
    return "UTC" if offset == 0 else f"Etc/GMT{-offset:+d}"  # Etc/GMT signs are inverted


def emails(stack: StackClient) -> list[dict[str, Any]]:
    stack.drain()
    response = stack.get("/_local/outbox")
    assert response.status_code == 200, response.text
    return [entry for entry in response.json() if "html" in entry]


def emails_to(stack: StackClient, user_id: str) -> list[dict[str, Any]]:
    return [email for email in emails(stack) if f"{user_id}@example.com" in email["to"]]


def dated(email: dict[str, Any]) -> datetime:
    """An email's Date header, to the second."""
    return parsedate_to_datetime(str(email["headers"]["Date"]))


def decisions(stack: StackClient, user_id: str, trigger: str) -> list[dict[str, Any]]:
    stack.drain()
    response = stack.get("/_local/explain/" + quote(user_id, safe=""))
    assert response.status_code == 200, response.text
    return [d for d in response.json()["decisions"] if d["trigger"] == trigger]


def send_outcomes(stack: StackClient, user_id: str, trigger: str) -> list[str]:
    """The trigger's decisions for the user, less the engine's own (pending, fired)."""
    return [
        decision["outcome"]
        for decision in decisions(stack, user_id, trigger)
        if decision["outcome"] not in ("pending", "fired")
    ]
