"""The one module that knows the table's key shapes.

    pk = P#u:<userId>  or  P#a:<anonymousId>      one partition per person
    sk = E#<messageId>   an event (kind=event, TTL), deduplicated by its messageId
         PROFILE         the person's aggregates (kind=profile)
         LINK            on an anonymous partition: the userId it belongs to (kind=link)

Events also carry ``ts_key`` = <timestamp>#<messageId>, the sort key of the ``by_time``
local secondary index, so "what did this person do since t" is one Query.
"""

from __future__ import annotations

__all__ = [
    "BY_TIME_INDEX",
    "EVENT_KIND",
    "LINK_KIND",
    "PROFILE_KIND",
    "event_key",
    "link_key",
    "person_of",
    "person_pk",
    "profile_key",
]

BY_TIME_INDEX = "by_time"
EVENT_KIND = "event"
PROFILE_KIND = "profile"
LINK_KIND = "link"
_EVENT_PREFIX = "E#"


def person_of(user_id: str | None, anonymous_id: str | None) -> str:
    """A known user is the person; an anonymous visitor is one until linked."""
    if user_id:
        return f"u:{user_id}"
    if anonymous_id:
        return f"a:{anonymous_id}"
    raise ValueError("a person needs a userId or an anonymousId")


def person_pk(person: str) -> str:
    return f"P#{person}"


def person_from_pk(pk: str) -> str:
    return pk.removeprefix("P#")


def event_key(person: str, message_id: str) -> dict[str, str]:
    return {"pk": person_pk(person), "sk": f"{_EVENT_PREFIX}{message_id}"}


def profile_key(person: str) -> dict[str, str]:
    return {"pk": person_pk(person), "sk": "PROFILE"}


def link_key(anonymous_id: str) -> dict[str, str]:
    return {"pk": person_pk(f"a:{anonymous_id}"), "sk": "LINK"}


def is_event_sk(sk: str) -> bool:
    return sk.startswith(_EVENT_PREFIX)


def ts_key(timestamp: str, message_id: str) -> str:
    return f"{timestamp}#{message_id}"
