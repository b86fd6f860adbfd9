"""The simulator's true purchase chance: a Monte Carlo estimate from the hidden state that
agrees with cases computed by hand from the session rules."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from bench.shop_truth import LeaveRule, Session, Shopper

ENDED = datetime(2026, 2, 1, 12, tzinfo=UTC)
HORIZON = timedelta(days=14)
DRAWS = 20_000


def _shopper(taste: float, leave: float, rate: float = 1000.0) -> Shopper:
    """One finished session ending at ``ENDED``; a rate of 1000 sessions a day brings a
    stayer back about a minute after the hour's delay."""
    last = Session(start=ENDED - timedelta(minutes=10), end=ENDED, leave=leave, left=False)
    return Shopper(user_id="hand", rate=rate, taste=taste, sessions=(last,))


def _leave_after(sessions: int) -> LeaveRule:
    """A leave rule: stay after every session before the ``sessions``-th, leave after it."""
    return lambda away_days, count, pages, abandoned: 0.0 if count < sessions else 1.0


def _ordering_session_chance(taste: float) -> float:
    """By hand from ``draw_session``'s rules: 1 + min(12, floor(X)) pages with X
    exponential of mean 3, each added to the cart with chance taste / 2; a cart checks out
    with chance 0.3 + taste (at most 1), and 3 checkouts in 4 are ordered."""
    pages = {1 + j: math.exp(-j / 3) - math.exp(-(j + 1) / 3) for j in range(12)}
    pages[13] = math.exp(-4)
    carted = sum(share * (1 - (1 - taste / 2) ** n) for n, share in pages.items())
    return carted * min(1.0, 0.3 + taste) * 0.75


def _standard_error(chance: float, draws: int) -> float:
    return math.sqrt(chance * (1 - chance) / draws)


def test_a_shopper_without_taste_never_orders() -> None:
    """Taste 0 puts nothing in a cart: the chance is 0."""
    # given
    shopper = _shopper(taste=0.0, leave=0.0)

    # when
    chance = shopper.order_probability(ENDED + timedelta(hours=3), HORIZON)

    # then
    assert chance == 0.0


def test_a_shopper_certain_to_have_left_never_orders() -> None:
    """A last session with leave probability 1: they are gone, the chance is 0."""
    # given
    shopper = _shopper(taste=0.6, leave=1.0)

    # when
    chance = shopper.order_probability(ENDED + timedelta(hours=3), HORIZON)

    # then
    assert chance == 0.0


@pytest.mark.parametrize("sessions", [1, 2, 3])
def test_a_stayer_with_k_sessions_left_orders_at_the_chance_of_one_ordering_session(
    sessions: int,
) -> None:
    """A stayer who comes back within minutes and leaves after k more sessions orders in
    14 days with the chance that one of k sessions orders: 1 - (1 - p)^k."""
    # given
    taste = 0.3
    shopper = _shopper(taste=taste, leave=0.0)
    expected = 1 - (1 - _ordering_session_chance(taste)) ** sessions

    # when
    chance = shopper.order_probability(
        ENDED + timedelta(hours=3),
        HORIZON,
        draws=DRAWS,
        leave_rule=_leave_after(1 + sessions),  # counts the session before the cut-off
    )

    # then
    assert chance is not None
    assert abs(chance - expected) < 4 * _standard_error(expected, DRAWS)


def test_the_chance_they_stayed_scales_the_estimate() -> None:
    """Half an hour after a session with leave probability 0.5 (before any comeback could
    start) they stayed with chance 0.5: the estimate is half one session's chance."""
    # given
    taste = 0.5
    shopper = _shopper(taste=taste, leave=0.5)
    one_session = _ordering_session_chance(taste)

    # when
    chance = shopper.order_probability(
        ENDED + timedelta(minutes=30), HORIZON, draws=DRAWS, leave_rule=_leave_after(2)
    )

    # then
    assert chance is not None
    draws_made = DRAWS * 0.5**2  # fewer futures for a likely leaver, the same error
    error = 0.5 * _standard_error(one_session, round(draws_made))
    assert abs(chance - 0.5 * one_session) < 4 * error


def test_the_estimate_is_the_same_every_run() -> None:
    """Seeded by shopper and cut-off: two calls give the same number."""
    # given
    shopper = _shopper(taste=0.3, leave=0.2, rate=0.5)
    cutoff = ENDED + timedelta(days=2)

    # when
    first = shopper.order_probability(cutoff, HORIZON)
    second = shopper.order_probability(cutoff, HORIZON)

    # then
    assert first is not None
    assert 0.0 < first < 1.0
    assert first == second


def test_no_estimate_before_the_first_session_or_during_one() -> None:
    """Nothing seen yet, or a session that goes on past the cut-off: no truth (None)."""
    # given
    shopper = _shopper(taste=0.3, leave=0.2)

    # when
    before = shopper.order_probability(ENDED - timedelta(hours=1), HORIZON)
    during = shopper.order_probability(ENDED - timedelta(minutes=5), HORIZON)

    # then
    assert before is None
    assert during is None
