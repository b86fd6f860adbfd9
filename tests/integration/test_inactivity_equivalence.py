"""One engine, for inactivity too: for random histories with long quiet spells, the live path
(Ingest, the stream, Evaluate, its schedules and the hourly InactivitySweep on moto), the
backtest and a plain reading of re_engagement agree on every fire."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from local.template import Template
from tests.integration._equivalence import Fires, Sent, backtested, live, per_day
from tests.integration._harness import NOW

TRIGGER = "re_engagement"
# re_engagement: inactive 7d; last session under 3 pages; crm_status inactive; once_per 30d.
QUIET = timedelta(days=7)
MAX_PAGES = 3
REENTRY = timedelta(days=30)
SESSION_GAP = timedelta(minutes=30)  # a session ends after 30 minutes without events
SWEEP_EVERY = timedelta(hours=1)  # InactivitySweep: rate(1 hour)
FIRST_SWEEP = NOW + SWEEP_EVERY  # the schedule's first run after the stack is up
# How long the clock runs on after the last event: past the sweep that decides its spell.
TAIL = QUIET + 2 * SWEEP_EVERY
RETRY_WITHIN = timedelta(days=1)  # a client resends a message within a day of sending it
CRM_STATUSES = ["inactive", "active"]
# Every hour is swept, so a history stops at 40 days: long enough for a second fire once
# the 30 days of re-entry are over, short enough to keep an example to a few seconds.
HORIZON = timedelta(days=40)
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
# Between the page views of a visit: within the session, at its very end, or just after.
VIEW_GAPS = [MINUTE, MINUTE, SESSION_GAP, SESSION_GAP + MINUTE]


# ---- random histories ---------------------------------------------------------------

# How the clock moves on to the next message.
Step = Callable[[datetime], datetime]


def hour_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _after(gap: timedelta) -> Step:
    return lambda clock: clock + gap


def _around_sweep(minutes: int) -> Step:
    """To the sweep that decides a spell starting now, or ``minutes`` either side of it."""
    return lambda clock: hour_of(clock) + QUIET + SWEEP_EVERY + minutes * MINUTE


# Within a visit, at its very end, or just past it; hours; a quiet spell of 6 to
# 12 days, most of them longer than 7; or a return around the week mark: before the 7 days
# are up, after them but before the sweep, at the very moment of the sweep, or after it.
STEPS = st.one_of(
    st.one_of(st.just(30), st.integers(0, 40)).map(lambda n: _after(n * MINUTE)),
    st.integers(0, 40).map(lambda n: _after(n * MINUTE)),
    st.integers(1, 36).map(lambda n: _after(n * HOUR)),
    st.integers(6 * 24, 12 * 24).map(lambda n: _after(n * HOUR)),
    st.one_of(st.just(0), st.integers(-120, 60)).map(_around_sweep),
)


def _at(message: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(message["timestamp"])


def _message(kind: str, user: str, message_id: str, at: datetime) -> dict[str, Any]:
    message: dict[str, Any] = {"userId": user, "messageId": message_id, "timestamp": at.isoformat()}
    if kind == "page":
        return {**message, "type": "page", "name": "Home", "properties": {}}
    if kind == "search":
        return {**message, "type": "track", "event": "Products Searched", "properties": {}}
    # Product Added arms an abandoned_cart timer: its schedule runs in between the sweeps.
    properties = {"product_id": f"sku-{message_id}", "name": "Teapot", "price": 10.0}
    return {**message, "type": "track", "event": "Product Added", "properties": properties}


def _identify(user: str, message_id: str, at: datetime, **traits: str) -> dict[str, Any]:
    return {
        "type": "identify",
        "userId": user,
        "messageId": message_id,
        "timestamp": at.isoformat(),
        "traits": traits,
    }


@st.composite
def histories(draw: st.DrawFn) -> list[Sent]:
    """1 to 3 users identified at NOW with an email and a CRM status, then up to 12 visits
    (page views), tracks, new CRM statuses and resends in time order, with long quiet spells."""
    users = [f"user{n}" for n in range(draw(st.integers(min_value=1, max_value=3)))]
    sent = [
        Sent(
            NOW,
            _identify(
                user,
                f"identify-{user}",
                NOW,
                email=f"{user}@example.com",
                crm_status=draw(st.sampled_from(CRM_STATUSES)),
            ),
        )
        for user in users
    ]
    clock = NOW
    for number, step in enumerate(draw(st.lists(STEPS, min_size=1, max_size=12))):
        clock = step(clock)
        if clock > NOW + HORIZON:
            break
        kind = draw(st.sampled_from(["visit", "visit", "search", "add", "crm", "resend"]))
        recent = [item for item in sent if clock - _at(item.message) <= RETRY_WITHIN]
        if kind == "resend" and recent:
            sent.append(Sent(clock, draw(st.sampled_from(recent)).message, resend=True))
            continue
        user = draw(st.sampled_from(users))
        if kind == "crm":
            status = draw(st.sampled_from(CRM_STATUSES))
            sent.append(Sent(clock, _identify(user, f"m{number}", clock, crm_status=status)))
        elif kind == "visit":  # 1 to 4 page views, the next one within the session or not
            for page in range(draw(st.integers(1, 4))):
                if page:
                    clock += draw(st.sampled_from(VIEW_GAPS))
                sent.append(Sent(clock, _message("page", user, f"m{number}-{page}", clock)))
        else:
            sent.append(Sent(clock, _message(kind, user, f"m{number}", clock)))
    return sent


# ---- the rule as a person states it ---------------------------------------------------


def reference(sent: list[Sent], until: datetime) -> Fires:
    """re_engagement over the whole history, without the engine.

    A quiet spell starts at a user's last activity L (any message of theirs). The hourly
    sweep at s, on the hour, reads those last seen in the hour of s - 7d - 1h, so the spell
    is decided at s = hour_of(L) + 7d + 1h, if s is by ``until`` and the user did nothing in
    (L, s). Activity at s itself comes after the sweep at s, as a schedule due at an event's
    time comes before it on the live path's clock and in the backtest. It fires when the
    user's latest crm_status is inactive, their last session (messages chained by gaps of at
    most 30 minutes, ending at L) had fewer than 3 page views, and their last fire, if any,
    is more than 30 days before s (the ledger's ``fired_at < s - 30d``). The occurrence is
    ``inactive@<L + 7d>``.
    """
    history = [item.message for item in sent if not item.resend]  # a resend is the same message
    fired: Fires = []
    for user in sorted({message["userId"] for message in history}):
        mine = [message for message in history if message["userId"] == user]
        moments = [_at(message) for message in mine]
        last_fire: datetime | None = None
        for index, quiet_from in enumerate(moments):
            sweep = hour_of(quiet_from) + QUIET + SWEEP_EVERY
            following = moments[index + 1] if index + 1 < len(moments) else None
            if sweep > until or (following is not None and following < sweep):
                continue  # not decided yet, or back before the sweep (or at the same moment)
            if _crm_status(mine[: index + 1]) != "inactive":
                continue
            if _last_session_pages(mine[: index + 1]) >= MAX_PAGES:
                continue
            if last_fire is not None and last_fire >= sweep - REENTRY:
                continue
            fired.append((user, f"inactive@{(quiet_from + QUIET).isoformat()}", sweep))
            last_fire = sweep
    return sorted(fired)


def _crm_status(messages: list[dict[str, Any]]) -> str | None:
    statuses = [m["traits"]["crm_status"] for m in messages if "crm_status" in m.get("traits", {})]
    return statuses[-1] if statuses else None


def _last_session_pages(messages: list[dict[str, Any]]) -> int:
    """Page views in the session that ends with the last of ``messages``."""
    start = len(messages) - 1
    while start > 0 and _at(messages[start]) - _at(messages[start - 1]) <= SESSION_GAP:
        start -= 1
    return sum(message["type"] in ("page", "screen") for message in messages[start:])


# ---- the property ---------------------------------------------------------------------


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(sent=histories())
def test_live_path_backtest_and_reference_agree_on_re_engagement_fires(
    template: Template, boto_session: boto3.Session, sent: list[Sent]
):
    """The hourly sweep fires re_engagement exactly as the rule says, and the backtest agrees."""
    # given
    until = sent[-1].at + TAIL
    expected = reference(sent, until)
    # when
    fired = live(template, boto_session, sent, TRIGGER, until, first_sweep=FIRST_SWEEP)
    replayed = backtested(sent, TRIGGER)
    # then
    assert fired == expected
    last = max(_at(item.message) for item in sent)
    assert replayed == per_day(expected, until=last)
