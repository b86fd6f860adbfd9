"""When a fire with `send.at` may go: the next time the person's own clock shows it. Pure.

The person's zone is their ``timezone`` trait (or the entry event's ``context.timezone``),
else the account's ``DefaultTimezone``; a name that is no IANA zone falls back to the
account's and the decision says so, since a message at the wrong hour is the visible result.

Daylight-saving changes follow Python's zoneinfo (PEP 495, ``fold=0``): a time the clocks skip
(02:30 on the night they jump from 02:00 to 03:00) is taken as that much after the change,
03:30; a time that happens twice (the night they go back) is its first occurrence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["PersonZone", "next_clock_time", "zone_of"]


@dataclass(frozen=True)
class PersonZone:
    """The zone a person's clock times are read in."""

    zone: ZoneInfo
    note: str = ""  # why the account's zone stands in for the person's, when it does


def zone_of(timezone: object, default: str) -> PersonZone:
    """The person's zone from their timezone trait, or the account's with the reason."""
    if timezone is None or timezone == "":
        return PersonZone(ZoneInfo(default))
    if isinstance(timezone, str):
        try:
            return PersonZone(ZoneInfo(timezone))
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return PersonZone(
        ZoneInfo(default), f"timezone {timezone!r} is not an IANA zone; {default} used"
    )


def next_clock_time(now: datetime, zone: ZoneInfo, clock: str) -> datetime:
    """The first moment at or after ``now`` when the clock in ``zone`` shows ``clock``
    (``HH:MM``)."""
    hours, minutes = (int(part) for part in clock.split(":"))
    wanted = time(hours, minutes)
    local = now.astimezone(zone)
    for days in (0, 1, 2):  # two days covers any zone's changes of offset
        candidate = datetime.combine(local.date() + timedelta(days=days), wanted, tzinfo=zone)
        if candidate >= now:
            return candidate
    raise AssertionError("unreachable: a clock time recurs every day")
