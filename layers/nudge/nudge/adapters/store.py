"""DynamoDB persistence for events, links and profiles.

A request's events for one person are stored as one item (up to ``GROUP_MAX_EVENTS`` of
them, packed together): on-demand DynamoDB bills a write unit per item and started KB, and a
browser's batch of ten events, which share their page context, packs into about 1 KB, where
ten items would cost ten units. The item is keyed by its events' messageIds
(``keys.event_item_id``), so a client's retry of the same request overwrites the same item
instead of adding a second one. DynamoDB Streams reports that overwrite as MODIFY, and every
consumer listens to INSERT only. A retry that batches the events differently (analytics.js
re-queues a failed batch with newer events) writes a new item and so stores an event twice:
readers drop the second copy by messageId, and Evaluate skips an event whose messageId the
profile has folded recently (``Profile.recent_ids``).
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer

from nudge.adapters import keys
from nudge.adapters.aws_errors import aws_call
from nudge.adapters.packing import (
    DECISIONS_PACKED,
    decisions_held,
    pack,
    pack_with_dictionary,
    unpack,
    unpack_with_dictionary,
)
from nudge.domain.intake import Event, StoredEvent
from nudge.domain.person import PersonId
from nudge.domain.profile import Miss, Profile, expiry
from nudge.domain.timefmt import iso
from nudge.service.ports import Conflict, Unavailable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = [
    "EventStore",
    "PersonView",
    "StoredEvent",
    "delete_if",
    "event_bodies",
    "from_attributes",
    "pack_body",
    "put_if",
    "readable_events",
    "stored_events_from_image",
    "to_attributes",
]

BATCH_WRITE_LIMIT = 25
BATCH_GET_LIMIT = 100
_UNPROCESSED_RETRIES = 8
# Event bodies are stored as compressed JSON (adapters/packing.py): an analytics.js event
# (about 900 bytes of JSON) packs to about 400, so an item stays under the 1 KB a write unit
# covers. Items written before packing carry the JSON as a string in "body".
_PACKED_BODY = "zd"  # with adapters/packing.py's dictionary
_PACKED_BODY_NO_DICTIONARY = "zb"  # items written before the dictionary
_PLAIN_BODY = "body"
# At most this many events share an item: the stream handler numbers an item's events
# (``BatchWork.handle``'s index), and a browser batch is 10. A group that packs to more
# than ``GROUP_MAX_BYTES`` is split: items stay far below DynamoDB's 400 KB, and a stream
# batch of them far below Lambda's 6 MB payload.
GROUP_MAX_EVENTS = 100
GROUP_MAX_BYTES = 64 * 1024
# A profile's traits, groups, event counts, arms and misses, packed the same way.
_PACKED_DETAILS = "zp"
# A profile's engagement counts by hour of week, two bytes a slot (the hour, its count, at
# most 255: domain/engagement.py halves them first): half what the same map costs as JSON in
# ``zp``, where random numbers barely compress, and a profile keeps under 1 KB.
_ENGAGED_HOURS = "eh"
# What an event item holds for its events: readable_events gives each event its own.
_EVENT_BODIES = frozenset({_PACKED_BODY, _PACKED_BODY_NO_DICTIONARY, _PLAIN_BODY})
_EVENT_OWN = _EVENT_BODIES | {"type", "ts"}

_T = TypeVar("_T")
_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


@dataclass(frozen=True)
class PersonView:
    """A person as one: their profile, the anonymous profiles linked to them, all events."""

    profile: Profile | None
    linked_profiles: list[Profile] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)


class EventStore:
    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        sweep_shards: int = 1,
        profile_kept: timedelta | None = None,
    ) -> None:
        self._client = client
        self._table = table_name
        self._shards = sweep_shards
        # A profile outlives its person's last activity by this much, then expires (None:
        # kept for good, for callers that only read or test).
        self._profile_kept = profile_kept

    @property
    def table_name(self) -> str:
        return self._table

    # ---- ingest side -------------------------------------------------------------

    def linked_users(self, anonymous_ids: Iterable[str]) -> dict[str, str]:
        """For each anonymousId that has been linked to a userId, that userId."""
        wanted = sorted(set(anonymous_ids))
        found: dict[str, str] = {}
        for chunk in _chunks(wanted, BATCH_GET_LIMIT):
            for item in self._batch_get([keys.link_key(anon) for anon in chunk]):
                found[keys.person_from_pk(item["pk"]).value] = item["user_id"]
        return found

    def put_events(
        self,
        events: Sequence[StoredEvent],
        new_links: Mapping[str, str],
        retention: timedelta,
    ) -> int:
        """Write events and links; returns the number of write requests it took."""
        puts = [
            _group_item(group, retention)
            for person_events in _by_person(events).values()
            for group in _groups(person_events)
        ]
        puts += [self._link_item(anon, user) for anon, user in sorted(new_links.items())]
        requests = 0
        for chunk in _chunks(_unique_by_key(puts), BATCH_WRITE_LIMIT):
            used, leftovers = self._batch_write(chunk)
            if leftovers:
                raise Unavailable(f"DynamoDB left {len(leftovers)} writes unprocessed")
            requests += used
        return requests

    # ---- profiles ----------------------------------------------------------------

    def load_profiles(
        self, persons: Iterable[PersonId], now: datetime | None = None
    ) -> dict[PersonId, Profile]:
        """With ``now``, a profile whose ``expires_at`` is at or before it is left out, as if
        TTL had deleted it already (``_live_at``); without, every stored profile."""
        wanted = sorted(set(persons))
        profiles: dict[PersonId, Profile] = {}
        for chunk in _chunks(wanted, BATCH_GET_LIMIT):
            for item in self._batch_get([keys.profile_key(person) for person in chunk]):
                if now is None or _live_at(item, now):
                    profile = _profile_from_item(item)
                    profiles[profile.person] = profile
        return profiles

    def save_profiles(self, profiles: Sequence[Profile]) -> set[PersonId]:
        """Writes profiles in batches; returns the persons DynamoDB kept refusing.

        The writes are unconditional because each person has a single writer: a stream
        shard's records are processed in order, one batch at a time, and all of a person's
        records share a partition key and so a shard. The ``applied_seq`` watermark read
        before folding is what makes a redelivered record a no-op.
        """
        refused: set[PersonId] = set()
        items = [_profile_item(profile, self._shards, self._profile_kept) for profile in profiles]
        for chunk in _chunks(items, BATCH_WRITE_LIMIT):
            _, leftovers = self._batch_write(chunk)
            refused |= {keys.person_from_pk(item["pk"]["S"]) for item in leftovers}
        return refused

    def save_rescored(self, profile: Profile) -> bool:
        # The profile's one other writer: the stream has a single writer per person, and
        # the sweep must not undo a fold that landed after its read.
        request = _conditional(
            self._table, "applied_seq = :seq", {":seq": {"N": str(profile.applied_seq)}}, None
        )
        request["Item"] = _profile_item(profile, self._shards, self._profile_kept)
        try:
            with aws_call("a re-scored profile's write"):
                self._client.put_item(**request)
        except Conflict:
            return False
        return True

    def forgotten(self, persons: Iterable[PersonId]) -> set[PersonId]:
        """The persons with a tombstone: they asked to be forgotten (one BatchGetItem per
        hundred persons, a consistent read unit each: Evaluate asks once per stream batch)."""
        wanted = sorted(set(persons))
        found: set[PersonId] = set()
        for chunk in _chunks(wanted, BATCH_GET_LIMIT):
            for item in self._batch_get([keys.tombstone_key(person) for person in chunk]):
                found.add(keys.person_from_pk(item["pk"]))
        return found

    def drop_event(self, person: PersonId, item_id: str) -> None:
        """Deletes the event item with this item id (``keys.event_item_id``: with any events
        stored with it) for a forgotten person (idempotent)."""
        with aws_call("dropping an event of a forgotten person"):
            self._client.delete_item(
                TableName=self._table, Key=to_attributes(keys.event_key(person, item_id))
            )

    # ---- reads -------------------------------------------------------------------

    def read_person(self, user_id: str) -> PersonView:
        """A person as one: their profile, the anonymous profiles linked to them, all events."""
        profile, events = self._partition(PersonId.user(user_id))
        if profile is None and not events:
            # Nobody by that userId: perhaps it is an anonymousId nobody has linked yet.
            profile, events = self._partition(PersonId.anonymous(user_id))
        linked: list[Profile] = []
        for anon in profile.anonymous_ids if profile else ():
            anon_profile, anon_events = self._partition(PersonId.anonymous(anon))
            linked += [anon_profile] if anon_profile else []
            events += anon_events
        events = _unique_events(events)
        events.sort(key=lambda body: (body.get("timestamp", ""), body.get("messageId", "")))
        return PersonView(profile=profile, linked_profiles=linked, events=events)

    def events_since(
        self, person: PersonId, since: datetime, now: datetime
    ) -> list[dict[str, Any]]:
        """One person's events at or after ``since``, oldest first, of the items not expired
        at ``now`` (``_live_at``: the same rule, in the query's filter, which reads no more)."""
        bodies = [
            body
            for item in self._query(
                KeyConditionExpression="pk = :pk AND begins_with(sk, :events)",
                FilterExpression=(
                    "ts >= :since AND (attribute_not_exists(expires_at) OR expires_at > :now)"
                ),
                ExpressionAttributeValues={
                    ":pk": {"S": keys.person_pk(person)},
                    ":events": {"S": keys.EVENT_SK_PREFIX},
                    ":since": {"S": iso(since)},
                    ":now": {"N": str(_epoch(now))},
                },
            )
            # An item's ts is its latest event's: the others are filtered here.
            for body in event_bodies(item)
            if _event_time(body, item) >= since
        ]
        return sorted(
            _unique_events(bodies),
            key=lambda body: (body.get("timestamp", ""), body.get("messageId", "")),
        )

    def persons_seen_in(self, hour: datetime) -> list[PersonId]:
        """Everyone filed under this UTC hour, every shard of it (the index may lag a write)."""
        found: set[PersonId] = set()
        for shard in keys.seen_hour_shards(hour, self._shards):
            items = self._query(
                IndexName=keys.SEEN_HOUR_INDEX,
                KeyConditionExpression="#hour = :hour",
                ExpressionAttributeNames={"#hour": keys.SEEN_HOUR},
                ExpressionAttributeValues={":hour": {"S": shard}},
            )
            found |= {keys.person_from_pk(item["pk"]) for item in items}
        return sorted(found)

    # ---- training side -----------------------------------------------------------

    def every_event(self) -> Iterator[dict[str, Any]]:
        """Every stored event, one exported item each (``readable_events``), by a paginated
        Scan of the whole table filtered to the event items: the filter is applied after
        the read, so the Scan reads (and bills) every item of the table, about half a read
        unit per 4 KB (docs/predictions.md, "Training from the table")."""
        paginator = self._client.get_paginator("scan")
        with aws_call("scanning the table"):
            for page in paginator.paginate(
                TableName=self._table,
                FilterExpression="begins_with(pk, :people) AND begins_with(sk, :events)",
                ExpressionAttributeValues={
                    ":people": {"S": keys.PERSON_PK_PREFIX},
                    ":events": {"S": keys.EVENT_SK_PREFIX},
                },
            ):
                for raw in page.get("Items", []):
                    yield from readable_events(from_attributes(raw))

    def _partition(self, person: PersonId) -> tuple[Profile | None, list[dict[str, Any]]]:
        profile: Profile | None = None
        events: list[dict[str, Any]] = []
        for item in self._query(
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": keys.person_pk(person)}},
        ):
            if item.get("kind") == keys.PROFILE_KIND:
                profile = _profile_from_item(item)
            elif item.get("kind") == keys.EVENT_KIND:
                events += event_bodies(item)
        return profile, _unique_events(events)

    # ---- plumbing ----------------------------------------------------------------

    def _query(self, **params: Any) -> Iterator[dict[str, Any]]:
        paginator = self._client.get_paginator("query")
        with aws_call("querying the table"):
            for page in paginator.paginate(TableName=self._table, **params):
                for raw in page.get("Items", []):
                    yield from_attributes(raw)

    def _batch_get(self, key_list: list[dict[str, str]]) -> list[dict[str, Any]]:
        request: dict[str, Any] = {
            self._table: {"Keys": [to_attributes(key) for key in key_list], "ConsistentRead": True}
        }
        items: list[dict[str, Any]] = []
        for attempt in range(_UNPROCESSED_RETRIES):
            with aws_call("reading items"):
                response = self._client.batch_get_item(RequestItems=request)
            items += [
                from_attributes(raw) for raw in response.get("Responses", {}).get(self._table, [])
            ]
            request = dict(response.get("UnprocessedKeys") or {})
            if not request:
                return items
            _backoff(attempt)
        raise Unavailable("DynamoDB left keys unprocessed after retries")

    def _batch_write(self, items: Sequence[dict[str, Any]]) -> tuple[int, list[dict[str, Any]]]:
        """Requests used, and the items still unprocessed after bounded retries."""
        pending: list[Any] = [{"PutRequest": {"Item": item}} for item in items]
        for attempt in range(_UNPROCESSED_RETRIES):
            with aws_call("writing items"):
                response = self._client.batch_write_item(RequestItems={self._table: pending})
            pending = list((response.get("UnprocessedItems") or {}).get(self._table, []))
            if not pending:
                return attempt + 1, []
            _backoff(attempt)
        return _UNPROCESSED_RETRIES, [request["PutRequest"]["Item"] for request in pending]

    def _link_item(self, anonymous_id: str, user_id: str) -> dict[str, Any]:
        return to_attributes(
            {**keys.link_key(anonymous_id), "kind": keys.LINK_KIND, "user_id": user_id}
        )


def pack_body(body: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> bytes:
    """One event's body, or a group's list of bodies, as compressed JSON."""
    return pack_with_dictionary(body)


def event_bodies(item: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The events an event item holds, in the order they were sent: one, or a request's
    group for one person. Items written before the dictionary, or before packing, still
    read."""
    if _PACKED_BODY in item:
        unpacked = unpack_with_dictionary(_binary(item[_PACKED_BODY]))
    elif _PACKED_BODY_NO_DICTIONARY in item:
        unpacked = unpack(_binary(item[_PACKED_BODY_NO_DICTIONARY]))
    else:
        unpacked = json.loads(item[_PLAIN_BODY])
    return unpacked if isinstance(unpacked, list) else [unpacked]


def readable_events(item: Mapping[str, Any]) -> list[dict[str, Any]]:
    """An item as people read it: an event item becomes one entry per event it holds, each
    with its body as JSON text under "body" (and the item's keys); other items, as they are."""
    if item.get("kind") == keys.DECISION_KIND and DECISIONS_PACKED in item:
        shared = {name: value for name, value in item.items() if name != DECISIONS_PACKED}
        return [{**shared, "decisions": decisions_held(item)}]
    if item.get("kind") == keys.PROFILE_KIND and _PACKED_DETAILS in item:
        unpacked = {name: value for name, value in item.items() if name != _PACKED_DETAILS}
        return [{**_readable_all(unpacked), **_stored_details(item)}]
    if item.get("kind") != keys.EVENT_KIND or not _EVENT_BODIES & item.keys():
        return [_readable_all(item)]
    shared = {name: value for name, value in item.items() if name not in _EVENT_OWN}
    return [
        {
            **shared,
            "type": body.get("type", item.get("type")),
            "ts": body.get("timestamp", item.get("ts")),
            _PLAIN_BODY: json.dumps(body, ensure_ascii=False),
        }
        for body in event_bodies(item)
    ]


def stored_events_from_image(image: Mapping[str, Any]) -> list[StoredEvent]:
    """The events a stream record's NewImage holds (DynamoDB JSON in, domain out), in the
    order they were sent."""
    raw = dict(image)
    for name in (_PACKED_BODY, _PACKED_BODY_NO_DICTIONARY):
        packed = raw.get(name, {}).get("B")
        if isinstance(packed, str):  # Lambda's JSON carries binary as base64 text
            raw[name] = {"B": base64.b64decode(packed)}
    item = from_attributes(raw)
    person = keys.person_from_pk(item["pk"])
    item_id = keys.event_id_from_sk(item["sk"])
    return [
        StoredEvent(person=person, event=_event(body, item), item_id=item_id)
        for body in event_bodies(item)
    ]


def _readable_all(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _readable(value) for name, value in item.items()}


def _readable(value: Any) -> Any:
    """Binary attributes (a profile's recent_ids) as base64 text, so JSON can hold them."""
    if isinstance(value, Binary):
        return base64.b64encode(_binary(value)).decode()
    return value


def _event(body: Mapping[str, Any], item: Mapping[str, Any]) -> Event:
    return Event(
        message_id=body["messageId"],
        type=body.get("type") or item["type"],
        user_id=body.get("userId"),
        anonymous_id=body.get("anonymousId"),
        timestamp=_event_time(body, item),
        received_at=datetime.fromisoformat(body["receivedAt"]),
        body=dict(body),
    )


def _event_time(body: Mapping[str, Any], item: Mapping[str, Any]) -> datetime:
    """The event's own time: its body's (normalised at intake), else its item's ts."""
    return datetime.fromisoformat(body.get("timestamp") or item["ts"])


def _unique_events(bodies: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """One body per messageId, the first found: a retry batched differently stores an
    event twice."""
    seen: set[object] = set()
    unique = []
    for body in bodies:
        message_id = body.get("messageId")
        if message_id not in seen:
            seen.add(message_id)
            unique.append(body)
    return unique


def _by_person(events: Sequence[StoredEvent]) -> dict[PersonId, list[StoredEvent]]:
    """Each person's events in the order sent, once per messageId (the first wins, as a
    single BatchWriteItem cannot write one key twice)."""
    grouped: dict[PersonId, dict[str, StoredEvent]] = {}
    for stored in events:
        grouped.setdefault(stored.person, {}).setdefault(stored.event.message_id, stored)
    return {person: list(by_id.values()) for person, by_id in grouped.items()}


def _groups(events: Sequence[StoredEvent]) -> Iterator[Sequence[StoredEvent]]:
    """One person's events cut into items: at most GROUP_MAX_EVENTS each, halved until
    each packs to GROUP_MAX_BYTES or less. The same request always cuts the same way, so a
    retry of it writes the same keys."""
    for start in range(0, len(events), GROUP_MAX_EVENTS):
        yield from _fitting(events[start : start + GROUP_MAX_EVENTS])


def _fitting(events: Sequence[StoredEvent]) -> Iterator[Sequence[StoredEvent]]:
    if len(events) == 1 or len(_packed(events)) <= GROUP_MAX_BYTES:
        yield events
        return
    middle = len(events) // 2
    yield from _fitting(events[:middle])
    yield from _fitting(events[middle:])


def _packed(events: Sequence[StoredEvent]) -> bytes:
    if len(events) == 1:  # a lone event keeps the single-body form
        return pack_body(events[0].event.body)
    return pack_body([stored.event.body for stored in events])


def _group_item(events: Sequence[StoredEvent], retention: timedelta) -> dict[str, Any]:
    """The item for one person's events of one request. Only what filters and TTL need sits
    beside the packed bodies: ``ts`` is the latest event's (a query for "since t" keeps the
    item when any of its events is that recent), and the item expires with it, at the first
    whole second after ``retention`` has passed: reads leave out an item once ``expires_at``
    is at or before their time (``_live_at``), so an event exactly ``retention`` old is
    still read, by a trigger window as long as the retention."""
    first = events[0]
    latest = max(stored.event.timestamp for stored in events)
    item: dict[str, Any] = {
        **keys.event_key(
            first.person, keys.event_item_id([stored.event.message_id for stored in events])
        ),
        "kind": keys.EVENT_KIND,
        "ts": iso(latest),
        _PACKED_BODY: _packed(events),
        "expires_at": _epoch(latest + retention) + 1,
    }
    if len(events) == 1:
        item["type"] = first.event.type
    return to_attributes(item)


def _profile_item(profile: Profile, shards: int, kept: timedelta | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {
        **keys.profile_key(profile.person),
        "kind": keys.PROFILE_KIND,
        "anonymous_ids": list(profile.anonymous_ids),
        _PACKED_DETAILS: pack(_profile_details(profile)),
        "session_pages": profile.session_pages,
        "session_events": profile.session_events,
        "sessions": profile.sessions,
        "events": profile.events,
        "pages": profile.pages,
        "applied_seq": profile.applied_seq,
    }
    if profile.applied_index:
        item["applied_index"] = profile.applied_index
    if profile.recent_ids:
        item["recent_ids"] = profile.recent_ids
    if profile.engaged_hours:
        item[_ENGAGED_HOURS] = _hours_bytes(profile.engaged_hours)
    optional = {
        "user_id": profile.user_id,
        "first_seen": profile.first_seen,
        "last_seen": profile.last_seen,
        "session_id": profile.session_id,
        "session_started": profile.session_started,
        "last_session_pages": profile.last_session_pages,
        "folded_at": profile.folded_at,
    }
    item.update({name: value for name, value in optional.items() if value is not None})
    hour = profile.sweep_hour()
    if hour is not None:
        item[keys.SEEN_HOUR] = keys.seen_hour(hour, profile.person, shards)
        if kept is not None:  # measured from the same last activity the sweep files it by
            item["expires_at"] = _epoch(expiry(hour, kept))
    return to_attributes(item)


def _profile_details(profile: Profile) -> dict[str, Any]:
    """The profile's free-form parts, stored packed: traits, groups, event counts, arms and
    misses ([at, occurrence, reason(, outcome)]) are most of its bytes, and a profile over
    1 KB costs two write units on every write."""
    details: dict[str, Any] = {"traits": profile.traits, "event_counts": profile.event_counts}
    if profile.groups:
        details["groups"] = profile.groups
    if profile.arms:
        details["arms"] = profile.arms
    if profile.misses:
        details["misses"] = {trigger: _miss_entry(m) for trigger, m in profile.misses.items()}
    if profile.scores:  # [score, model version] by prediction
        details["scores"] = {
            prediction: [score, profile.score_models.get(prediction, "?")]
            for prediction, score in profile.scores.items()
        }
    if profile.scored_at:  # only after the sweep re-scored the person, until their next event
        details["scored_at"] = profile.scored_at
    return details


def _stored_details(item: Mapping[str, Any]) -> dict[str, Any]:
    """A profile item's details, packed or (written before packing) one attribute each."""
    if _PACKED_DETAILS in item:
        details: dict[str, Any] = unpack(_binary(item[_PACKED_DETAILS]))
        return details
    return {
        "traits": json.loads(item.get("traits", "{}")),
        "groups": json.loads(item.get("groups", "{}")),
        "event_counts": item.get("event_counts", {}),
        "arms": item.get("arms", {}),
        "misses": json.loads(item.get("misses", "{}")),
    }


def _profile_from_item(item: Mapping[str, Any]) -> Profile:
    def number(name: str) -> int:
        return int(item.get(name, 0))

    details = _stored_details(item)
    last_pages = item.get("last_session_pages")
    return Profile(
        person=keys.person_from_pk(item["pk"]),
        user_id=item.get("user_id"),
        anonymous_ids=tuple(item.get("anonymous_ids", ())),
        traits=details.get("traits", {}),
        groups=details.get("groups", {}),
        first_seen=item.get("first_seen"),
        last_seen=item.get("last_seen"),
        session_id=item.get("session_id"),
        session_started=item.get("session_started"),
        session_pages=number("session_pages"),
        session_events=number("session_events"),
        last_session_pages=None if last_pages is None else int(last_pages),
        sessions=number("sessions"),
        events=number("events"),
        pages=number("pages"),
        event_counts={name: int(count) for name, count in details.get("event_counts", {}).items()},
        applied_seq=number("applied_seq"),
        applied_index=number("applied_index"),
        recent_ids=_binary(item.get("recent_ids", b"")),
        folded_at=item.get("folded_at"),
        arms={key: str(arm) for key, arm in details.get("arms", {}).items()},
        engaged_hours=_hours_from(_binary(item.get(_ENGAGED_HOURS, b""))),
        scores={name: int(pair[0]) for name, pair in details.get("scores", {}).items()},
        score_models={name: str(pair[1]) for name, pair in details.get("scores", {}).items()},
        scored_at=details.get("scored_at"),
        misses={
            trigger: Miss(str(entry[0]), entry[1], str(entry[2]), *entry[3:4])
            for trigger, entry in details.get("misses", {}).items()
        },
    )


def _live_at(item: Mapping[str, Any], now: datetime) -> bool:
    """Whether an item is still there for a decision taken at ``now``. DynamoDB's TTL deletes
    an expired item in the background, typically within a few days of its expiry, and reads,
    queries and scans return it until then; AWS's advice is to filter out the items whose
    TTL attribute is equal to or less than the current time (AWS docs, "Using time to live
    (TTL) in DynamoDB", page "Working with expired items and time to live (TTL)"). So a
    decision treats such an item as gone, and does not depend on when the deletion ran (the
    local stack sweeps hourly, AWS when it gets to it). An item without ``expires_at`` never
    expires, as for TTL."""
    expires_at = item.get("expires_at")
    return not isinstance(expires_at, int) or expires_at > _epoch(now)


def _epoch(moment: datetime) -> int:
    """Epoch seconds, as the TTL attribute holds them (in-app reads compare the same way)."""
    return int(moment.timestamp())


def _hours_bytes(hours: Mapping[int, int]) -> bytes:
    return bytes(byte for hour in sorted(hours) for byte in (hour, min(hours[hour], 255)))


def _hours_from(raw: bytes) -> dict[int, int]:
    return {raw[at]: raw[at + 1] for at in range(0, len(raw) - 1, 2)}


def _binary(value: Any) -> bytes:
    # boto3 wraps binary values in Binary, whose bytes() are the value.
    return bytes(value)


def _miss_entry(miss: Miss) -> list[str | None]:
    """The outcome is written only when it is not the usual ``not_matched``."""
    entry = [miss.at, miss.occurrence, miss.reason]
    return entry if miss.outcome == "not_matched" else [*entry, miss.outcome]


def put_if(
    client: DynamoDBClient,
    table: str,
    item: Mapping[str, Any],
    condition: str,
    values: Mapping[str, Any] | None = None,
    names: Mapping[str, str] | None = None,
) -> bool:
    """One conditional PutItem of a plain item; False when the condition did not hold.
    Every other error is raised, as the ports' errors."""
    request = _conditional(table, condition, values, names)
    request["Item"] = to_attributes(item)
    try:
        with aws_call("a conditional write"):
            client.put_item(**request)
    except Conflict:
        return False
    return True


def delete_if(
    client: DynamoDBClient,
    table: str,
    key: Mapping[str, Any],
    condition: str,
    values: Mapping[str, Any] | None = None,
    names: Mapping[str, str] | None = None,
) -> bool:
    """One conditional DeleteItem; False when the condition did not hold (or the item is
    gone). Every other error is raised, as the ports' errors."""
    request = _conditional(table, condition, values, names)
    request["Key"] = to_attributes(key)
    try:
        with aws_call("a conditional delete"):
            client.delete_item(**request)
    except Conflict:
        return False
    return True


def _conditional(
    table: str,
    condition: str,
    values: Mapping[str, Any] | None,
    names: Mapping[str, str] | None,
) -> dict[str, Any]:
    """A conditional request's shared part: the table, the condition and its placeholders."""
    request: dict[str, Any] = {"TableName": table, "ConditionExpression": condition}
    if values:
        request["ExpressionAttributeValues"] = dict(values)
    if names:
        request["ExpressionAttributeNames"] = dict(names)
    return request


def to_attributes(item: Mapping[str, Any]) -> dict[str, Any]:
    """Plain values to DynamoDB JSON (the adapters' one serialiser)."""
    return {name: _serializer.serialize(value) for name, value in item.items()}


def from_attributes(raw: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _number(_deserializer.deserialize(value)) for name, value in raw.items()}


def _number(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {key: _number(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [_number(inner) for inner in value]
    return value


def _unique_by_key(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """BatchWriteItem refuses two writes to one key; the first occurrence wins."""
    seen: set[tuple[str, str]] = set()
    unique = []
    for item in items:
        key = (item["pk"]["S"], item["sk"]["S"])
        if key not in seen:
            seen.add(key)
            unique.append(item)
    return unique


def _chunks(values: Sequence[_T], size: int) -> Iterator[Sequence[_T]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _backoff(attempt: int) -> None:
    time.sleep(min(0.05 * 2**attempt, 1.0))
