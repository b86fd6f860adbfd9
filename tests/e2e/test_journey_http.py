"""The shipped cart_recovery_series journey over real HTTP on the local stack: a reminder an
hour after the cart, then a day later free shipping or a last call, unless checkout started
or an order came; explain says where each shopper stands. The waits are the journey's
one-time schedules, fired on the stack's virtual clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.conftest import REPO
from tests.e2e.conftest import FROM_EMAIL, StackClient, _run_stack
from tests.e2e.shop import (
    DAY,
    HOUR,
    MINUTE,
    add_to_cart,
    advance,
    emails_to,
    identify,
    new_id,
    track,
    zone_where,
)

pytestmark = pytest.mark.e2e

TRIGGER = "cart_recovery_series"
REMINDER, FREE_SHIPPING, LAST_CALL = (
    "Still thinking it over?",
    "Free shipping on your cart",
    "Last call for your cart",
)


@pytest.fixture(scope="module")
def journey_stack(
    stack_logs: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StackClient]:
    """A stack whose only trigger is the shipped journey, turned on."""
    folder = tmp_path_factory.mktemp("journey-triggers")
    (folder / "templates").symlink_to(REPO / "triggers" / "templates")
    shipped = (REPO / "triggers" / f"{TRIGGER}.yaml").read_text(encoding="utf-8")
    assert "\nenabled: false\n" in shipped
    enabled = shipped.replace("\nenabled: false\n", "\nenabled: true\n")
    (folder / f"{TRIGGER}.yaml").write_text(enabled, encoding="utf-8")
    settings = {"NUDGE_TRIGGERS_DIR": str(folder), "NUDGE_FROM_EMAIL": FROM_EMAIL}
    yield from _run_stack(None, stack_logs, settings)


def _shopper(stack: StackClient, cart_total: float) -> tuple[str, str]:
    """A shopper with an email, in a zone where it is 11:xx now (so the sends an hour and a
    day and an hour later fall at midday, outside quiet hours), who put one item of
    ``cart_total`` in a new cart. Returns the user and the cart."""
    user, cart = new_id("shopper"), new_id("cart")
    identify(stack, user, email=f"{user}@example.com", timezone=zone_where(stack.now(), 11))
    add_to_cart(stack, user, cart, new_id("sku"), cart_total)
    return user, cart


def _subjects(stack: StackClient, user: str) -> list[str]:
    return [str(email["subject"]) for email in emails_to(stack, user)]


def _journey(stack: StackClient, user: str, cart: str) -> dict[str, Any]:
    """Where explain says the shopper stands in the cart's journey."""
    stack.drain()
    response = stack.get("/_local/explain/" + quote(user, safe=""))
    assert response.status_code == 200, response.text
    (found,) = [
        journey
        for journey in response.json()["journeys"]
        if journey["trigger"] == TRIGGER and journey["occurrence"] == f"cart_id={cart}"
    ]
    return dict(found)


def test_a_small_cart_gets_the_reminder_and_a_day_later_the_last_call(
    journey_stack: StackClient,
) -> None:
    # given
    stack = journey_stack
    user, cart = _shopper(stack, cart_total=10)
    entered = stack.now()
    # when
    advance(stack, HOUR + MINUTE)
    after_an_hour, waiting = _subjects(stack, user), _journey(stack, user, cart)
    advance(stack, DAY)
    # then
    assert after_an_hour == [REMINDER]
    assert (waiting["status"], waiting["step"]) == ("waiting", "2")
    due = datetime.fromisoformat(waiting["at"])
    assert abs(due - (entered + timedelta(days=1, hours=1))) < timedelta(minutes=1)
    assert _subjects(stack, user) == [REMINDER, LAST_CALL]
    assert _journey(stack, user, cart)["status"] == "completed"


def test_a_cart_over_100_gets_free_shipping_at_the_branch(journey_stack: StackClient) -> None:
    # given
    stack = journey_stack
    user, _ = _shopper(stack, cart_total=150)
    # when
    advance(stack, HOUR + DAY + MINUTE)
    # then
    assert _subjects(stack, user) == [REMINDER, FREE_SHIPPING]


def test_checkout_started_during_the_wait_ends_the_journey_without_a_second_email(
    journey_stack: StackClient,
) -> None:
    # given
    stack = journey_stack
    user, cart = _shopper(stack, cart_total=10)
    advance(stack, HOUR + MINUTE)
    # when
    track(stack, user, "Checkout Started", {"cart_id": cart})
    advance(stack, DAY)
    # then
    assert _subjects(stack, user) == [REMINDER]
    journey = _journey(stack, user, cart)
    assert (journey["status"], journey["step"]) == ("exited", "2")
    assert "Checkout Started" in journey["reason"]


def test_an_order_before_the_first_hour_sends_nothing(journey_stack: StackClient) -> None:
    # given
    stack = journey_stack
    user, cart = _shopper(stack, cart_total=10)
    advance(stack, 30 * MINUTE)
    # when
    track(stack, user, "Order Completed", {"cart_id": cart, "order_id": new_id("order")})
    advance(stack, HOUR + DAY)
    # then
    assert _subjects(stack, user) == []
    journey = _journey(stack, user, cart)
    assert (journey["status"], journey["step"]) == ("exited", "0")
