"""When a person engages, by hour of the week on their own clock: what a send at their best
hour will read (issue #12). Pure; the profile keeps the counts and folds them from the
stream, on the profile write each event makes anyway.

What counts: the start of a session (any event after 30 quiet minutes), a click on a
tracked link, and an open, unless it looks automatic. Mail privacy proxies fetch every
image of a message as it arrives (Apple's Mail Privacy Protection does so for every message,
whether or not it is read; Gmail's image proxy on first display), so an open within
``AUTOMATIC_OPEN`` of sending says when the message arrived, not when the person looked. The
open pixel carries its send time (``sentAt``, signed with the link) for that test, and opens
whose user agent names a known image proxy are left out whatever their time.

The hour of the week is 0 for Monday 00:00-00:59 up to 167 for Sunday 23:00, on the
person's clock: their ``timezone`` trait, else the event's ``context.timezone``, else UTC,
the same rule the estimate uses to read them back. Counts are halved when their sum passes
``MAX_TOTAL``: the map stays small and recent weeks weigh more than old ones.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from nudge.domain.intake import Event
from nudge.domain.send_time import next_clock_time, zone_of

__all__ = [
    "AUTOMATIC_OPEN",
    "BEST_HOUR_FALLBACK",
    "BEST_HOUR_WITHIN",
    "CLICKED",
    "MAX_TOTAL",
    "OPENED",
    "SMOOTHING",
    "BestHour",
    "best_hour",
    "counted",
    "hour_of_week",
    "is_engagement",
]

OPENED = "Email Opened"
CLICKED = "Email Link Clicked"
AUTOMATIC_OPEN = timedelta(minutes=2)
# `send.at: best`'s defaults: the latest a message may wait, and its time without history.
BEST_HOUR_WITHIN = timedelta(hours=24)
BEST_HOUR_FALLBACK = "10:00"
MAX_TOTAL = 255  # a slot's count fits the byte the profile item keeps it in
# User agents of image proxies that fetch on the reader's behalf, as they send them.
_PROXY_AGENTS = ("GoogleImageProxy", "YahooMailProxy", "via ggpht.com")


def hour_of_week(moment: datetime, timezone: object) -> int:
    """0 (Monday 00:00) to 167 (Sunday 23:00) on the clock of ``timezone``, else UTC's."""
    # Without a timezone (most people), UTC's clock as datetime keeps it: the same hour as
    # zone_of's ZoneInfo("UTC") gives, in a tenth of the time (the fold calls this at
    # every session's start).
    no_zone = timezone is None or timezone == ""
    local = moment.astimezone(UTC if no_zone else zone_of(timezone, "UTC").zone)
    return local.weekday() * 24 + local.hour


def is_engagement(event: Event, starts_session: bool) -> bool:
    """A session's start, a click, or an open that does not look automatic."""
    if starts_session:
        return True
    if event.type != "track":
        return False
    name = event.name  # a property that reads the body: once, the fold calls this per event
    if name == CLICKED:
        return True
    return name == OPENED and not _automatic(event)


def counted(hours: Mapping[int, int], slot: int) -> dict[int, int]:
    """The counts with one more in ``slot``; halved (zeros dropped) past ``MAX_TOTAL``."""
    more = {**hours, slot: hours.get(slot, 0) + 1}
    if sum(more.values()) <= MAX_TOTAL:
        return more
    return {hour: count // 2 for hour, count in more.items() if count // 2}


# How many engagements' worth of a broader pattern a narrower one is blended with: the
# m-estimate (Cestnik, "Estimating probabilities: a crucial task in machine learning", ECAI
# 1990), p = (n + m * prior) / (N + m). Two levels: the person's hour of the day is smoothed
# towards the audience's hour of the day, and the person's hour of the week towards their own
# hour of the day (spread over the seven days). A week has 168 hours and most people a few
# dozen engagements, so the hour of the day carries most of what is known; a weekday habit
# (Saturday mornings) wins once it has been seen a few times.
SMOOTHING = 12.0
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class BestHour:
    """When to send, and why then."""

    at: datetime
    reason: str


def best_hour(
    now: datetime,
    timezone: object,
    default_zone: str,
    hours: Mapping[int, int],
    audience: Mapping[int, int],
    within: timedelta,
    fallback: str,
) -> BestHour:
    """When to send within ``within`` of ``now``: the hour of the week, on the person's
    clock, with the highest smoothed share of their engagement (the earliest on a tie; the
    current hour means now). With no engagement of their own: the next ``fallback`` on
    their clock (the account's zone if they have none), or the window's end if that is
    later."""
    total = sum(hours.values())
    if total == 0:
        clock = zone_of(timezone, default_zone).zone
        due = min(next_clock_time(now, clock, fallback), now + within)
        return BestHour(due, f"no engagement on record: fallback {fallback} in {clock.key}")
    audience_day = _audience_shares(_by_hour_of_day(audience))
    own_day = _by_hour_of_day(hours)
    slot_zone = zone_of(timezone, "UTC")
    best: tuple[float, datetime, int] | None = None
    for moment in _candidates(now, within):
        slot = hour_of_week(moment, slot_zone.zone.key)
        hour = slot % 24
        day_share = (own_day.get(hour, 0) + SMOOTHING * audience_day(hour)) / (total + SMOOTHING)
        score = (hours.get(slot, 0) + SMOOTHING * day_share / 7) / (total + SMOOTHING)
        if best is None or score > best[0]:
            best = (score, moment, slot)
    assert best is not None  # now itself is always a candidate
    score, moment, slot = best
    reason = (
        f"best hour {_DAYS[slot // 24]} {slot % 24:02d}:00 in {slot_zone.zone.key}:"
        f" {own_day.get(slot % 24, 0)} of their {total} engagements at that hour of the day"
    )
    return BestHour(moment, reason)


def _by_hour_of_day(hours: Mapping[int, int]) -> dict[int, int]:
    day: dict[int, int] = {}
    for slot, count in hours.items():
        day[slot % 24] = day.get(slot % 24, 0) + count
    return day


def _candidates(now: datetime, within: timedelta) -> list[datetime]:
    """Now, then every hour's start up to ``now + within``."""
    top = now.replace(minute=0, second=0, microsecond=0)
    moments = [now]
    step = top + timedelta(hours=1)
    while step <= now + within:
        moments.append(step)
        step += timedelta(hours=1)
    return moments


def _audience_shares(audience: Mapping[int, int]) -> Callable[[int], float]:
    """q_h: the audience's share of engagement in each hour of the day; uniform while there
    is none."""
    total = sum(audience.values())
    if total == 0:
        return lambda hour: 1 / 24
    return lambda slot: audience.get(slot, 0) / total


def _automatic(event: Event) -> bool:
    agent = str((event.body.get("context") or {}).get("userAgent") or "")
    if any(proxy in agent for proxy in _PROXY_AGENTS):
        return True
    sent = _sent_at(event.body.get("properties") or {})
    return sent is not None and timedelta(0) <= event.timestamp - sent < AUTOMATIC_OPEN


def _sent_at(properties: Mapping[str, Any]) -> datetime | None:
    value = properties.get("sentAt")
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
