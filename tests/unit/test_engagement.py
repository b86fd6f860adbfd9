"""A person's engagement by hour of the week, folded into their profile from the stream:
session starts, clicks and opens a person made count, on their own clock; opens that look
automatic (a proxy fetching the pixel as the message arrives) do not."""

from __future__ import annotations

from datetime import timedelta
from functools import reduce

from nudge.domain.engagement import MAX_TOTAL, counted, hour_of_week
from nudge.domain.intake import Event
from nudge.domain.person import PersonId
from nudge.domain.profile import Profile, fold
from nudge.domain.timefmt import iso

from tests.unit.builders import NOW, event

USER = PersonId.user("user-1")
# NOW is Saturday 28 November 2026, 12:00 UTC: hour 5 * 24 + 12 of the week in UTC.
SATURDAY_NOON_UTC = 132
SATURDAY_1PM_PARIS = 133  # UTC+1 in November
SATURDAY_9PM_TOKYO = 141  # UTC+9


def _folded(*events: Event) -> Profile:
    return reduce(fold, events, Profile(person=USER))


def _open(minutes: float, sent_minutes_before: float | None, **context: str) -> Event:
    properties = {"fireId": "f1"}
    if sent_minutes_before is not None:
        sent = NOW + timedelta(minutes=minutes - sent_minutes_before)
        properties["sentAt"] = iso(sent)
    return event(minutes=minutes, name="Email Opened", properties=properties, context=dict(context))


def test_a_sessions_start_counts_at_its_hour_of_the_week() -> None:
    # given / when
    profile = _folded(event("page", name="Home"))
    # then
    assert profile.engaged_hours == {SATURDAY_NOON_UTC: 1}


def test_more_events_in_the_same_session_do_not_count_again() -> None:
    # given / when
    profile = _folded(event("page", name="Home"), event("page", minutes=5, name="Cart"))
    # then
    assert profile.engaged_hours == {SATURDAY_NOON_UTC: 1}


def test_the_hour_is_on_the_persons_clock_from_their_timezone_trait() -> None:
    # given
    paris = event("identify", traits={"timezone": "Europe/Paris"})
    # when
    profile = _folded(paris)
    # then
    assert profile.engaged_hours == {SATURDAY_1PM_PARIS: 1}


def test_without_a_trait_the_events_own_timezone_is_used() -> None:
    # given / when
    profile = _folded(event("page", name="Home", context={"timezone": "Asia/Tokyo"}))
    # then
    assert profile.engaged_hours == {SATURDAY_9PM_TOKYO: 1}


def test_a_timezone_that_is_no_zone_counts_in_utc() -> None:
    # given / when
    profile = _folded(event("page", name="Home", context={"timezone": "Nowhere/City"}))
    # then
    assert profile.engaged_hours == {SATURDAY_NOON_UTC: 1}


def test_a_click_counts() -> None:
    # given
    visit = event("page", name="Home")
    # when
    profile = _folded(visit, event(minutes=5, name="Email Link Clicked"))
    # then
    assert profile.engaged_hours == {SATURDAY_NOON_UTC: 2}


def test_an_open_minutes_after_sending_counts() -> None:
    # given
    visit = event("page", name="Home")
    # when
    profile = _folded(visit, _open(minutes=10, sent_minutes_before=10))
    # then
    assert profile.engaged_hours == {SATURDAY_NOON_UTC: 2}


def test_an_open_seconds_after_sending_is_a_proxys_prefetch_and_does_not_count() -> None:
    # given
    visit = event("page", name="Home")
    # when
    profile = _folded(visit, _open(minutes=10, sent_minutes_before=0.5))
    # then
    assert profile.engaged_hours == {SATURDAY_NOON_UTC: 1}


def test_an_open_through_a_known_image_proxy_does_not_count() -> None:
    # given
    visit = event("page", name="Home")
    proxied = _open(
        minutes=10,
        sent_minutes_before=60,
        userAgent="Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0"
        " (via ggpht.com GoogleImageProxy)",
    )
    # when
    profile = _folded(visit, proxied)
    # then
    assert profile.engaged_hours == {SATURDAY_NOON_UTC: 1}


def test_an_open_from_a_pixel_without_a_send_time_counts() -> None:
    """Pixels signed before the send time was added carry none: the open is the reader's."""
    # given
    visit = event("page", name="Home")
    # when
    profile = _folded(visit, _open(minutes=10, sent_minutes_before=None))
    # then
    assert profile.engaged_hours == {SATURDAY_NOON_UTC: 2}


def test_counts_are_halved_past_the_total_so_recent_weeks_weigh_more() -> None:
    # given
    full = {10: MAX_TOTAL - 1, 11: 1}
    # when
    halved = counted(full, 12)
    # then
    assert halved == {10: (MAX_TOTAL - 1) // 2}


def test_hours_of_the_week_run_from_monday_midnight() -> None:
    # given
    monday = NOW - timedelta(days=5, hours=12)  # Monday 23 November 2026, 00:00 UTC
    # when / then
    assert hour_of_week(monday, None) == 0
    assert hour_of_week(monday - timedelta(minutes=1), None) == 167
