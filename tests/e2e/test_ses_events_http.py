"""SES's events through the local stack: SES's mailbox simulator addresses bounce and
complain as they do on AWS, the configuration set publishes the events to EventBridge, and
the Feedback function suppresses the address, so the next fire to it is not sent."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest

from tests.arms import shopper_in
from tests.e2e.conftest import StackClient
from tests.e2e.shop import advance as _advance  # asserts the advance completed

pytestmark = pytest.mark.e2e

DAY = 24 * 60 * 60
BOUNCE = "bounce@simulator.amazonses.com"
COMPLAINT = "complaint@simulator.amazonses.com"


def _midday_zone(moment: datetime) -> str:
    """A whole-hour Etc/GMT zone where `moment` is around noon: outside quiet hours."""
    offset = (12 - moment.hour) % 24
    if offset > 14:
        offset -= 24
    return "UTC" if offset == 0 else f"Etc/GMT{-offset:+d}"  # Etc/GMT signs are inverted


def _abandon_cart(stack: StackClient, user: str, address: str, cart: str) -> None:
    """The user (emailed at `address`) adds to `cart` now; the reminder is due a day later
    for a user the abandoned_cart experiment puts in h24 (tests.arms.shopper_in)."""
    due = stack.now() + timedelta(days=1, minutes=1)
    traits = {"email": address, "timezone": _midday_zone(due)}
    assert stack.post("/v1/identify", {"userId": user, "traits": traits}).status_code == 200
    properties = {"cart_id": cart, "name": "Mug", "price": 9, "quantity": 1}
    track = {"userId": user, "event": "Product Added", "properties": properties}
    assert stack.post("/v1/track", track).status_code == 200
    stack.drain()


def _delivery(stack: StackClient, user: str) -> list[dict[str, Any]]:
    """Delivery's decisions on the user's abandoned carts, oldest first."""
    stack.drain()
    decisions = stack.get("/_local/explain/" + quote(user, safe="")).json()["decisions"]
    return [
        decision
        for decision in decisions
        if decision["trigger"] == "abandoned_cart"
        and decision["outcome"] not in ("pending", "fired", "exited", "not_matched")
    ]


def _emails_to(stack: StackClient, address: str) -> list[dict[str, Any]]:
    stack.drain()
    return [entry for entry in stack.get("/_local/outbox").json() if address in entry["to"]]


@pytest.mark.parametrize(("address", "reason"), [(BOUNCE, "bounced"), (COMPLAINT, "complained")])
def test_a_bounce_or_complaint_suppresses_the_address_for_the_next_fire(
    delivery_stack: StackClient, address: str, reason: str
):
    """The first email to a simulator address is sent; SES reports the bounce or complaint,
    and the next day's abandoned cart to the same address is suppressed, not sent."""
    # given
    user = shopper_in("sim")
    _abandon_cart(delivery_stack, user, address, "c1")
    _advance(delivery_stack, DAY + 60)

    # when
    _abandon_cart(delivery_stack, user, address, "c2")
    _advance(delivery_stack, DAY + 60)

    # then
    assert len(_emails_to(delivery_stack, address)) == 1
    outcomes = [decision["outcome"] for decision in _delivery(delivery_stack, user)]
    assert outcomes == ["sent", "suppressed"]


def test_every_accepted_email_leaves_a_receipt(delivery_stack: StackClient):
    """SES's Send event reaches Feedback for each accepted email: its fire has a receipt."""
    # given
    user = shopper_in("receipt")
    address = f"{user}@example.com"
    _abandon_cart(delivery_stack, user, address, "c1")

    # when
    _advance(delivery_stack, DAY + 60)

    # then
    (email,) = _emails_to(delivery_stack, address)
    table = delivery_stack.aws("dynamodb")
    item = table.get_item(
        TableName="nudge-local-Table",
        Key={"pk": {"S": f"R#{email['fire']}"}, "sk": {"S": "ACCEPTED"}},
    ).get("Item")
    assert item is not None
    assert item["message_id"]["S"] == email["id"]
