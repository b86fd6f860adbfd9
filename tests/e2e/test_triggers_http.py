"""The shipped triggers, run by the local stack's Evaluate function, seen over real HTTP.

Events go in through the Segment API; the virtual clock is advanced to make timers due;
fires, decisions (explain) and the outbox are read back from the /_local control API.
Events carry no timestamp, so each one is received at the stack's virtual "now".
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from urllib.parse import quote

import pytest

from tests.arms import shopper_in
from tests.e2e.conftest import StackClient
from tests.e2e.shop import advance as _advance  # asserts the advance completed

pytestmark = pytest.mark.e2e

MINUTE = 60
HOUR = 60 * MINUTE
DAY = 24 * HOUR
ITEM_FIELDS = {"name", "price", "quantity", "image_url", "url"}


# ---- sending -------------------------------------------------------------------------


def _new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def _send(stack: StackClient, kind: str, message: dict[str, Any]) -> None:
    response = stack.post(f"/v1/{kind}", message)
    assert response.status_code == 200, response.text


def _identify(
    stack: StackClient, user_id: str, anonymous_id: str | None = None, **traits: Any
) -> None:
    message: dict[str, Any] = {"userId": user_id, "traits": traits}
    if anonymous_id:
        message["anonymousId"] = anonymous_id
    _send(stack, "identify", message)


def _track(
    stack: StackClient,
    event: str,
    properties: dict[str, Any],
    *,
    user_id: str | None = None,
    anonymous_id: str | None = None,
) -> None:
    message: dict[str, Any] = {"event": event, "properties": properties}
    if user_id:
        message["userId"] = user_id
    if anonymous_id:
        message["anonymousId"] = anonymous_id
    _send(stack, "track", message)


def _page(stack: StackClient, user_id: str, name: str) -> None:
    _send(stack, "page", {"userId": user_id, "name": name, "properties": {"path": f"/{name}"}})


def _item(cart_id: str, sku: str, price: float, quantity: int = 1) -> dict[str, Any]:
    return {
        "cart_id": cart_id,
        "product_id": sku,
        "name": f"Product {sku}",
        "price": price,
        "quantity": quantity,
        "image_url": f"https://shop.example/img/{sku}.jpg",
        "url": f"https://shop.example/p/{sku}",
    }


def _add_to_cart(stack: StackClient, cart_id: str, sku: str, price: float, **who: Any) -> None:
    _track(stack, "Product Added", _item(cart_id, sku, price), **who)


# ---- the clock and the control API ---------------------------------------------------


def _clock(stack: StackClient) -> str:
    response = stack.get("/_local/clock")
    assert response.status_code == 200, response.text
    return str(response.json()["now"])


def _fires(stack: StackClient, user_id: str, trigger: str | None = None) -> list[dict[str, Any]]:
    stack.drain()
    response = stack.get("/_local/fires?userId=" + quote(user_id, safe=""))
    assert response.status_code == 200, response.text
    fires: list[dict[str, Any]] = response.json()
    return [fire for fire in fires if trigger is None or fire["trigger"] == trigger]


# What the engine decides; delivery's own outcomes (sent, skipped, capped...) follow a fire
# and are the delivery suites' business.
ENGINE_OUTCOMES = {"fired", "pending", "not_matched", "exited", "duplicate"}


def _decisions(stack: StackClient, user_id: str, trigger: str) -> list[dict[str, Any]]:
    stack.drain()
    response = stack.get("/_local/explain/" + quote(user_id, safe=""))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["userId"] == user_id
    return [
        decision
        for decision in body["decisions"]
        if decision["trigger"] == trigger and decision["outcome"] in ENGINE_OUTCOMES
    ]


def _outcomes(stack: StackClient, user_id: str, trigger: str) -> list[str]:
    return [decision["outcome"] for decision in _decisions(stack, user_id, trigger)]


# ---- abandoned_cart ------------------------------------------------------------------
# Shoppers come from shopper_in: ones the abandoned_cart experiment puts in h24, so their
# reminder is due 24 hours on. A visitor's cart is armed under the visitor: its arm counts.


def test_abandoned_cart_fires_once_after_24_hours_with_the_cart_items(stack: StackClient):
    """A user with an email who adds to cart and does not buy gets one fire with the items."""
    # given
    user, cart = shopper_in("user"), _new_id("cart")
    _identify(stack, user, email=f"{user}@example.com")
    _add_to_cart(stack, cart, "sku-1", 19.5, user_id=user)
    _add_to_cart(stack, cart, "sku-2", 5.0, user_id=user)
    assert _fires(stack, user, "abandoned_cart") == []

    # when
    _advance(stack, DAY + MINUTE)

    # then
    fires = _fires(stack, user, "abandoned_cart")
    assert len(fires) == 1, fires
    fire = fires[0]
    assert fire["userId"] == user
    assert fire["channel"] == "email"
    assert fire["template"] == "abandoned_cart"
    assert fire["occurrence"] == f"cart_id={cart}"
    assert fire["event"]["event"] == "Product Added"
    items = sorted(fire["context"]["items"], key=lambda item: item["name"])
    assert items == [
        {key: value for key, value in _item(cart, sku, price).items() if key in ITEM_FIELDS}
        for sku, price in (("sku-1", 19.5), ("sku-2", 5.0))
    ]


def test_abandoned_cart_does_not_fire_again_as_the_clock_moves_on(stack: StackClient):
    """Once the abandoned cart has fired, advancing the clock further adds no second fire."""
    # given
    user, cart = shopper_in("user"), _new_id("cart")
    _identify(stack, user, email=f"{user}@example.com")
    _add_to_cart(stack, cart, "sku-1", 10.0, user_id=user)
    _advance(stack, DAY + MINUTE)
    assert len(_fires(stack, user, "abandoned_cart")) == 1

    # when
    _advance(stack, 3 * DAY)

    # then
    assert len(_fires(stack, user, "abandoned_cart")) == 1
    assert _outcomes(stack, user, "abandoned_cart").count("fired") == 1


def test_abandoned_cart_is_pending_until_the_24_hours_are_over(stack: StackClient):
    """Before 24 hours have passed, explain shows the cart pending and nothing has fired."""
    # given
    user, cart = shopper_in("user"), _new_id("cart")
    _identify(stack, user, email=f"{user}@example.com")
    _add_to_cart(stack, cart, "sku-1", 10.0, user_id=user)

    # when
    _advance(stack, 23 * HOUR)

    # then
    assert _fires(stack, user, "abandoned_cart") == []
    decisions = _decisions(stack, user, "abandoned_cart")
    assert [decision["outcome"] for decision in decisions] == ["pending"]
    assert decisions[0]["occurrence"] == f"cart_id={cart}"
    assert "Order Completed" in decisions[0]["reason"]


def test_an_order_for_the_cart_within_24_hours_exits_it(stack: StackClient):
    """An Order Completed with the same cart_id within 24 hours: no fire, explain says exited."""
    # given
    user, cart = shopper_in("user"), _new_id("cart")
    _identify(stack, user, email=f"{user}@example.com")
    _add_to_cart(stack, cart, "sku-1", 10.0, user_id=user)
    _advance(stack, 2 * HOUR)

    # when
    _track(stack, "Order Completed", {"cart_id": cart, "total": 10.0}, user_id=user)
    _advance(stack, DAY)

    # then
    assert _fires(stack, user, "abandoned_cart") == []
    decisions = _decisions(stack, user, "abandoned_cart")
    assert [decision["outcome"] for decision in decisions] == ["pending", "exited"]
    assert "Order Completed" in decisions[1]["reason"]
    assert decisions[1]["occurrence"] == f"cart_id={cart}"


def test_two_carts_get_two_timers_and_two_fires_each_with_its_own_items(stack: StackClient):
    """Two carts with different cart_ids are two occurrences: two pending timers, two fires."""
    # given
    user, first, second = shopper_in("user"), _new_id("cart"), _new_id("cart")
    _identify(stack, user, email=f"{user}@example.com")
    _add_to_cart(stack, first, "sku-a", 1.0, user_id=user)
    _add_to_cart(stack, second, "sku-b", 2.0, user_id=user)
    pending = _decisions(stack, user, "abandoned_cart")
    assert sorted((d["outcome"], d["occurrence"]) for d in pending) == sorted(
        [("pending", f"cart_id={first}"), ("pending", f"cart_id={second}")]
    )

    # when
    _advance(stack, DAY + MINUTE)

    # then
    fires = {fire["occurrence"]: fire for fire in _fires(stack, user, "abandoned_cart")}
    assert sorted(fires) == sorted([f"cart_id={first}", f"cart_id={second}"])
    assert [item["name"] for item in fires[f"cart_id={first}"]["context"]["items"]] == [
        "Product sku-a"
    ]
    assert [item["name"] for item in fires[f"cart_id={second}"]["context"]["items"]] == [
        "Product sku-b"
    ]


def test_an_order_for_one_cart_leaves_the_other_cart_to_fire(stack: StackClient):
    """An order naming one cart_id exits that cart only; the other cart still fires."""
    # given
    user, bought, left = shopper_in("user"), _new_id("cart"), _new_id("cart")
    _identify(stack, user, email=f"{user}@example.com")
    _add_to_cart(stack, bought, "sku-a", 1.0, user_id=user)
    _add_to_cart(stack, left, "sku-b", 2.0, user_id=user)

    # when
    _track(stack, "Order Completed", {"cart_id": bought}, user_id=user)
    _advance(stack, DAY + MINUTE)

    # then
    fires = _fires(stack, user, "abandoned_cart")
    assert [fire["occurrence"] for fire in fires] == [f"cart_id={left}"]


def test_an_anonymous_cart_then_identify_then_order_gives_no_fire(stack: StackClient):
    """A visitor who adds to cart, identifies and then orders under the userId gets no fire."""
    # given
    anon, user, cart = shopper_in("anon", anonymous=True), _new_id("user"), _new_id("cart")
    _add_to_cart(stack, cart, "sku-1", 10.0, anonymous_id=anon)
    _identify(stack, user, anonymous_id=anon, email=f"{user}@example.com")

    # when
    _track(stack, "Order Completed", {"cart_id": cart}, user_id=user)
    _advance(stack, DAY + MINUTE)

    # then
    assert _fires(stack, user, "abandoned_cart") == []
    decisions = _decisions(stack, user, "abandoned_cart")
    assert [(d["outcome"], d["person"]) for d in decisions] == [
        ("pending", f"a:{anon}"),
        ("exited", f"a:{anon}"),
    ]
    assert "Order Completed" in decisions[1]["reason"]


def test_an_anonymous_cart_then_identify_without_order_fires_to_the_user(stack: StackClient):
    """A visitor who adds to cart and identifies with an email but never orders is reminded."""
    # given
    anon, user, cart = shopper_in("anon", anonymous=True), _new_id("user"), _new_id("cart")
    _add_to_cart(stack, cart, "sku-1", 10.0, anonymous_id=anon)
    _identify(stack, user, anonymous_id=anon, email=f"{user}@example.com")

    # when
    _advance(stack, DAY + MINUTE)

    # then
    fires = _fires(stack, user, "abandoned_cart")
    assert [(fire["userId"], fire["occurrence"]) for fire in fires] == [(user, f"cart_id={cart}")]
    assert [item["name"] for item in fires[0]["context"]["items"]] == ["Product sku-1"]


def test_an_anonymous_cart_never_identified_is_not_matched_when_due(stack: StackClient):
    """A visitor who adds to cart and never identifies is waited for, then not_matched: no email."""
    # given
    anon, cart = shopper_in("anon", anonymous=True), _new_id("cart")
    _add_to_cart(stack, cart, "sku-1", 10.0, anonymous_id=anon)

    # when
    _advance(stack, DAY + MINUTE)

    # then
    assert _fires(stack, anon, "abandoned_cart") == []
    decisions = _decisions(stack, anon, "abandoned_cart")
    assert [decision["outcome"] for decision in decisions] == ["pending", "not_matched"]
    assert "traits.email" in decisions[1]["reason"]


def test_abandoned_cart_without_an_email_is_not_matched(stack: StackClient):
    """A user with no email trait who adds to cart is not_matched, the reason naming the email."""
    # given
    user, cart = _new_id("user"), _new_id("cart")
    _identify(stack, user, name="No Email")

    # when
    _add_to_cart(stack, cart, "sku-1", 10.0, user_id=user)
    _advance(stack, DAY + MINUTE)

    # then
    assert _fires(stack, user, "abandoned_cart") == []
    decisions = _decisions(stack, user, "abandoned_cart")
    assert [decision["outcome"] for decision in decisions] == ["not_matched"]
    assert "traits.email" in decisions[0]["reason"]


# ---- product_interest ----------------------------------------------------------------


def test_product_interest_fires_on_a_long_look(stack: StackClient):
    """A Page Engaged with active_seconds 150 fires product_interest at once (after a drain)."""
    # given
    user = _new_id("user")

    # when
    _track(stack, "Page Engaged", {"product_id": "sku-9", "active_seconds": 150}, user_id=user)

    # then
    fires = _fires(stack, user, "product_interest")
    assert [(fire["occurrence"], fire["channel"]) for fire in fires] == [
        ("product_id=sku-9", "email")
    ]
    assert _outcomes(stack, user, "product_interest") == ["fired"]


def test_product_interest_is_not_matched_on_a_short_look(stack: StackClient):
    """A Page Engaged with active_seconds 60 does not fire; explain names active_seconds."""
    # given
    user = _new_id("user")

    # when
    _track(stack, "Page Engaged", {"product_id": "sku-9", "active_seconds": 60}, user_id=user)

    # then
    assert _fires(stack, user, "product_interest") == []
    decisions = _decisions(stack, user, "product_interest")
    assert [decision["outcome"] for decision in decisions] == ["not_matched"]
    assert "active_seconds" in decisions[0]["reason"]


def test_product_interest_a_second_long_look_within_7_days_is_a_duplicate(stack: StackClient):
    """A second long look at the same product within 7 days is a duplicate, not a second fire."""
    # given
    user = _new_id("user")
    _track(stack, "Page Engaged", {"product_id": "sku-9", "active_seconds": 150}, user_id=user)
    _advance(stack, DAY)

    # when
    _track(stack, "Page Engaged", {"product_id": "sku-9", "active_seconds": 300}, user_id=user)

    # then
    assert len(_fires(stack, user, "product_interest")) == 1
    decisions = _decisions(stack, user, "product_interest")
    assert [decision["outcome"] for decision in decisions] == ["fired", "duplicate"]
    assert "once_per" in decisions[1]["reason"]


# ---- re_engagement -------------------------------------------------------------------
# The hourly sweep decides inactivity: it reads the hour a person was last seen once that
# hour is 7 days and an hour behind it, so a decision comes within 2 hours after the 7 days.
SWEEP_LAG = 2 * HOUR


def _short_visit(stack: StackClient, user: str, crm_status: str) -> None:
    """An identify with the CRM status, then two pages: one short session."""
    _identify(stack, user, email=f"{user}@example.com", crm_status=crm_status)
    _page(stack, user, "home")
    _page(stack, user, "pricing")


def test_re_engagement_fires_after_7_quiet_days_for_an_inactive_short_visitor(stack: StackClient):
    """crm_status inactive, a last session of 2 pages and 7 quiet days: re_engagement fires."""
    # given
    user = _new_id("user")
    _short_visit(stack, user, "inactive")

    # when
    _advance(stack, 7 * DAY + SWEEP_LAG)

    # then
    fires = _fires(stack, user, "re_engagement")
    assert [(fire["userId"], fire["channel"]) for fire in fires] == [(user, "email")]
    assert _outcomes(stack, user, "re_engagement")[-1] == "fired"


def test_re_engagement_is_pending_before_the_7_days(stack: StackClient):
    """Six quiet days in, re_engagement has not fired and explain shows it pending."""
    # given
    user = _new_id("user")
    _short_visit(stack, user, "inactive")

    # when
    _advance(stack, 6 * DAY)

    # then
    assert _fires(stack, user, "re_engagement") == []
    assert _outcomes(stack, user, "re_engagement") == ["pending"]


def test_re_engagement_is_not_matched_for_an_active_crm_status(stack: StackClient):
    """crm_status active: after 7 quiet days re_engagement is not_matched, naming crm_status."""
    # given
    user = _new_id("user")
    _short_visit(stack, user, "active")

    # when
    _advance(stack, 7 * DAY + SWEEP_LAG)

    # then
    assert _fires(stack, user, "re_engagement") == []
    decisions = _decisions(stack, user, "re_engagement")
    assert decisions[-1]["outcome"] == "not_matched"
    assert "crm_status" in decisions[-1]["reason"]


def test_re_engagement_is_not_matched_after_a_long_last_session(stack: StackClient):
    """A last session of 3 pages or more: after 7 quiet days re_engagement is not_matched."""
    # given
    user = _new_id("user")
    _identify(stack, user, email=f"{user}@example.com", crm_status="inactive")
    for name in ("home", "pricing", "features", "about"):
        _page(stack, user, name)

    # when
    _advance(stack, 7 * DAY + SWEEP_LAG)

    # then
    assert _fires(stack, user, "re_engagement") == []
    decisions = _decisions(stack, user, "re_engagement")
    assert decisions[-1]["outcome"] == "not_matched"
    assert "last_session_pages" in decisions[-1]["reason"]


def test_re_engagement_a_return_on_day_5_does_not_fire_on_day_7(stack: StackClient):
    """A user who comes back on day 5 is not fired on day 7: explain counts from the return."""
    # given
    user = _new_id("user")
    _short_visit(stack, user, "inactive")
    _advance(stack, 5 * DAY)
    _page(stack, user, "home")
    returned = _clock(stack)

    # when
    _advance(stack, 2 * DAY + SWEEP_LAG)

    # then
    assert _fires(stack, user, "re_engagement") == []
    decisions = _decisions(stack, user, "re_engagement")
    assert [decision["outcome"] for decision in decisions] == ["pending"]
    assert f"last active at {returned[:10]}" in decisions[0]["reason"]  # the return's day


def test_re_engagement_after_a_return_fires_7_days_after_it(stack: StackClient):
    """A user who came back on day 5 is fired 7 days after that return, on day 12."""
    # given
    user = _new_id("user")
    _short_visit(stack, user, "inactive")
    _advance(stack, 5 * DAY)
    _page(stack, user, "home")
    _advance(stack, 7 * DAY - HOUR)
    assert _fires(stack, user, "re_engagement") == []

    # when
    _advance(stack, HOUR + SWEEP_LAG)

    # then
    fires = _fires(stack, user, "re_engagement")
    assert [fire["userId"] for fire in fires] == [user]
    assert _outcomes(stack, user, "re_engagement")[-1] == "fired"


# ---- vip_checkout_call ---------------------------------------------------------------


def test_vip_checkout_without_an_order_fires_a_webhook_after_an_hour(stack: StackClient):
    """A vip who starts checkout and does not order gets a webhook fire an hour later."""
    # given
    user = _new_id("user")
    _identify(stack, user, email=f"{user}@example.com", tier="vip")
    _track(stack, "Checkout Started", {"cart_id": "c1", "value": 900}, user_id=user)
    _advance(stack, 59 * MINUTE)
    assert _fires(stack, user, "vip_checkout_call") == []

    # when
    _advance(stack, 2 * MINUTE)

    # then
    fires = _fires(stack, user, "vip_checkout_call")
    assert [(fire["channel"], fire["template"]) for fire in fires] == [("webhook", "vip_call")]
    assert _outcomes(stack, user, "vip_checkout_call") == ["pending", "fired"]


def test_vip_checkout_with_an_order_within_the_hour_exits(stack: StackClient):
    """A vip who orders within the hour of starting checkout gets no call; explain says exited."""
    # given
    user = _new_id("user")
    _identify(stack, user, email=f"{user}@example.com", tier="vip")
    _track(stack, "Checkout Started", {"value": 900}, user_id=user)
    _advance(stack, 20 * MINUTE)

    # when
    _track(stack, "Order Completed", {"total": 900}, user_id=user)
    _advance(stack, HOUR)

    # then
    assert _fires(stack, user, "vip_checkout_call") == []
    assert _outcomes(stack, user, "vip_checkout_call") == ["pending", "exited"]


def test_basic_tier_checkout_is_not_matched(stack: StackClient):
    """A basic-tier user who starts checkout is not_matched, with a reason naming the tier."""
    # given
    user = _new_id("user")
    _identify(stack, user, email=f"{user}@example.com", tier="basic")

    # when
    _track(stack, "Checkout Started", {"value": 30}, user_id=user)
    _advance(stack, HOUR + MINUTE)

    # then
    assert _fires(stack, user, "vip_checkout_call") == []
    decisions = _decisions(stack, user, "vip_checkout_call")
    assert [decision["outcome"] for decision in decisions] == ["not_matched"]
    assert "traits.tier" in decisions[0]["reason"]


# ---- explain and the outbox ----------------------------------------------------------


def test_explain_decisions_carry_trigger_outcome_reason_time_occurrence_and_person(
    stack: StackClient,
):
    """Each decision explain lists names trigger, outcome, reason, time, occurrence and person."""
    # given
    user = _new_id("user")
    _track(stack, "Page Engaged", {"product_id": "sku-9", "active_seconds": 150}, user_id=user)

    # when
    decisions = _decisions(stack, user, "product_interest")

    # then
    assert len(decisions) == 1
    decision = decisions[0]
    assert set(decision) >= {"trigger", "outcome", "reason", "at", "occurrence", "person"}
    assert decision["person"] == f"u:{user}"
    assert decision["occurrence"] == "product_id=sku-9"
    assert decision["reason"]
    assert datetime.fromisoformat(decision["at"]) <= stack.now()


def test_explain_for_an_unknown_user_lists_no_decisions(stack: StackClient):
    """Explain for a user the stack has never seen answers 200 with no decisions and no
    journeys."""
    # given
    user = _new_id("nobody")

    # when
    response = stack.get("/_local/explain/" + user)

    # then
    assert response.status_code == 200, response.text
    assert response.json() == {"userId": user, "decisions": [], "journeys": []}


def test_the_outbox_lists_a_fire_not_yet_delivered(stack: StackClient):
    """A fire waiting for delivery shows in the outbox as undelivered, addressed to the user."""
    # given
    user = _new_id("user")
    _track(stack, "Page Engaged", {"product_id": "sku-9", "active_seconds": 150}, user_id=user)
    (fire,) = _fires(stack, user, "product_interest")

    # when
    response = stack.get("/_local/outbox")

    # then
    assert response.status_code == 200, response.text
    waiting = [
        entry
        for entry in response.json()
        if entry.get("fire", {}).get("fireId") and entry["trigger"] == "product_interest"
    ]
    assert [(e["delivered"], e["to"], e["channel"], e["trigger"]) for e in waiting] == [
        (False, user, "email", "product_interest")
    ]
    assert waiting[0]["fire"] == fire
