"""In-memory fakes of the ports in ``nudge.service.ports``, for the services' unit tests.

Each is a few dicts, behaving like its adapter in what the services rely on: the ledger's
and the timers' conditional writes, the contact record's version check, schedules by name,
suppression that keeps its first reason. ``tests/integration/test_port_contracts.py`` runs
the same cases against each fake and its adapter on moto, so they cannot drift apart.
Beyond the ports, each fake keeps what it was given in plain attributes for tests to read,
and a few can be told to misbehave the way the outside world does.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from nudge.domain.experiments.attribution import Assignment
from nudge.domain.experiments.counts import CountedUnder, Measure, Tally, merge
from nudge.domain.in_app import InAppMessage
from nudge.domain.intake import Event, StoredEvent
from nudge.domain.messages import FireMessage
from nudge.domain.person import PersonId
from nudge.domain.policy import ContactState
from nudge.domain.profile import Profile, expiry
from nudge.domain.timefmt import hour_of, iso
from nudge.domain.triggers.engine import Decision, Pending
from nudge.domain.triggers.model import Reentry
from nudge.service.delivery_ports import Outgoing, Receipt, WebhookResult
from nudge.service.ports import (
    MAX_DELAY,
    Claim,
    LedgerEntry,
    OutsideError,
    Unavailable,
    VersionConflict,
)

__all__ = [
    "Armed",
    "FakeMailer",
    "FakeQueue",
    "FakeScheduler",
    "InMemoryContacts",
    "InMemoryEngineStore",
    "InMemoryExperiments",
    "InMemoryInAppInbox",
    "InMemoryModels",
    "InMemoryPeople",
    "InMemoryReceipts",
    "InMemoryStoredEvents",
    "InMemorySuppressionList",
    "Queued",
    "RecordingSockets",
    "ScriptedWebhook",
    "StuckReceipts",
]

_WRITES_PER_REQUEST = 25  # BatchWriteItem's limit, for put_events' answer


class InMemoryPeople:
    """PersonStore: profiles, events by partition (keyed by message id, as the table keys
    them), and anonymousId -> userId links. Each profile and event has the ``expires_at``
    the table's item would have (``profile_kept`` as ``EventStore``'s; None: profiles never
    expire): nothing is deleted, as TTL may not have run yet, and a decision's reads leave
    it out from that second on."""

    def __init__(self, profile_kept: timedelta | None = None) -> None:
        self.profiles: dict[PersonId, Profile] = {}
        self.events: dict[PersonId, dict[str, Event]] = {}
        self.links: dict[str, str] = {}
        self.tombstones: set[PersonId] = set()  # persons forgotten on request
        self.profile_kept = profile_kept
        self.expires_at: dict[tuple[PersonId, str | None], int] = {}  # (person, message id)

    def put_events(
        self, events: Sequence[StoredEvent], new_links: Mapping[str, str], retention: timedelta
    ) -> int:
        """What Ingest writes: one item per message id, so a message sent again overwrites
        itself (within one call the first copy is kept, as one batch write must)."""
        batch: dict[tuple[PersonId, str], Event] = {}
        for stored in events:
            batch.setdefault((stored.person, stored.event.message_id), stored.event)
        # The table packs a request's events for a person into one item, which expires a
        # second after the latest of them has been kept ``retention``.
        latest: dict[PersonId, datetime] = {}
        for (person, message_id), event in batch.items():
            self.events.setdefault(person, {})[message_id] = event
            latest[person] = max(latest.get(person, event.timestamp), event.timestamp)
        for person, message_id in batch:
            self.expires_at[(person, message_id)] = _epoch(latest[person] + retention) + 1
        self.links.update(new_links)
        return -(-(len(events) + len(new_links)) // _WRITES_PER_REQUEST)

    def load_profiles(
        self, persons: Iterable[PersonId], now: datetime | None = None
    ) -> dict[PersonId, Profile]:
        return {
            person: self.profiles[person]
            for person in set(persons)
            if person in self.profiles and (now is None or self._live(person, None, now))
        }

    def save_profiles(self, profiles: Sequence[Profile]) -> set[PersonId]:
        for profile in profiles:
            self.profiles[profile.person] = profile
            hour = profile.sweep_hour()
            if self.profile_kept is not None and hour is not None:
                self.expires_at[(profile.person, None)] = _epoch(expiry(hour, self.profile_kept))
            else:  # the item is written whole: without expires_at it never expires
                self.expires_at.pop((profile.person, None), None)
        return set()

    def save_rescored(self, profile: Profile) -> bool:
        stored = self.profiles.get(profile.person)
        if stored is None or stored.applied_seq != profile.applied_seq:
            return False
        self.save_profiles([profile])
        return True

    def events_since(
        self, person: PersonId, since: datetime, now: datetime
    ) -> list[dict[str, Any]]:
        # Compared as the table compares them: the stored millisecond text.
        bodies = [
            _as_stored(event.body)
            for message_id, event in self.events.get(person, {}).items()
            if iso(event.timestamp) >= iso(since) and self._live(person, message_id, now)
        ]
        return sorted(
            bodies, key=lambda body: (body.get("timestamp", ""), body.get("messageId", ""))
        )

    def linked_users(self, anonymous_ids: Iterable[str]) -> dict[str, str]:
        return {anon: self.links[anon] for anon in set(anonymous_ids) if anon in self.links}

    def persons_seen_in(self, hour: datetime) -> list[PersonId]:
        return sorted(
            person
            for person, profile in self.profiles.items()
            if profile.sweep_hour() == hour_of(hour)
        )

    def forgotten(self, persons: Iterable[PersonId]) -> set[PersonId]:
        return set(persons) & self.tombstones

    def drop_event(self, person: PersonId, item_id: str) -> None:
        self.events.get(person, {}).pop(item_id, None)

    def _live(self, person: PersonId, message_id: str | None, now: datetime) -> bool:
        """The store's rule: an item whose expires_at is at or before ``now`` is gone."""
        expires_at = self.expires_at.get((person, message_id))
        return expires_at is None or expires_at > _epoch(now)


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _as_stored(body: Mapping[str, Any]) -> dict[str, Any]:
    """A fresh copy, as a read from the table gives: the caller cannot change what is kept."""
    copy: dict[str, Any] = json.loads(json.dumps(body))
    return copy


class InMemoryEngineStore:
    """EngineRecords: timers, the fire ledger, fire records and decision records."""

    def __init__(self) -> None:
        self.timer_items: dict[tuple[PersonId, str, str], tuple[Pending, str]] = {}
        self.ledger: dict[tuple[PersonId, str, str | None], LedgerEntry] = {}
        self.fires: dict[tuple[PersonId, str, str, str], FireMessage] = {}
        self.decisions: list[Decision] = []

    # ---- timers: the first schedule of an occurrence stands

    def save_timer(self, timer: Pending, schedule: str, replacing: str | None = None) -> bool:
        key = (timer.person, timer.trigger, timer.occurrence)
        standing = self.timer_items.get(key)
        if replacing is not None:
            if standing is None or standing[1] not in (replacing, schedule):
                return False
        elif standing is not None and standing[1] != schedule:
            return False
        self.timer_items[key] = (timer, schedule)
        return True

    def delete_timer(self, timer: Pending, schedule: str | None = None) -> None:
        key = (timer.person, timer.trigger, timer.occurrence)
        standing = self.timer_items.get(key)
        if standing is not None and schedule in (None, standing[1]):
            del self.timer_items[key]

    def timers(self, persons: Iterable[PersonId]) -> list[tuple[Pending, str]]:
        return [
            self.timer_items[key]
            for person in persons
            for key in sorted(k for k in self.timer_items if k[0] == person)
        ]

    # ---- the fire ledger: the same conditions as the adapter's conditional write

    def claim(
        self,
        person: PersonId,
        trigger: str,
        occurrence: str,
        fire_id: str,
        at: datetime,
        reentry: Reentry,
    ) -> tuple[Claim, LedgerEntry | None]:
        key = _ledger_key(person, trigger, occurrence, reentry)
        existing = self.ledger.get(key)
        if existing is None or _period_over(existing, fire_id, at, reentry):
            self.ledger[key] = LedgerEntry(fire_id, occurrence, iso(at), enqueued=False)
            return "new", None
        if existing.fire_id != fire_id:
            return "blocked", existing
        # As the adapter: a fire's record, saved once it is queued, says it was handed on.
        saved = (person, existing.fired_at, trigger, existing.occurrence) in self.fires
        return ("duplicate" if existing.enqueued or saved else "resume"), existing

    def mark_enqueued(
        self, person: PersonId, trigger: str, occurrence: str, reentry: Reentry
    ) -> None:
        key = _ledger_key(person, trigger, occurrence, reentry)
        if key in self.ledger:
            self.ledger[key] = replace(self.ledger[key], enqueued=True)

    # ---- fires and decisions

    def save_fire(self, fire: FireMessage) -> None:
        self.fires[(fire.person, fire.fired_at, fire.trigger, str(fire.occurrence))] = fire

    def save_decisions(self, decisions: Sequence[Decision]) -> None:
        self.decisions += decisions


def _ledger_key(
    person: PersonId, trigger: str, occurrence: str, reentry: Reentry
) -> tuple[PersonId, str, str | None]:
    """Per occurrence for every-time triggers; per trigger when re-entry is limited."""
    return person, trigger, occurrence if reentry.mode == "every_time" else None


def _period_over(existing: LedgerEntry, fire_id: str, at: datetime, reentry: Reentry) -> bool:
    """A once_per trigger may fire again, as another fire, once its period has passed."""
    if reentry.mode != "once_per" or reentry.period is None:
        return False
    return existing.fired_at < iso(at - reentry.period) and existing.fire_id != fire_id


class InMemoryContacts:
    """ContactRecords with the adapter's version check. ``keep_changing_after(saves=n)``
    plays a busy record: after n successful saves, another writer wins every race."""

    def __init__(self) -> None:
        self.records: dict[PersonId, ContactState] = {}
        self._saves_before_conflicts: int | None = None

    def keep_changing_after(self, saves: int) -> None:
        self._saves_before_conflicts = saves

    def load(self, person: PersonId) -> ContactState:
        return self.records.get(person, ContactState())

    def save(self, person: PersonId, state: ContactState) -> ContactState:
        stored = self.load(person)
        if self._another_writer_wins():
            self.records[person] = replace(stored, version=stored.version + 1)
            raise VersionConflict(str(person))
        if stored.version != state.version:
            raise VersionConflict(str(person))
        saved = replace(state, version=state.version + 1)
        self.records[person] = saved
        return saved

    def _another_writer_wins(self) -> bool:
        if self._saves_before_conflicts is None:
            return False
        if self._saves_before_conflicts > 0:
            self._saves_before_conflicts -= 1
            return False
        return True


class InMemorySuppressionList:
    """SuppressionList: by channel and address, case and surrounding spaces ignored."""

    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], tuple[str, datetime]] = {}

    def suppress(self, channel: str, address: str, reason: str, at: datetime) -> bool:
        key = _suppression_key(channel, address)
        if key in self.entries:
            return False
        self.entries[key] = (reason, at)
        return True

    def is_suppressed(self, channel: str, address: str) -> bool:
        return _suppression_key(channel, address) in self.entries

    def reason(self, channel: str, address: str) -> str | None:
        entry = self.entries.get(_suppression_key(channel, address))
        return entry[0] if entry else None


def _suppression_key(channel: str, address: str) -> tuple[str, str]:
    return channel, address.strip().lower()


class InMemoryReceipts:
    """Receipts by fire id; recording one again replaces it with the same."""

    def __init__(self) -> None:
        self.receipts: dict[str, Receipt] = {}

    def record(self, fire_id: str, message_id: str, at: datetime) -> None:
        self.receipts[fire_id] = Receipt(fire_id, message_id, iso(at))

    def find(self, fire_id: str) -> Receipt | None:
        return self.receipts.get(fire_id)


@dataclass
class StuckReceipts:
    """ReceiptFailures: how many SES events Feedback's failure queue holds, and how often
    Send asked."""

    failed: int = 0
    asked: int = 0

    def waiting(self) -> int:
        self.asked += 1
        return self.failed


class InMemoryExperiments:
    """Assignments by partition and key, counters by (trigger, version, arm, day), and the
    facts that make each count happen once, as the adapter's conditions keep them."""

    def __init__(self) -> None:
        self.assigned: dict[tuple[PersonId, str, str], Assignment] = {}
        self.goal_seq: dict[tuple[PersonId, str, str], int] = {}
        self.counted: dict[tuple[str, str], CountedUnder] = {}
        self.counters: dict[tuple[str, str, str, Any], dict[Measure, float]] = {}

    def assign(self, person: PersonId, assignment: Assignment) -> bool:
        key = (person, assignment.trigger, assignment.version)
        current = self.assigned.get(key)
        if current is not None and current.until > assignment.since:
            return False
        self.assigned[key] = assignment
        self.goal_seq.pop(key, None)
        self._add(
            assignment.trigger,
            assignment.version,
            assignment.arm,
            assignment.since,
            {"assigned": 1},
        )
        return True

    def assignments(self, persons: Iterable[PersonId]) -> list[tuple[PersonId, Assignment]]:
        wanted = list(dict.fromkeys(persons))
        return [(key[0], found) for key, found in self.assigned.items() if key[0] in wanted]

    def convert(
        self, person: PersonId, assignment: Assignment, event_seq: int, value: float, at: datetime
    ) -> bool:
        key = (person, assignment.trigger, assignment.version)
        current = self.assigned.get(key)
        if current is None or current.since != assignment.since or current.until <= at:
            return False
        first = not current.converted  # as stored: a stale read cannot convert it twice
        if not first and value == 0:
            return False
        if self.goal_seq.get(key, -1) >= event_seq:
            return False
        self.assigned[key] = current.converted_now()
        self.goal_seq[key] = event_seq
        counts: dict[Measure, float] = {"revenue": value}
        if first:
            counts["converted"] = 1
        self._add(assignment.trigger, assignment.version, assignment.arm, at, counts)
        return True

    def count_fire(self, fire_id: str, measure: Measure, under: CountedUnder, at: datetime) -> bool:
        if (fire_id, measure) in self.counted:
            return False
        self.counted[(fire_id, measure)] = under
        self._add(under.trigger, under.version, under.arm, at, {measure: 1})
        return True

    def sent_as(self, fire_id: str) -> CountedUnder | None:
        return self.counted.get((fire_id, "sent"))

    def tallies(self, trigger: str, version: str) -> list[Tally]:
        return merge(
            Tally(key[1], key[2], key[3], counts)
            for key, counts in self.counters.items()
            if key[0] == trigger and key[1] == version
        )

    def _add(
        self, trigger: str, version: str, arm: str, at: datetime, counts: Mapping[Measure, float]
    ) -> None:
        day = at.astimezone(UTC).date()
        summed = self.counters.setdefault((trigger, version, arm, day), {})
        for measure, amount in counts.items():
            # DynamoDB's ADD sums numbers in decimal: 0.1 + 0.2 is 0.3, not 0.30000000000000004
            total = Decimal(repr(float(summed.get(measure, 0)))) + Decimal(repr(float(amount)))
            summed[measure] = float(total)


@dataclass(frozen=True)
class Armed:
    name: str
    due: datetime
    target_arn: str
    payload: dict[str, Any]


class FakeScheduler:
    """Scheduler: one reminder per name (the first armed stands), cancelling is forgiving."""

    def __init__(self) -> None:
        self.schedules: dict[str, Armed] = {}
        self.calls: list[str] = []  # "create <name>" / "delete <name>": what AWS would bill

    def arm(
        self, name: str, due: datetime, target_arn: str, payload: dict[str, Any], now: datetime
    ) -> None:
        self.calls.append(f"create {name}")
        self.schedules.setdefault(name, Armed(name, due, target_arn, payload))

    def cancel(self, name: str) -> None:
        self.calls.append(f"delete {name}")
        self.schedules.pop(name, None)


@dataclass(frozen=True)
class Queued:
    fire: FireMessage
    delay_seconds: int


@dataclass
class FakeQueue:
    """FireQueue: every fire sent, in order, with the delay it asked for."""

    messages: list[Queued] = field(default_factory=list)

    def send(self, fire: FireMessage, delay_seconds: int = 0) -> None:
        if not 0 <= delay_seconds <= MAX_DELAY:
            raise ValueError(f"an SQS delay is 0 to {MAX_DELAY} seconds, not {delay_seconds}")
        self.messages.append(Queued(fire, delay_seconds))


class FakeMailer:
    """Mailer: keeps what it accepted. ``answer_unavailable(times)`` plays SES throttling."""

    def __init__(self) -> None:
        self.sent: list[Outgoing] = []
        self.refusals = 0  # send attempts answered Unavailable
        self._unavailable_answers = 0
        self._permanent_refusal: OutsideError | None = None

    def answer_unavailable(self, times: int = 1) -> None:
        self._unavailable_answers = times

    def refuse_for_good(self, error: OutsideError) -> None:
        """Every later send is answered with ``error`` (SES rejecting the message, say)."""
        self._permanent_refusal = error

    def send(self, outgoing: Outgoing, epoch_seconds: float) -> str:
        if self._unavailable_answers > 0:
            self._unavailable_answers -= 1
            self.refusals += 1
            raise Unavailable("SES send_email: TooManyRequestsException (rate exceeded)")
        if self._permanent_refusal is not None:
            self.refusals += 1
            raise self._permanent_refusal
        self.sent.append(outgoing)
        return f"ses-{len(self.sent)}"


DELIVERED = WebhookResult(delivered=True, status=200, retryable=False, reason="200 OK")


@dataclass
class ScriptedWebhook:
    """WebhookPoster answering each post with the next result of its script, then 200."""

    script: list[WebhookResult] = field(default_factory=list)
    posts: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    timeout: float = 5.0

    def send(self, url: str, message_id: str, payload: dict[str, Any]) -> WebhookResult:
        self.posts.append((url, message_id, payload))
        return self.script.pop(0) if self.script else DELIVERED


class InMemoryInAppInbox:
    """InAppInbox: messages and open pages per person, each with its expiry. Keeping a fire
    twice keeps the first; reads and takes skip what expired, whatever is still held (as
    the table's TTL deletes late). ``answer_unavailable(times)`` plays DynamoDB throttling
    on the next keeps."""

    def __init__(self) -> None:
        self.messages: dict[PersonId, dict[str, InAppMessage]] = {}
        self.shown: set[str] = set()  # fire ids a page took: kept until expiry, never again
        self.open_pages: dict[PersonId, dict[str, datetime]] = {}  # connection -> until
        self._unavailable_answers = 0

    def answer_unavailable(self, times: int = 1) -> None:
        self._unavailable_answers = times

    def keep(self, person: PersonId, message: InAppMessage) -> bool:
        if self._unavailable_answers > 0:
            self._unavailable_answers -= 1
            raise Unavailable("DynamoDB put_item: ProvisionedThroughputExceededException")
        kept = self.messages.setdefault(person, {})
        if message.fire_id in kept:
            return False
        kept[message.fire_id] = message
        return True

    def pending(self, persons: Sequence[PersonId], now: datetime) -> list[InAppMessage]:
        found = [
            message
            for person in persons
            for message in self.messages.get(person, {}).values()
            if message.expires_at > now and message.fire_id not in self.shown
        ]
        return sorted(found, key=lambda message: message.expires_at)

    def take(self, persons: Sequence[PersonId], fire_id: str, now: datetime) -> bool:
        for person in persons:
            kept = self.messages.get(person, {})
            message = kept.get(fire_id)
            if message is not None and message.expires_at > now and fire_id not in self.shown:
                self.shown.add(fire_id)
                return True
        return False

    def connect(self, person: PersonId, connection_id: str, now: datetime, until: datetime) -> None:
        self.open_pages.setdefault(person, {})[connection_id] = until

    def disconnect(self, person: PersonId, connection_id: str) -> None:
        self.open_pages.get(person, {}).pop(connection_id, None)

    def connections(self, person: PersonId, now: datetime) -> list[str]:
        pages = self.open_pages.get(person, {})
        return sorted(connection for connection, until in pages.items() if until > now)


@dataclass
class RecordingSockets:
    """SocketPoster: every frame posted to an open connection, in order; a connection in
    ``gone`` answers False (API Gateway's GoneException) and receives nothing."""

    gone: set[str] = field(default_factory=set)
    posts: list[tuple[str, str]] = field(default_factory=list)  # (connection, frame)
    refused: list[str] = field(default_factory=list)  # connections that answered gone

    def post(self, connection_id: str, frame: str) -> bool:
        if connection_id in self.gone:
            self.refused.append(connection_id)
            return False
        self.posts.append((connection_id, frame))
        return True

    def frames(self, connection_id: str) -> list[dict[str, Any]]:
        """What one connection received, each frame read back from its JSON."""
        return [json.loads(frame) for to, frame in self.posts if to == connection_id]


@dataclass
class InMemoryAudience:
    """AudienceHours: the audience's engagement by hour of week, and every add it was given."""

    counts: Counter[int] = field(default_factory=Counter)
    adds: list[dict[int, int]] = field(default_factory=list)

    def add(self, counts: Mapping[int, int]) -> None:
        self.adds.append(dict(counts))
        self.counts.update(counts)

    def hours(self, now: datetime) -> dict[int, int]:
        return dict(self.counts)


@dataclass
class InMemoryModels:
    """ModelArtefacts: artefacts by prediction, every write kept in order, and a knob for an
    outside world that will not answer (``unavailable``)."""

    artefacts: dict[str, bytes] = field(default_factory=dict)
    writes: list[str] = field(default_factory=list)
    unavailable: bool = False

    def read(self, prediction: str) -> bytes | None:
        if self.unavailable:
            raise Unavailable(f"reading {prediction}'s model: ServiceUnavailable")
        return self.artefacts.get(prediction)

    def write(self, prediction: str, artefact: bytes) -> None:
        self.artefacts[prediction] = artefact
        self.writes.append(prediction)


@dataclass
class InMemoryStoredEvents:
    """StoredEvents: the items an export of the table holds, handed over as given."""

    items: list[dict[str, Any]] = field(default_factory=list)

    def every_event(self) -> Iterator[dict[str, Any]]:
        yield from self.items
