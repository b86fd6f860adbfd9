"""`send.at: best`: the hour within the window when the person most often engages, smoothed
towards the audience's pattern (the m-estimate), else the fallback time; and the tally
Evaluate keeps of the audience's engagement."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from nudge.domain.engagement import best_hour, hour_of_week
from nudge.service.evaluate import AUDIENCE_FLUSH_EVERY, AudienceTally

from tests.fakes import InMemoryAudience

PARIS = ZoneInfo("Europe/Paris")
# Monday 30 November 2026, 08:00 in Paris (07:00 UTC).
NOW = datetime(2026, 11, 30, 8, 0, tzinfo=PARIS)
DAY = timedelta(hours=24)


def _slot(day: int, hour: int) -> int:
    return day * 24 + hour


MONDAY_19 = _slot(0, 19)
MONDAY_03 = _slot(0, 3)
MONDAY_21 = _slot(0, 21)


def test_without_engagement_the_message_waits_for_the_fallback_time() -> None:
    # given / when
    best = best_hour(NOW, "Europe/Paris", "UTC", {}, {}, DAY, "10:00")
    # then
    assert best.at == datetime(2026, 11, 30, 10, 0, tzinfo=PARIS)
    assert best.reason == "no engagement on record: fallback 10:00 in Europe/Paris"


def test_a_fallback_past_the_window_is_the_windows_end() -> None:
    # given / when
    best = best_hour(NOW, "Europe/Paris", "UTC", {}, {}, timedelta(hours=1), "10:00")
    # then
    assert best.at == NOW + timedelta(hours=1)


def test_a_person_who_engages_at_19_is_sent_at_19_on_their_clock() -> None:
    # given
    hours = {MONDAY_19: 30, MONDAY_03: 2}
    # when
    best = best_hour(NOW, "Europe/Paris", "UTC", hours, {}, DAY, "10:00")
    # then
    assert best.at == datetime(2026, 11, 30, 19, 0, tzinfo=PARIS)
    assert best.reason.startswith("best hour Monday 19:00 in Europe/Paris: 30 of their 32")


def test_little_history_is_smoothed_towards_the_audience() -> None:
    """One early-morning visit weighs less than a whole audience that reads at 21:00."""
    # given
    hours = {MONDAY_03: 1}
    audience = {MONDAY_21: 900, MONDAY_03: 10}
    # when
    best = best_hour(NOW, "Europe/Paris", "UTC", hours, audience, DAY, "10:00")
    # then
    assert best.at == datetime(2026, 11, 30, 21, 0, tzinfo=PARIS)


def test_much_history_outweighs_the_audience() -> None:
    # given
    hours = {_slot(1, 3): 60}  # Tuesday 03:00, sixty times
    audience = {MONDAY_21: 900}
    # when
    best = best_hour(NOW, "Europe/Paris", "UTC", hours, audience, DAY, "10:00")
    # then
    assert best.at == datetime(2026, 12, 1, 3, 0, tzinfo=PARIS)


def test_the_best_hour_being_the_current_one_means_now() -> None:
    # given
    now = NOW + timedelta(minutes=20)
    hours = {hour_of_week(now, "Europe/Paris"): 5}
    # when
    best = best_hour(now, "Europe/Paris", "UTC", hours, {}, DAY, "10:00")
    # then
    assert best.at == now


def test_without_a_zone_the_hours_are_utc() -> None:
    """Counted in UTC when the person had no zone, read back in UTC: 19:00 UTC is 20:00 Paris."""
    # given
    hours = {MONDAY_19: 10}
    # when
    best = best_hour(NOW, None, "Europe/Paris", hours, {}, DAY, "10:00")
    # then
    assert best.at == datetime(2026, 11, 30, 19, 0, tzinfo=UTC)


def test_the_tally_adds_a_processs_first_engagements_at_once() -> None:
    # given
    audience = InMemoryAudience()
    tally = AudienceTally(audience)
    # when
    tally.note({}, {MONDAY_19: 1})
    tally.flush_if_due(NOW)
    # then
    assert audience.adds == [{MONDAY_19: 1}]


def test_the_tally_then_adds_at_most_every_ten_minutes() -> None:
    # given
    audience = InMemoryAudience()
    tally = AudienceTally(audience)
    tally.note({}, {MONDAY_19: 1})
    tally.flush_if_due(NOW)
    # when
    tally.note({MONDAY_19: 1}, {MONDAY_19: 3})
    tally.flush_if_due(NOW + timedelta(minutes=5))
    held = list(audience.adds)
    tally.flush_if_due(NOW + AUDIENCE_FLUSH_EVERY)
    # then
    assert held == [{MONDAY_19: 1}]
    assert audience.adds == [{MONDAY_19: 1}, {MONDAY_19: 2}]


def test_the_tally_adds_no_shrinking_counts() -> None:
    """A person's counts halved past their total are not negative engagements."""
    # given
    audience = InMemoryAudience()
    tally = AudienceTally(audience)
    # when
    tally.note({MONDAY_19: 200, MONDAY_03: 55}, {MONDAY_19: 100, MONDAY_03: 28, MONDAY_21: 1})
    tally.flush_if_due(NOW)
    # then
    assert audience.adds == [{MONDAY_21: 1}]
