"""The one module that knows the table's key shapes.

    pk = P#u:<userId>  or  P#a:<anonymousId>      one partition per person (P# + PersonId)
    sk = E#<item id>     events (kind=event, TTL): one request's events for the person
                         (event_item_id: a lone event's messageId; a group's first messageId
                         and a digest of all of them)
         PROFILE         the person's aggregates (kind=profile)
         LINK            on an anonymous partition: the userId it belongs to (kind=link)
         T#<trigger>#<occurrence>    a pending timer (kind=timer)
         F#<trigger>[#<occurrence>]  the fire ledger: the one write that decides a fire
         X#<fired at>#<trigger>#<occurrence>   a fire, as handed to delivery (kind=fire)
         D#<at>#<trigger>#<random>   a decision record (kind=decision, TTL)
         CONTACT         the contact policy's record: today's counts, recent sends (kind=contact)
         A#<trigger>@<version>   their latest assignment in an experiment (kind=assignment)

    pk = S#<channel>:<address, lower-cased>      one partition per suppressed address
    sk = SUPPRESS        never send to it on that channel (kind=suppression, no TTL)

    pk = R#<fire id>     one partition per fire
    sk = ACCEPTED        SES's Send event for it (kind=receipt, TTL)
         COUNTED#<measure>   the fire was counted as sent, opened ... (kind=counted, TTL):
                             what makes each count happen once per fire

    pk = C#<trigger>     one partition per trigger: its experiment counts
    sk = <version>#<arm>#<UTC day>#<measure>#<what was counted>   (kind=counter, no TTL) one
                         item per count (tally_key): assigned and converted per person's
                         assignment, revenue per goal event (its value in ``v``), sent,
                         opened, clicked ... per fire. A report reads one version's items,
                         never an event. Items written with a count's key can be written
                         again harmlessly, which is what makes counts exact without a
                         transaction (one write unit, where a transaction bills four).
         <version>#<arm>#<UTC day>#<shard>   counters of the earlier design (summed counts
                         as attributes): still read, no longer written.

One index, sparse: ``by_seen_hour`` (keys only) on ``seen_hour``, the UTC hour a person
was last seen and a shard (``2026-11-28T14#3``), which only profile items carry. The
inactivity sweep reads one hour of it, every shard. A profile write changes the index only
when that hour changes: once per person per active hour, not once per event. Shards
(``NUDGE_SWEEP_SHARDS``, 1 unless a busy site raises it) spread the top of each hour, when
every active person moves to the new hour at once, over that many index partitions. Raising
the number is safe (a sweep reads shards 0..n-1, which include every older, smaller
range); lowering it would hide the people filed under the shards dropped.

There is deliberately no index of events by time: it would copy every event (doubling
the write units of every event) to speed up reads that happen rarely (a delayed
re-check). "What did this person do since t" reads the person's partition and filters
on ``ts``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, date, datetime

from nudge.domain.person import PersonId

__all__ = [
    "ASSIGNMENT_KIND",
    "ASSIGNMENT_SK_PREFIX",
    "AUDIENCE_KIND",
    "CONTACT_KIND",
    "COUNTED_KIND",
    "COUNTER_KIND",
    "COUNTER_SHARDS",
    "DECISION_KIND",
    "EVENT_KIND",
    "FIRE_KIND",
    "LEDGER_KIND",
    "LINK_KIND",
    "PROFILE_KIND",
    "RECEIPT_KIND",
    "SEEN_HOUR",
    "SEEN_HOUR_INDEX",
    "SUPPRESSION_KIND",
    "TIMER_KIND",
    "assignment_key",
    "audience_hours_key",
    "connection_key",
    "contact_key",
    "counted_key",
    "counter_key",
    "counter_partition",
    "counter_shard",
    "decision_key",
    "event_id_from_sk",
    "event_item_id",
    "event_key",
    "fire_key",
    "in_app_key",
    "ledger_key",
    "link_key",
    "person_from_pk",
    "person_pk",
    "profile_key",
    "receipt_key",
    "seen_hour",
    "seen_hour_shards",
    "suppression_key",
    "tally_key",
    "tally_parts",
    "timer_key",
    "tombstone_key",
]

EVENT_KIND = "event"
PROFILE_KIND = "profile"
LINK_KIND = "link"
TIMER_KIND = "timer"
FIRE_KIND = "fire"
DECISION_KIND = "decision"
LEDGER_KIND = "ledger"
CONTACT_KIND = "contact"
SUPPRESSION_KIND = "suppression"
RECEIPT_KIND = "receipt"
ASSIGNMENT_KIND = "assignment"
COUNTED_KIND = "counted"
COUNTER_KIND = "counter"
TOMBSTONE_KIND = "tombstone"
CONNECTION_KIND = "connection"
IN_APP_KIND = "in_app"
COUNTER_SHARDS = 4
_EVENT_PREFIX = "E#"
_PERSON_PREFIX = "P#"
SEEN_HOUR_INDEX = "by_seen_hour"
SEEN_HOUR = "seen_hour"


def person_pk(person: PersonId) -> str:
    return f"{_PERSON_PREFIX}{person}"


def person_from_pk(pk: str) -> PersonId:
    if not pk.startswith(_PERSON_PREFIX):
        raise ValueError(f"not a person's partition key: {pk[:80]!r}")
    return PersonId.parse(pk.removeprefix(_PERSON_PREFIX))


def event_key(person: PersonId, item_id: str) -> dict[str, str]:
    """An event item's key, by its item id (for a lone event, its messageId)."""
    return {"pk": person_pk(person), "sk": f"{_EVENT_PREFIX}{item_id}"}


def profile_key(person: PersonId) -> dict[str, str]:
    return {"pk": person_pk(person), "sk": "PROFILE"}


def link_key(anonymous_id: str) -> dict[str, str]:
    return {"pk": person_pk(PersonId.anonymous(anonymous_id)), "sk": "LINK"}


EVENT_SK_PREFIX = _EVENT_PREFIX
PERSON_PK_PREFIX = _PERSON_PREFIX


def event_item_id(message_ids: Sequence[str]) -> str:
    """A lone event's item is keyed by its messageId; a group's by its first messageId and a
    digest of them all. A retry of the same request rewrites the same item (Streams says
    MODIFY, which nobody reads), and a retry that adds events to old ones writes a new item,
    so the new events are not lost (Evaluate knows the old ones: ``Profile.recent_ids``)."""
    if len(message_ids) == 1:
        return message_ids[0]
    every = "\n".join(sorted(message_ids)).encode()
    return f"{message_ids[0]}+{hashlib.blake2b(every, digest_size=6).hexdigest()}"


def event_id_from_sk(sk: str) -> str:
    """The item id an event item is keyed by (``event_item_id``)."""
    if not sk.startswith(_EVENT_PREFIX):
        raise ValueError(f"not an event item's sort key: {sk[:80]!r}")
    return sk.removeprefix(_EVENT_PREFIX)


def is_event_sk(sk: str) -> bool:
    return sk.startswith(_EVENT_PREFIX)


TIMER_SK_PREFIX = "T#"
FIRE_SK_PREFIX = "X#"
DECISION_SK_PREFIX = "D#"


def timer_key(person: PersonId, trigger: str, occurrence: str) -> dict[str, str]:
    return {"pk": person_pk(person), "sk": f"{TIMER_SK_PREFIX}{trigger}#{occurrence}"}


def ledger_key(person: PersonId, trigger: str, occurrence: str | None) -> dict[str, str]:
    """Per occurrence for every-time triggers; per trigger when re-entry is limited."""
    suffix = f"#{occurrence}" if occurrence is not None else ""
    return {"pk": person_pk(person), "sk": f"F#{trigger}{suffix}"}


def fire_key(person: PersonId, fired_at: str, trigger: str, occurrence: str) -> dict[str, str]:
    return {"pk": person_pk(person), "sk": f"{FIRE_SK_PREFIX}{fired_at}#{trigger}#{occurrence}"}


def decision_key(person: PersonId, at: str, trigger: str, suffix: str) -> dict[str, str]:
    return {"pk": person_pk(person), "sk": f"{DECISION_SK_PREFIX}{at}#{trigger}#{suffix}"}


def suppression_key(channel: str, address: str) -> dict[str, str]:
    """Addresses compare case-insensitively: Ada@Example.com and ada@example.com are one."""
    return {"pk": f"S#{channel}:{address.strip().lower()}", "sk": "SUPPRESS"}


def receipt_key(fire_id: str) -> dict[str, str]:
    """By fire id alone: SES's event names the fire (a header), not the person."""
    return {"pk": f"R#{fire_id}", "sk": "ACCEPTED"}


def contact_key(person: PersonId) -> dict[str, str]:
    return {"pk": person_pk(person), "sk": "CONTACT"}


AUDIENCE_KIND = "audience"


def audience_hours_key() -> dict[str, str]:
    """The audience's engagement by hour of the week: one item, ``h<hour>`` counts (0-167)."""
    return {"pk": "AUDIENCE", "sk": "HOURS"}


def tombstone_key(person: PersonId) -> dict[str, str]:
    """A person who asked to be forgotten: their late events are dropped, not stored."""
    return {"pk": person_pk(person), "sk": "FORGOTTEN"}


CONNECTION_SK_PREFIX = "W#"
IN_APP_SK_PREFIX = "M#"


def connection_key(person: PersonId, connection_id: str) -> dict[str, str]:
    """An open WebSocket of the person's (one per tab): the fan-out list for in-app messages."""
    return {"pk": person_pk(person), "sk": f"{CONNECTION_SK_PREFIX}{connection_id}"}


def in_app_key(person: PersonId, fire_id: str) -> dict[str, str]:
    """An in-app message no tab has shown yet; the tab that deletes it shows it."""
    return {"pk": person_pk(person), "sk": f"{IN_APP_SK_PREFIX}{fire_id}"}


ASSIGNMENT_SK_PREFIX = "A#"


def assignment_key(person: PersonId, trigger: str, version: str) -> dict[str, str]:
    """One per person and experiment version: a new assignment replaces a closed one."""
    return {"pk": person_pk(person), "sk": f"{ASSIGNMENT_SK_PREFIX}{trigger}@{version}"}


def counted_key(fire_id: str, measure: str) -> dict[str, str]:
    """Beside the fire's receipt: a fire is counted as sent (opened ...) once."""
    return {"pk": f"R#{fire_id}", "sk": f"COUNTED#{measure}"}


def counter_partition(trigger: str) -> str:
    return f"C#{trigger}"


def counter_key(trigger: str, version: str, arm: str, day: date, shard: int) -> dict[str, str]:
    return {
        "pk": counter_partition(trigger),
        "sk": f"{version}#{arm}#{day.isoformat()}#{shard}",
    }


def tally_key(
    trigger: str, version: str, arm: str, day: date, measure: str, counted: str
) -> dict[str, str]:
    """One count: what was counted (a person's assignment, a fire, a goal event) under its
    trigger, version, arm, UTC day and measure. Written unconditionally under a key only
    that count has, so writing it again changes nothing; a report counts these items."""
    return {
        "pk": counter_partition(trigger),
        "sk": f"{version}#{arm}#{day.isoformat()}#{measure}#{counted}",
    }


def tally_parts(sk: str) -> tuple[str, str, date, str | None]:
    """The version, arm, day and measure of a count (``tally_key``), or of a counter item
    written before counts were items of their own (no measure: its attributes hold them).
    Trigger and variant ids and versions never hold ``#`` (the trigger language's id pattern
    excludes it); what was counted may, so it is the one part left unsplit."""
    parts = sk.split("#", 4)
    version, arm, day = parts[:3]
    measure = parts[3] if len(parts) == 5 else None
    return version, arm, date.fromisoformat(day), measure


def counter_shard(basis: str) -> int:
    """Which of a counter's shards a count goes to: by the person for assignments and
    conversions, by the fire for what happened to a fire."""
    return _stable_bucket(basis, COUNTER_SHARDS)


def seen_hour(moment: datetime, person: PersonId, shards: int = 1) -> str:
    """The ``by_seen_hour`` partition a person filed under ``moment``'s hour is in."""
    return f"{_hour(moment)}#{_shard(person, shards)}"


def seen_hour_shards(moment: datetime, shards: int = 1) -> list[str]:
    """Every ``by_seen_hour`` partition of ``moment``'s hour: what a sweep reads."""
    return [f"{_hour(moment)}#{shard}" for shard in range(shards)]


def _hour(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H")


def _shard(person: PersonId, shards: int) -> int:
    """Stable across processes (Python's own hash() is salted per process), and taken from
    the text form, so a person keeps the shard their profile was filed under before."""
    return _stable_bucket(str(person), shards)


def _stable_bucket(text: str, buckets: int) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") % buckets
