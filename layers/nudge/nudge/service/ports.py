"""What the services need from the outside world, and how it may fail.

The adapters implement these; the services and entrypoints see nothing else. An adapter
raises only the errors below (``nudge.adapters.aws_errors`` translates botocore's), so no
``ClientError`` crosses into a service, and an entrypoint picks the response for each.

Each port is a ``Protocol``: an adapter satisfies it by its shape, without inheriting, and
``bootstrap`` (which hands the adapters to the services) is where mypy checks that. The
in-memory fakes in ``tests/fakes.py`` satisfy them too, and
``tests/integration/test_port_contracts.py`` runs the same cases against both, so a fake
cannot promise what the adapter does not do.

Domain types are imported for annotations only: Ingest imports this module for its
errors, and must not pay for the trigger engine or Jinja2 at cold start. Delivery's own
ports (the mailer, the webhook poster, SES's receipts) and the values they speak in are in
``delivery_ports.py``, which only Send and Feedback import.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from nudge.domain.experiments.attribution import Assignment
    from nudge.domain.experiments.counts import CountedUnder, Measure, Tally
    from nudge.domain.in_app import InAppMessage
    from nudge.domain.intake import StoredEvent
    from nudge.domain.messages import FireMessage
    from nudge.domain.person import PersonId
    from nudge.domain.policy import ContactState
    from nudge.domain.profile import Profile
    from nudge.domain.triggers.engine import Decision, Pending
    from nudge.domain.triggers.model import Reentry

__all__ = [
    "MAX_DELAY",
    "Claim",
    "Conflict",
    "ContactRecords",
    "CounterReader",
    "DecisionRecords",
    "EngineRecords",
    "EventWriter",
    "ExperimentRecords",
    "FireLedger",
    "FireQueue",
    "FireRecords",
    "Forbidden",
    "InAppInbox",
    "LedgerEntry",
    "Missing",
    "ModelArtefacts",
    "OutsideError",
    "PersonData",
    "PersonStore",
    "ProfileReader",
    "Refused",
    "Scheduler",
    "SocketPoster",
    "StoredEvents",
    "SuppressionList",
    "Timers",
    "Unavailable",
    "VersionConflict",
]


# ---- how a call may fail ------------------------------------------------------------------


class OutsideError(Exception):
    """A call to the outside world did not do what was asked."""


class Unavailable(OutsideError):
    """Throttled, overloaded or unreachable: the same call may succeed later."""


class Conflict(OutsideError):
    """A condition did not hold (someone else wrote first, or the thing already exists)."""


class Missing(OutsideError):
    """What the call names does not exist."""


class Forbidden(OutsideError):
    """The caller may not do this: a permission is missing, which a retry will not fix."""


class Refused(OutsideError):
    """The request was refused as malformed or over a limit: a bug, not a passing state."""


class VersionConflict(Conflict):
    """Another sender changed the contact record first; read it again and decide again."""


# ---- what the ports speak in ---------------------------------------------------------------

# What claiming a fire in the ledger found: nobody had it (new), this fire had it but never
# reached the queue (resume), this fire had it and was queued (duplicate), another fire of
# the trigger holds it under its re-entry rule (blocked).
Claim = Literal["new", "resume", "duplicate", "blocked"]

# The longest delay the send queue can hold a fire back by (SQS's DelaySeconds: 15 minutes).
MAX_DELAY = 900


@dataclass(frozen=True)
class LedgerEntry:
    """The fire ledger's entry for an occurrence: which fire claimed it, when, and whether
    the fire reached the send queue."""

    fire_id: str
    occurrence: str
    fired_at: str
    enqueued: bool


# ---- people: profiles and events -----------------------------------------------------------


class EventWriter(Protocol):
    """What Ingest and Track write: events under their person, and identity links."""

    def put_events(
        self, events: Sequence[StoredEvent], new_links: Mapping[str, str], retention: timedelta
    ) -> int:
        """Stores the events (once per messageId) and links; returns the write requests."""
        ...

    def linked_users(self, anonymous_ids: Iterable[str]) -> dict[str, str]:
        """For each anonymousId that has been linked to a userId, that userId."""
        ...


class ProfileReader(Protocol):
    def load_profiles(
        self, persons: Iterable[PersonId], now: datetime | None = None
    ) -> dict[PersonId, Profile]:
        """The stored profiles of these persons; someone never seen is left out. A decision
        passes its ``now``: a profile expired by then (past its TTL, not deleted yet) is
        left out too, as if deleted. Without, every profile still stored (an export)."""
        ...


class PersonStore(ProfileReader, Protocol):
    """What Evaluate reads and writes about people: profiles, events, links, the seen index."""

    def save_profiles(self, profiles: Sequence[Profile]) -> set[PersonId]:
        """Writes the profiles; returns the persons whose profile could not be written."""
        ...

    def save_rescored(self, profile: Profile) -> bool:
        """Writes a profile the sweep re-scored, only if no event has been folded into it
        since it was read (its ``applied_seq`` is still the stored one); False if one has:
        that fold scored the person afresh, and its write stands."""
        ...

    def events_since(
        self, person: PersonId, since: datetime, now: datetime
    ) -> list[dict[str, Any]]:
        """One partition's event bodies at or after ``since``, oldest first; those stored in
        an item expired by ``now`` (past its TTL, not deleted yet) are left out."""
        ...

    def linked_users(self, anonymous_ids: Iterable[str]) -> dict[str, str]:
        """For each anonymousId that has been linked to a userId, that userId."""
        ...

    def persons_seen_in(self, hour: datetime) -> list[PersonId]:
        """Everyone whose saved profile is filed under this UTC hour (``Profile.sweep_hour``)."""
        ...

    def forgotten(self, persons: Iterable[PersonId]) -> set[PersonId]:
        """Those of ``persons`` who asked to be forgotten (a tombstone stands for them)."""
        ...

    def drop_event(self, person: PersonId, item_id: str) -> None:
        """Deletes the event item with this id (a lone event's messageId, or a group's:
        ``StoredEvent.item_id``), idempotently: a forgotten person's late arrival."""
        ...


class StoredEvents(Protocol):
    """Every event the table keeps, for training (``nudge train --table``, the Train
    function): a read of the whole table, never on an event's path."""

    def every_event(self) -> Iterator[dict[str, Any]]:
        """Each stored event as one item exported from the table (its partition's key and
        its body as JSON text, ``store.readable_events``), in no particular order."""
        ...


class ModelArtefacts(Protocol):
    """Where the trained models live: a folder, or the models bucket on AWS."""

    def read(self, prediction: str) -> bytes | None:
        """The artefact's bytes; None when there is none. Unreadable: ``Unavailable``."""
        ...

    def write(self, prediction: str, artefact: bytes) -> None:
        """Replaces the artefact whole: a reader sees the old one or the new, never half."""
        ...


# ---- the engine's records ------------------------------------------------------------------


class Timers(Protocol):
    def save_timer(self, timer: Pending, schedule: str, replacing: str | None = None) -> bool:
        """False when the occurrence already has a timer with another schedule: the first
        one stands. With ``replacing`` (a journey moving on), True only in place of that
        schedule's timer (or if this one is saved already)."""
        ...

    def delete_timer(self, timer: Pending, schedule: str | None = None) -> None:
        """Deletes the occurrence's timer; with ``schedule``, only while it holds that one."""
        ...

    def timers(self, persons: Iterable[PersonId]) -> list[tuple[Pending, str]]:
        """Pending timers under these persons' partitions, with their schedule names."""
        ...


class FireLedger(Protocol):
    """One conditional write decides whether a fire happens: at most once per occurrence
    (``every_time``), per person (``once``) or per period (``once_per``)."""

    def claim(
        self,
        person: PersonId,
        trigger: str,
        occurrence: str,
        fire_id: str,
        at: datetime,
        reentry: Reentry,
    ) -> tuple[Claim, LedgerEntry | None]:
        """Claims the fire; the entry that stood in its way, unless it is new. Raises
        Conflict when the entry vanished while it was being read."""
        ...

    def mark_enqueued(
        self, person: PersonId, trigger: str, occurrence: str, reentry: Reentry
    ) -> None: ...


class FireRecords(Protocol):
    def save_fire(self, fire: FireMessage) -> None: ...


class DecisionRecords(Protocol):
    def save_decisions(self, decisions: Sequence[Decision]) -> None:
        """Keeps what was decided and why, for explain. Raises Unavailable when the store
        kept refusing."""
        ...


class EngineRecords(Timers, FireLedger, FireRecords, DecisionRecords, Protocol):
    """Everything Evaluate keeps beside the profiles."""


# ---- delivery ------------------------------------------------------------------------------


class CounterReader(Protocol):
    def tallies(self, trigger: str, version: str) -> list[Tally]:
        """The counters of one version of a trigger's experiment, by arm and day."""
        ...


class ExperimentRecords(CounterReader, Protocol):
    """Assignments and the counters reports read. Each count happens once: the fact that
    makes it (an assignment, a conversion, a fire counted) and the count are one write."""

    def assign(self, person: PersonId, assignment: Assignment) -> bool:
        """Opens and counts the assignment unless one of the person's in that experiment
        version is still open at ``assignment.since``; True when opened now."""
        ...

    def assignments(self, persons: Iterable[PersonId]) -> list[tuple[PersonId, Assignment]]:
        """The latest assignment of each of these partitions in each experiment version."""
        ...

    def convert(
        self, person: PersonId, assignment: Assignment, event_seq: int, value: float, at: datetime
    ) -> bool:
        """Counts a goal event (``event_seq``, increasing per person) for an open assignment:
        converted the first time, ``value`` as revenue each time. False if counted before,
        or the assignment was closed or replaced since it was read."""
        ...

    def count_fire(self, fire_id: str, measure: Measure, under: CountedUnder, at: datetime) -> bool:
        """Counts a fire sent (opened, clicked ...) once; False when counted before."""
        ...

    def sent_as(self, fire_id: str) -> CountedUnder | None:
        """Where the fire's send was counted (its trigger, version and arm), if it was:
        its opens, clicks and complaints are counted there too."""
        ...


class ContactRecords(Protocol):
    """The contact policy's record per person, written only if nobody wrote it since."""

    def load(self, person: PersonId) -> ContactState:
        """The record, or an empty one (version 0) for someone never contacted."""
        ...

    def save(self, person: PersonId, state: ContactState) -> ContactState:
        """Writes ``state`` if the stored version is still ``state.version``; returns it with
        the next version. Raises VersionConflict when another writer came first."""
        ...


class SuppressionList(Protocol):
    """Addresses that asked never to be written to again, per channel; case does not count."""

    def is_suppressed(self, channel: str, address: str) -> bool: ...

    def suppress(self, channel: str, address: str, reason: str, at: datetime) -> bool:
        """False when it already was suppressed (the first reason and time stay)."""
        ...


class LinkEventRetries(Protocol):
    """Where Track puts a link event it could not store, to store it later."""

    def send(self, body: str) -> None: ...


class AudienceHours(Protocol):
    """The whole audience's engagement by hour of the week (domain/engagement.py): the
    pattern a person's best hour is smoothed towards. Approximate by design: a prior."""

    def add(self, counts: Mapping[int, int]) -> None:
        """Adds these engagements (hour of week -> count) to the audience's."""
        ...

    def hours(self, now: datetime) -> dict[int, int]:
        """The audience's counts, as recently read as the implementation keeps them."""
        ...


class InAppInbox(Protocol):
    """The in-app messages no page has shown yet, and the pages open now, per person.

    A message is kept until one page takes it (``take`` is a conditional delete: exactly
    one caller gets True) or it expires; reads never return an expired one, whatever the
    table's TTL has not deleted yet. A connection is kept until it closes or ``until``.
    """

    def keep(self, person: PersonId, message: InAppMessage) -> bool:
        """Idempotent: False when the message was kept already (a redelivered fire)."""
        ...

    def pending(self, persons: Sequence[PersonId], now: datetime) -> list[InAppMessage]: ...

    def take(self, persons: Sequence[PersonId], fire_id: str, now: datetime) -> bool: ...

    def connect(
        self, person: PersonId, connection_id: str, now: datetime, until: datetime
    ) -> None: ...

    def disconnect(self, person: PersonId, connection_id: str) -> None:
        """Idempotent: forgetting a connection that is gone already is success."""
        ...

    def connections(self, person: PersonId, now: datetime) -> list[str]: ...


class SocketPoster(Protocol):
    """API Gateway's Management API: a frame to one open WebSocket."""

    def post(self, connection_id: str, frame: str) -> bool:
        """False when the connection is gone (closed, or never was)."""
        ...


class PersonData(Protocol):
    """Everything stored under a person's partitions, for export and erasure."""

    def items(self, person: PersonId) -> list[dict[str, Any]]:
        """Every item under the person's partition key, as plain values."""
        ...

    def delete(self, person: PersonId, sort_keys: Sequence[str]) -> None:
        """Deletes those items of the person's (idempotent)."""
        ...

    def tombstone(self, person: PersonId, at: datetime) -> None:
        """Marks the person forgotten, for good (idempotent)."""
        ...


class Scheduler(Protocol):
    """One-time reminders by name: arming a name twice is one reminder (the first), and
    cancelling one that is gone or never was is success."""

    def arm(
        self, name: str, due: datetime, target_arn: str, payload: dict[str, Any], now: datetime
    ) -> None: ...

    def cancel(self, name: str) -> None: ...


class FireQueue(Protocol):
    def send(self, fire: FireMessage, delay_seconds: int = 0) -> None:
        """Queues the fire, handed out ``delay_seconds`` later (0 to MAX_DELAY; more is a
        ValueError)."""
        ...
