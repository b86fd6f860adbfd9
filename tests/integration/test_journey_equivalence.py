"""One engine for journeys too: for random histories of carts, checkouts, orders and resends,
the live path (Ingest, the stream, Evaluate and its schedules on moto) sends exactly the
cart_recovery_series steps the backtest says, to whom, for what and when."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from local.template import Template
from tests.integration._equivalence import Sent, backtest_fires, live
from tests.integration._harness import NOW
from tests.integration._journeys import SERIES, journey_folder

# The series waits an hour, then up to a day: past that the last step has been decided.
TAIL = timedelta(hours=1, days=1, minutes=1)
CARTS = ["c1", "c2"]
# Prices on either side of the branch's 100 (a cart of one 60 is under it, of two over).
PRICES = [10.0, 60.0, 150.0]
# ann and bob have an email; cy has none (the audience leaves her out at the first wait).
EMAILS = {"ann": "ann@example.com", "bob": "bob@example.com", "cy": None}


@pytest.fixture(scope="module")
def series_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return journey_folder(tmp_path_factory.mktemp("journey-equivalence") / "triggers")


# ---- random histories ---------------------------------------------------------------


def _identify(user: str) -> Sent:
    email = EMAILS[user]
    return Sent(
        NOW,
        {
            "type": "identify",
            "userId": user,
            "messageId": f"identify-{user}",
            "timestamp": NOW.isoformat(),
            "traits": {"email": email} if email else {"plan": "free"},
        },
    )


def _track(user: str, name: str, number: int, at: datetime, cart: str | None, price: float) -> Sent:
    properties: dict[str, Any] = {} if cart is None else {"cart_id": cart}
    if name == "Product Added":
        properties.update(product_id=f"sku-{number}", name=f"Product {number}", price=price)
    message = {
        "type": "track",
        "event": name,
        "userId": user,
        "messageId": f"m{number}",
        "timestamp": at.isoformat(),
        "properties": properties,
    }
    return Sent(at, message)


KINDS = {"add": "Product Added", "checkout": "Checkout Started", "order": "Order Completed"}


@st.composite
def histories(draw: st.DrawFn) -> list[Sent]:
    """1 to 3 users, then up to 12 adds, checkouts, orders and resends in time order."""
    users = draw(st.lists(st.sampled_from(list(EMAILS)), min_size=1, max_size=3, unique=True))
    sent = [_identify(user) for user in users]
    clock = NOW
    # Gaps in minutes: often inside one step's wait (an hour, a day), up to 30h.
    gaps = st.one_of(st.integers(0, 90), st.integers(0, 30 * 60))
    for number, gap in enumerate(draw(st.lists(gaps, min_size=1, max_size=12))):
        clock += timedelta(minutes=gap)
        kind = draw(st.sampled_from(["add", "add", "add", "checkout", "order", "resend"]))
        if kind == "resend" and len(sent) > len(users):
            earlier = draw(st.sampled_from(sent[len(users) :]))
            sent.append(Sent(clock, earlier.message, resend=True))
            continue
        user = draw(st.sampled_from(users))
        cart = draw(st.sampled_from([*CARTS, None] if kind == "order" else CARTS))
        price = draw(st.sampled_from(PRICES))
        name = KINDS.get(kind, "Product Added")  # a resend with nothing to resend: an add
        sent.append(_track(user, name, number, clock, cart, price))
    return sent


# ann: one cart each way of the branch; bob: one cart ended by a checkout in the day's wait,
# one by an order (for no cart in particular) in the first hour; a resend of ann's first add.
BOTH_BRANCHES = [
    _identify("ann"),
    _identify("bob"),
    _track("ann", "Product Added", 0, NOW, "c1", 150.0),
    _track("ann", "Product Added", 1, NOW + timedelta(minutes=5), "c2", 10.0),
    _track("bob", "Product Added", 2, NOW + timedelta(minutes=10), "c1", 60.0),
    _track("bob", "Checkout Started", 3, NOW + timedelta(hours=3), "c1", 0.0),
    _track("bob", "Product Added", 4, NOW + timedelta(hours=4), "c2", 10.0),
    _track("bob", "Order Completed", 5, NOW + timedelta(hours=4, minutes=30), None, 0.0),
]
BOTH_BRANCHES.append(Sent(NOW + timedelta(hours=5), BOTH_BRANCHES[2].message, resend=True))


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(sent=histories())
@example(sent=BOTH_BRANCHES)
def test_live_path_and_backtest_agree_on_cart_recovery_series_fires(
    template: Template, boto_session: boto3.Session, series_folder: Path, sent: list[Sent]
):
    """Each step's send on the live path is the backtest's: same user, occurrence and time."""
    # given
    until = sent[-1].at + TAIL
    # when
    fired = live(template, boto_session, sent, SERIES, until, triggers=series_folder)
    replayed = backtest_fires(sent, SERIES, series_folder, until)
    # then
    assert fired == replayed


def test_the_hand_made_history_takes_both_branches_and_both_exits(
    template: Template, boto_session: boto3.Session, series_folder: Path
):
    """The example above reaches what it was made for, on both paths: each branch once,
    and bob's carts ended by his checkout and his order."""
    # given
    until = BOTH_BRANCHES[-1].at + TAIL
    # when
    fired = live(template, boto_session, BOTH_BRANCHES, SERIES, until, triggers=series_folder)
    replayed = backtest_fires(BOTH_BRANCHES, SERIES, series_folder, until)
    # then
    assert [(user, occurrence) for user, occurrence, _ in fired] == [
        ("ann", "cart_id=c1/1"),
        ("ann", "cart_id=c1/3.then.0"),
        ("ann", "cart_id=c2/1"),
        ("ann", "cart_id=c2/3.else.0"),
        ("bob", "cart_id=c1/1"),
    ]
    assert replayed == fired
