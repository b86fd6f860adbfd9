"""Local time behaves like AWS time: one long clock advance runs each due timer, and all it
causes, at its own moment, so what Send decides never depends on how far the clock was
moved in one call.

One evening of shopping (the setup), then 36 hours of clock:
- 19:50 UTC, a cart: due 19:50 the next day, outside quiet hours (21:00-08:00): emailed then;
- 20:59, a cart: the same, a minute before quiet hours;
- 21:30, a cart: due inside quiet hours, deferred, emailed at 08:00 the morning after;
- 19:50, five carts of one person: one email, four capped by the per-trigger daily cap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from standardwebhooks import Webhook

from bench.receiver import Receiver
from tests.arms import shopper_in
from tests.e2e.conftest import WEBHOOK_SECRET, StackClient
from tests.e2e.shop import (
    DAY,
    HOUR,
    MINUTE,
    add_to_cart,
    advance,
    advance_to,
    dated,
    decisions,
    emails_to,
    identify,
    new_id,
    send,
    send_outcomes,
    track,
)

pytestmark = pytest.mark.e2e

SPAN = 36 * HOUR
# A decision is made within a second of when AWS would make it; an email's Date header
# is to the second.
SLACK = timedelta(seconds=2)


@dataclass(frozen=True)
class Evening:
    """Who shopped when, on one evening."""

    start: datetime  # 19:50 UTC, the first carts
    at_1950: str
    at_2059: str
    at_2130: str
    five_carts: str

    @property
    def people(self) -> tuple[str, str, str, str]:
        return (self.at_1950, self.at_2059, self.at_2130, self.five_carts)


# What became of one person: (outcome, when) of each send decision, and each email's Date,
# as offsets from the evening's start.
Story = tuple[tuple[tuple[str, timedelta], ...], tuple[timedelta, ...]]


def _shopper(stack: StackClient, prefix: str) -> str:
    """A shopper the abandoned_cart experiment puts in h24: their carts are due a day on."""
    user = shopper_in(prefix)
    identify(stack, user, email=f"{user}@example.com", timezone="UTC")
    return user


def _next_evening(stack: StackClient) -> datetime:
    """The next 19:50 UTC at least a minute away (the clock only moves forward)."""
    now = stack.now().astimezone(UTC) + timedelta(minutes=1)
    evening = datetime.combine(now.date(), time(19, 50), tzinfo=UTC)
    return evening if evening >= now else evening + timedelta(days=1)


def _shop_one_evening(stack: StackClient) -> Evening:
    start = _next_evening(stack)
    advance_to(stack, start)
    at_1950, five_carts = _shopper(stack, "at1950"), _shopper(stack, "five")
    add_to_cart(stack, at_1950, new_id("cart"), "sku-1", 10.0)
    for number in range(5):
        add_to_cart(stack, five_carts, new_id("cart"), f"sku-{number}", 10.0 + number)
    advance_to(stack, start + timedelta(minutes=69))
    at_2059 = _shopper(stack, "at2059")
    add_to_cart(stack, at_2059, new_id("cart"), "sku-2", 12.0)
    advance_to(stack, start + timedelta(minutes=100))
    at_2130 = _shopper(stack, "at2130")
    add_to_cart(stack, at_2130, new_id("cart"), "sku-3", 14.0)
    return Evening(start, at_1950, at_2059, at_2130, five_carts)


def _story(stack: StackClient, evening: Evening, user: str) -> Story:
    sends = tuple(
        (decision["outcome"], datetime.fromisoformat(decision["at"]) - evening.start)
        for decision in decisions(stack, user, "abandoned_cart")
        if decision["outcome"] not in ("pending", "fired")
    )
    dates = tuple(dated(email) - evening.start for email in emails_to(stack, user))
    return sends, dates


def _live_evening(stack: StackClient, splits: Sequence[float]) -> dict[str, Story]:
    """Shops one evening, advances 36 hours in calls of the given lengths (the last call
    takes what is left), and tells each person's story, by role."""
    stack.reset()
    evening = _shop_one_evening(stack)
    for seconds in splits:
        advance(stack, seconds)
    advance(stack, max(SPAN - sum(splits), 0))
    roles = ("at_1950", "at_2059", "at_2130", "five_carts")
    return {
        role: _story(stack, evening, user) for role, user in zip(roles, evening.people, strict=True)
    }


@pytest.fixture(scope="module")
def in_one_call(delivery_stack: StackClient) -> dict[str, Story]:
    """The evening, then the 36 hours in a single advance."""
    return _live_evening(delivery_stack, [])


def _assert_same(found: dict[str, Story], expected: dict[str, Story]) -> None:
    """The same decisions and emails, each within SLACK of the expected time."""
    assert found.keys() == expected.keys()
    for role, (sends, dates) in found.items():
        expected_sends, expected_dates = expected[role]
        assert sorted(outcome for outcome, _ in sends) == sorted(
            outcome for outcome, _ in expected_sends
        ), role
        for (_, at), (_, expected_at) in zip(sorted(sends), sorted(expected_sends), strict=True):
            assert abs(at - expected_at) <= SLACK, (role, sends, expected_sends)
        assert len(dates) == len(expected_dates), role
        for date, expected_date in zip(sorted(dates), sorted(expected_dates), strict=True):
            assert abs(date - expected_date) <= SLACK, (role, dates, expected_dates)


# ---- one advance of 36 hours ---------------------------------------------------------


def test_a_cart_at_1950_is_emailed_24_hours_later(in_one_call: dict[str, Story]):
    """A UTC cart at 19:50 gives one email dated, and decided sent, 24 hours later."""
    # given / when: the evening and one advance of 36 hours
    sends, dates = in_one_call["at_1950"]

    # then
    ((outcome, at),) = sends
    assert outcome == "sent"
    assert abs(at - timedelta(hours=24)) <= SLACK
    (date,) = dates
    assert abs(date - timedelta(hours=24)) <= SLACK


def test_a_cart_at_2059_is_emailed_24_hours_later(in_one_call: dict[str, Story]):
    """A cart a minute before quiet hours is emailed 24 hours later, not deferred."""
    # given / when
    sends, dates = in_one_call["at_2059"]

    # then
    assert [outcome for outcome, _ in sends] == ["sent"]
    due = timedelta(hours=24, minutes=69)
    assert abs(sends[0][1] - due) <= SLACK
    assert len(dates) == 1
    assert abs(dates[0] - due) <= SLACK


def test_a_cart_at_2130_is_deferred_and_emailed_at_8_the_morning_after(
    in_one_call: dict[str, Story],
):
    """A cart due at 21:30, inside quiet hours, is deferred and emailed at 08:00 exactly."""
    # given / when
    sends, dates = in_one_call["at_2130"]

    # then
    assert [outcome for outcome, _ in sends] == ["deferred", "sent"]
    deferred_at, sent_at = (at for _, at in sends)
    assert abs(deferred_at - timedelta(hours=24, minutes=100)) <= SLACK
    eight_next_morning = timedelta(days=1, hours=12, minutes=10)  # 08:00 from 19:50 a day on
    assert timedelta(0) <= sent_at - eight_next_morning <= SLACK
    (date,) = dates
    assert timedelta(0) <= date - eight_next_morning <= SLACK


def test_five_carts_in_one_day_give_one_email_and_four_capped(in_one_call: dict[str, Story]):
    """Five carts the same evening: one email, the other four fires capped."""
    # given / when
    sends, dates = in_one_call["five_carts"]

    # then
    assert sorted(outcome for outcome, _ in sends) == ["capped"] * 4 + ["sent"]
    assert len(dates) == 1


# ---- however the 36 hours are cut ------------------------------------------------------


def test_36_advances_of_an_hour_decide_as_one_of_36_hours(
    delivery_stack: StackClient, in_one_call: dict[str, Story]
):
    """The same 36 hours in 36 calls of an hour give the same decisions at the same times."""
    # given / when
    found = _live_evening(delivery_stack, [HOUR] * 35)

    # then
    _assert_same(found, in_one_call)


def test_2160_advances_of_a_minute_decide_as_one_of_36_hours(
    delivery_stack: StackClient, in_one_call: dict[str, Story]
):
    """The same 36 hours in 2,160 calls of a minute give the same decisions and emails."""
    # given / when
    found = _live_evening(delivery_stack, [MINUTE] * 2159)

    # then
    _assert_same(found, in_one_call)


@settings(
    max_examples=3,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(cuts=st.lists(st.integers(min_value=1, max_value=SPAN - 1), max_size=12, unique=True))
def test_any_cut_of_the_36_hours_decides_as_one_advance(
    delivery_stack: StackClient, in_one_call: dict[str, Story], cuts: list[int]
):
    """Cutting the 36 hours at random points gives the same decisions and emails."""
    # given
    points = sorted(cuts)
    splits = [later - earlier for earlier, later in zip([0, *points], points, strict=False)]

    # when
    found = _live_evening(delivery_stack, splits)

    # then
    _assert_same(found, in_one_call)


# ---- webhooks and the sweep inside one long advance --------------------------------------


def test_webhook_retries_come_5s_and_5min_after_the_first_within_one_advance(
    delivery_stack: StackClient, crm_receiver: Receiver
):
    """A receiver failing twice gets the webhook 5 s and 5 min after the first attempt, in
    one advance of a day; each attempt has the same webhook-id and verifies on real time."""
    # given
    stack, user = delivery_stack, new_id("vip")
    crm_receiver.reset(script=[500, 500])
    identify(stack, user, email=f"{user}@example.com", name="Ada Vip", tier="vip")
    track(stack, user, "Checkout Started", {"cart_id": new_id("cart"), "total": 250.0})

    # when
    advance(stack, DAY)

    # then
    received = crm_receiver.received()
    assert [request.status for request in received] == [500, 500, 204]
    assert len({request.headers["webhook-id"] for request in received}) == 1
    verifier = Webhook(WEBHOOK_SECRET)
    assert all(verifier.verify(r.body, r.headers)["userId"] == user for r in received)
    attempts = [
        datetime.fromisoformat(decision["at"])
        for decision in decisions(stack, user, "vip_checkout_call")
        if decision["outcome"] in ("retry", "sent")
    ]
    assert send_outcomes(stack, user, "vip_checkout_call") == ["retry", "retry", "sent"]
    assert abs((attempts[1] - attempts[0]) - timedelta(seconds=5)) <= SLACK
    assert abs((attempts[2] - attempts[1]) - timedelta(minutes=5)) <= SLACK


def test_the_sweep_in_a_long_advance_decides_at_the_hour_aws_would(delivery_stack: StackClient):
    """Over one advance of 9 days, re_engagement fires in the sweep that reads the hour the
    person was last seen (that hour plus 7 days and 1 to 2 hours), and the email goes out
    then, not at the end of the advance."""
    # given
    stack, user = delivery_stack, new_id("quiet")
    identify(stack, user, email=f"{user}@example.com", crm_status="inactive", timezone="UTC")
    send(stack, "page", {"userId": user, "name": "pricing"})  # a one-page last session
    last_seen = stack.now()

    # when
    advance(stack, 9 * DAY)

    # then
    (fired,) = [d for d in decisions(stack, user, "re_engagement") if d["outcome"] == "fired"]
    fired_at = datetime.fromisoformat(fired["at"])
    seen_hour = last_seen.replace(minute=0, second=0, microsecond=0)
    assert (
        seen_hour + timedelta(days=7, hours=1) <= fired_at < seen_hour + timedelta(days=7, hours=2)
    )
    first_send = next(
        d
        for d in decisions(stack, user, "re_engagement")
        if d["outcome"] not in ("pending", "fired")
    )
    assert first_send["outcome"] in ("sent", "deferred")  # deferred when the hour is at night
    assert datetime.fromisoformat(first_send["at"]) - fired_at <= SLACK
