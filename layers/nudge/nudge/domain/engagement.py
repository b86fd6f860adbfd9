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

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from nudge.domain.intake import Event
from nudge.domain.send_time import zone_of

__all__ = [
    "AUTOMATIC_OPEN",
    "CLICKED",
    "MAX_TOTAL",
    "OPENED",
    "counted",
    "hour_of_week",
    "is_engagement",
]

OPENED = "Email Opened"
CLICKED = "Email Link Clicked"
AUTOMATIC_OPEN = timedelta(minutes=2)
MAX_TOTAL = 255  # a slot's count fits the byte the profile item keeps it in
# User agents of image proxies that fetch on the reader's behalf, as they send them.
_PROXY_AGENTS = ("GoogleImageProxy", "YahooMailProxy", "via ggpht.com")


def hour_of_week(moment: datetime, timezone: object) -> int:
    """0 (Monday 00:00) to 167 (Sunday 23:00) on the clock of ``timezone``, else UTC's."""
    local = moment.astimezone(zone_of(timezone, "UTC").zone)
    return local.weekday() * 24 + local.hour


def is_engagement(event: Event, starts_session: bool) -> bool:
    """A session's start, a click, or an open that does not look automatic."""
    if starts_session:
        return True
    if event.type != "track":
        return False
    if event.name == CLICKED:
        return True
    return event.name == OPENED and not _automatic(event)


def counted(hours: Mapping[int, int], slot: int) -> dict[int, int]:
    """The counts with one more in ``slot``; halved (zeros dropped) past ``MAX_TOTAL``."""
    more = {**hours, slot: hours.get(slot, 0) + 1}
    if sum(more.values()) <= MAX_TOTAL:
        return more
    return {hour: count // 2 for hour, count in more.items() if count // 2}


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
