"""`send.at`: the next time the person's own clock shows HH:MM, and whose clock that is."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from nudge.domain.send_time import next_clock_time, zone_of

PARIS = ZoneInfo("Europe/Paris")
TOKYO = ZoneInfo("Asia/Tokyo")


def test_a_time_later_today_is_today() -> None:
    # given
    now = datetime(2026, 12, 5, 7, 0, tzinfo=PARIS)
    # when
    due = next_clock_time(now, PARIS, "09:30")
    # then
    assert due == datetime(2026, 12, 5, 9, 30, tzinfo=PARIS)


def test_a_time_already_past_today_is_tomorrow() -> None:
    # given
    now = datetime(2026, 12, 5, 9, 31, tzinfo=PARIS)
    # when
    due = next_clock_time(now, PARIS, "09:30")
    # then
    assert due == datetime(2026, 12, 6, 9, 30, tzinfo=PARIS)


def test_the_very_moment_is_now() -> None:
    # given
    now = datetime(2026, 12, 5, 9, 30, tzinfo=PARIS)
    # when
    due = next_clock_time(now, PARIS, "09:30")
    # then
    assert due == now


def test_the_day_is_the_persons_not_utcs() -> None:
    """23:00 UTC is already 08:00 the next morning in Tokyo: its 09:30 is an hour and a half on."""
    # given
    now = datetime(2026, 12, 5, 23, 0, tzinfo=UTC)
    # when
    due = next_clock_time(now, TOKYO, "09:30")
    # then
    assert due == datetime(2026, 12, 6, 9, 30, tzinfo=TOKYO)
    assert (due - now).total_seconds() == 90 * 60


def test_a_time_the_clocks_skip_is_taken_after_the_change() -> None:
    """Paris jumps from 02:00 to 03:00 on 29 March 2026: 02:30 that night is 03:30 CEST."""
    # given
    now = datetime(2026, 3, 29, 0, 0, tzinfo=PARIS)
    # when
    due = next_clock_time(now, PARIS, "02:30")
    # then
    assert due.astimezone(UTC) == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert due.astimezone(UTC).astimezone(PARIS).strftime("%H:%M") == "03:30"


def test_a_time_that_happens_twice_is_its_first_occurrence() -> None:
    """Paris goes back from 03:00 to 02:00 on 25 October 2026: 02:30 CEST comes first."""
    # given
    now = datetime(2026, 10, 25, 0, 0, tzinfo=PARIS)
    # when
    due = next_clock_time(now, PARIS, "02:30")
    # then
    assert due.astimezone(UTC) == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)


def test_a_persons_valid_timezone_is_theirs_with_no_note() -> None:
    # given / when
    where = zone_of("Asia/Tokyo", "UTC")
    # then
    assert (where.zone, where.note) == (TOKYO, "")


def test_no_timezone_is_the_accounts_with_no_note() -> None:
    # given / when
    where = zone_of(None, "Europe/Paris")
    # then
    assert (where.zone, where.note) == (PARIS, "")


@pytest.mark.parametrize("trait", ["Mars/Olympus_Mons", "../etc/passwd", 42])
def test_an_invalid_timezone_is_the_accounts_and_says_so(trait: object) -> None:
    # given / when
    where = zone_of(trait, "Europe/Paris")
    # then
    assert where.zone == PARIS
    assert where.note == f"timezone {trait!r} is not an IANA zone; Europe/Paris used"
