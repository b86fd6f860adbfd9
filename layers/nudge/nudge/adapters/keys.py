"""The one module that knows the table's key shapes.

    pk = P#u:<userId>  or  P#a:<anonymousId>      one partition per person
    sk = E#<messageId>   an event (kind=event, TTL), deduplicated by its messageId
         PROFILE         the person's aggregates (kind=profile)
         LINK            on an anonymous partition: the userId it belongs to (kind=link)

There is deliberately no index by time: an index would copy every event (doubling the
write units of every event) to speed up reads that happen rarely (a delayed re-check).
"What did this person do since t" reads the person's partition and filters on ``ts``.
"""

from __future__ import annotations

__all__ = [
    "EVENT_KIND",
    "LINK_KIND",
    "PROFILE_KIND",
    "event_key",
    "link_key",
    "person_of",
    "person_pk",
    "profile_key",
]

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


EVENT_SK_PREFIX = _EVENT_PREFIX


def is_event_sk(sk: str) -> bool:
    return sk.startswith(_EVENT_PREFIX)
