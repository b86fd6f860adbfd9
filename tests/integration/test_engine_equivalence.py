"""One engine: for random event sequences the live path (Ingest, the stream, Evaluate and its
schedules on moto), the backtest and a plain reading of abandoned_cart agree on every fire."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import boto3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from local.template import Template
from tests.arms import arm_of, shopper_in
from tests.integration._equivalence import Fires, Sent, backtested, live, per_day
from tests.integration._harness import NOW

TRIGGER = "abandoned_cart"
# The reference knows the experiment's timing, read off triggers/abandoned_cart.yaml: each arm
# waits its variant's unless.within for an order; the holdout keeps the trigger's 24h, fires
# just the same (the backtest counts it) and is never sent (so the live send queue lacks it).
WAIT = {
    "h24": timedelta(hours=24),
    "h48": timedelta(hours=48),
    "holdout": timedelta(hours=24),
}
SENT_ARMS = {"h24", "h48"}
TAIL = timedelta(hours=48)  # how long the clock runs on after the last event: the longest wait
CARTS = ["c1", "c2"]
# One shopper per arm (the arm is the product's stable hash of the person), so a history can
# mix a 24h, a 48h and a held-out shopper.
SHOPPERS = [shopper_in("user", arm) for arm in WAIT]


# ---- random histories ---------------------------------------------------------------


def _track(user: str, name: str, message_id: str, at: datetime, cart: str | None) -> dict[str, Any]:
    properties: dict[str, Any] = {} if cart is None else {"cart_id": cart}
    if name == "Product Added":
        properties.update(product_id=f"sku-{message_id}", name=f"Product {message_id}", price=10.0)
    return {
        "type": "track",
        "event": name,
        "userId": user,
        "messageId": message_id,
        "timestamp": at.isoformat(),
        "properties": properties,
    }


@st.composite
def histories(draw: st.DrawFn) -> list[Sent]:
    """1 to 3 users with an email, then up to 12 adds, orders and resends in time order."""
    users = draw(st.lists(st.sampled_from(SHOPPERS), min_size=1, max_size=3, unique=True))
    sent = [
        Sent(
            NOW,
            {
                "type": "identify",
                "userId": user,
                "messageId": f"identify-{user}",
                "timestamp": NOW.isoformat(),
                "traits": {"email": f"{user}@example.com"},
            },
        )
        for user in users
    ]
    clock = NOW
    # Gaps in minutes: often short (events that meet inside one 24h window), up to 30h.
    gaps = st.one_of(st.integers(0, 3 * 60), st.integers(0, 30 * 60))
    steps = draw(st.lists(gaps, min_size=1, max_size=12))
    for number, gap in enumerate(steps):
        clock += timedelta(minutes=gap)
        kind = draw(st.sampled_from(["add", "add", "order", "resend"]))
        if kind == "resend" and number > 0:
            earlier = draw(st.sampled_from(sent[len(users) :]))
            sent.append(Sent(clock, earlier.message, resend=True))
            continue
        user = draw(st.sampled_from(users))
        cart = draw(st.sampled_from([*CARTS, None]))
        name = "Order Completed" if kind == "order" else "Product Added"
        sent.append(Sent(clock, _track(user, name, f"m{number}", clock, cart)))
    return sent


# ---- the rule as a person states it ---------------------------------------------------


def reference(sent: list[Sent]) -> Fires:
    """abandoned_cart over the whole history, without the engine; the holdout's fires too.

    Each Product Added starts a timer due its user's arm's WAIT after it, unless its
    occurrence (the cart, or the add itself when it has no cart_id) already has an undecided
    timer: the first stands.
    A timer is decided when an Order Completed for its cart (or for no cart; any order, when
    the add had no cart) follows it, or at its due time: it then fires unless such an order
    was made at or after the add's timestamp and before the due time (one at the due time
    comes after the fire), and unless the occurrence already fired once (re-entry every_time).
    """
    history = [item.message for item in sent if not item.resend]  # a resend is the same message
    orders = [m for m in history if m.get("event") == "Order Completed"]

    def cancels(order: dict[str, Any], add: dict[str, Any]) -> bool:
        ours, theirs = order["properties"].get("cart_id"), add["properties"].get("cart_id")
        return order["userId"] == add["userId"] and (ours is None or theirs in (None, ours))

    pending: dict[tuple[str, str], tuple[datetime, dict[str, Any]]] = {}
    fired: Fires = []

    def settle(until: datetime) -> None:
        for key, (due, add) in sorted(pending.items(), key=lambda item: item[1][0]):
            if due > until:
                continue
            del pending[key]
            start = datetime.fromisoformat(add["timestamp"])
            made = [datetime.fromisoformat(o["timestamp"]) for o in orders if cancels(o, add)]
            already = any((user, occurrence) == key for user, occurrence, _ in fired)
            if not already and not any(start <= moment < due for moment in made):
                fired.append((*key, due))

    for message in history:
        if message["type"] != "track":
            continue
        moment = datetime.fromisoformat(message["timestamp"])
        settle(moment)
        if message["event"] == "Order Completed":
            for key, (_, add) in list(pending.items()):
                if cancels(message, add):
                    del pending[key]
        else:
            cart = message["properties"].get("cart_id")
            occurrence = f"cart_id={cart}" if cart else f"event={message['messageId']}"
            wait = WAIT[arm_of(message["userId"], TRIGGER)]
            pending.setdefault((message["userId"], occurrence), (moment + wait, message))
    settle(sent[-1].at + TAIL)
    return sorted(fired)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(sent=histories())
def test_live_path_backtest_and_reference_agree_on_abandoned_cart_fires(
    template: Template, boto_session: boto3.Session, sent: list[Sent]
):
    """The stream-and-scheduler path sends exactly what the rule says to the arms that are
    sent, and the backtest agrees on every fire, the holdout's included."""
    # given
    expected = reference(sent)
    # when
    fired = live(template, boto_session, sent, TRIGGER, until=sent[-1].at + TAIL)
    replayed = backtested(sent, TRIGGER)
    # then
    assert fired == [fire for fire in expected if arm_of(fire[0], TRIGGER) in SENT_ARMS]
    last = max(datetime.fromisoformat(item.message["timestamp"]) for item in sent)
    assert replayed == per_day(expected, until=last)
