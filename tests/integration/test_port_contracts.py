"""The ports' contracts, run against each in-memory fake (tests/fakes.py) and against the
real adapter on moto: what the services rely on holds for both, so the fakes the unit
tests use cannot drift from what AWS does.

Each fixture below is parametrised ``fake`` / ``moto`` and gives the port, with whatever
the case needs to look inside (a schedule's payload, a suppression's reason), read from
the fake's dicts or from moto."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from moto.sqs.models import sqs_backends
from nudge.adapters import keys
from nudge.adapters.contacts import ContactStore
from nudge.adapters.engine_store import EngineStore
from nudge.adapters.experiments import ExperimentStore
from nudge.adapters.in_app import InAppStore
from nudge.adapters.model_store import FolderModels, S3Models
from nudge.adapters.queue import SendQueue
from nudge.adapters.receipts import SendReceipts
from nudge.adapters.scheduler import Reminders
from nudge.adapters.store import EventStore, StoredEvent, to_attributes
from nudge.adapters.suppression import SuppressionStore
from nudge.domain.experiments.attribution import Assignment
from nudge.domain.experiments.counts import CountedUnder, Tally
from nudge.domain.in_app import InAppMessage
from nudge.domain.intake import Event
from nudge.domain.messages import FireMessage, InAppDisplay
from nudge.domain.person import PersonId
from nudge.domain.policy import ContactState
from nudge.domain.profile import Profile, expiry, profile_kept
from nudge.domain.timefmt import hour_of, iso
from nudge.domain.triggers.engine import Pending
from nudge.domain.triggers.model import Reentry
from nudge.service.delivery_ports import Receipt, Receipts
from nudge.service.ports import (
    ContactRecords,
    EngineRecords,
    ExperimentRecords,
    FireQueue,
    InAppInbox,
    ModelArtefacts,
    PersonStore,
    Scheduler,
    SuppressionList,
    VersionConflict,
)

from tests.fakes import (
    FakeQueue,
    FakeScheduler,
    InMemoryContacts,
    InMemoryEngineStore,
    InMemoryExperiments,
    InMemoryInAppInbox,
    InMemoryModels,
    InMemoryPeople,
    InMemoryReceipts,
    InMemorySuppressionList,
)
from tests.integration._harness import NOW, Aws

ADA = PersonId.user("ada")
DAY = timedelta(days=1)
TARGET = "arn:aws:lambda:us-east-1:123456789012:function:nudge-Evaluate"
EVERY_TIME = Reentry.model_validate("every_time")
ONCE_A_WEEK = Reentry.model_validate("once_per 7d")


@pytest.fixture(params=["fake", "moto"])
def implementation(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _moto(request: pytest.FixtureRequest) -> Aws:
    """The mocked account, set up only for the ``moto`` cases."""
    aws: Aws = request.getfixturevalue("aws")
    return aws


# ---- the fire ledger and timers ------------------------------------------------------------


@pytest.fixture
def engine(implementation: str, request: pytest.FixtureRequest) -> EngineRecords:
    if implementation == "fake":
        return InMemoryEngineStore()
    aws = _moto(request)
    return EngineStore(aws.dynamodb, aws.table, timedelta(days=30))


def _claim(
    engine: EngineRecords,
    fire_id: str,
    at: datetime = NOW,
    reentry: Reentry = ONCE_A_WEEK,
    occurrence: str = "o-1",
) -> tuple[str, str | None]:
    """The claim and the fire id of the entry in its way, if any."""
    claim, entry = engine.claim(ADA, "t", occurrence, fire_id, at, reentry)
    return claim, entry.fire_id if entry else None


def test_a_first_claim_is_new(engine: EngineRecords) -> None:
    """Nobody has claimed the trigger for this person: the claim is new."""
    # given: an empty ledger
    # when
    claimed = _claim(engine, "fire-a")
    # then
    assert claimed == ("new", None)


def test_claiming_a_queued_fire_again_is_a_duplicate(engine: EngineRecords) -> None:
    """The same fire, claimed and marked enqueued, claimed again: a duplicate."""
    # given
    _claim(engine, "fire-a")
    engine.mark_enqueued(ADA, "t", "o-1", ONCE_A_WEEK)
    # when
    claimed = _claim(engine, "fire-a")
    # then
    assert claimed == ("duplicate", "fire-a")


def test_claiming_a_fire_whose_record_was_saved_again_is_a_duplicate(
    engine: EngineRecords,
) -> None:
    """A fire's record is saved once it is on the send queue: claimed again, with no
    enqueued mark, the record alone makes it a duplicate, not a resume."""
    # given
    fire = _fire()
    engine.claim(ADA, fire.trigger, str(fire.occurrence), fire.fire_id, NOW, EVERY_TIME)
    engine.save_fire(fire)
    # when
    claim, entry = engine.claim(
        ADA, fire.trigger, str(fire.occurrence), fire.fire_id, NOW + DAY, EVERY_TIME
    )
    # then
    assert (claim, entry.fire_id if entry else None) == ("duplicate", fire.fire_id)


def test_claiming_a_fire_never_queued_again_resumes_it(engine: EngineRecords) -> None:
    """The same fire claimed twice without being enqueued in between: resume, first time kept."""
    # given
    _claim(engine, "fire-a")
    # when
    claim, entry = engine.claim(ADA, "t", "o-1", "fire-a", NOW + DAY, ONCE_A_WEEK)
    # then
    assert claim == "resume"
    assert entry is not None
    assert entry.fired_at == iso(NOW)


def test_another_fire_within_the_period_is_blocked(engine: EngineRecords) -> None:
    """once_per 7d: a different fire of the trigger a day later is blocked by the first."""
    # given
    _claim(engine, "fire-a")
    # when
    claimed = _claim(engine, "fire-b", NOW + DAY, occurrence="o-2")
    # then
    assert claimed == ("blocked", "fire-a")


def test_another_fire_after_the_period_is_new(engine: EngineRecords) -> None:
    """once_per 7d: a different fire eight days later may fire again."""
    # given
    _claim(engine, "fire-a")
    # when
    claimed = _claim(engine, "fire-b", NOW + 8 * DAY, occurrence="o-2")
    # then
    assert claimed == ("new", None)


def test_every_time_claims_each_occurrence(engine: EngineRecords) -> None:
    """every_time: a second occurrence of the trigger is a claim of its own."""
    # given
    _claim(engine, "fire-a", reentry=EVERY_TIME, occurrence="cart_id=c1")
    # when
    claimed = _claim(engine, "fire-b", reentry=EVERY_TIME, occurrence="cart_id=c2")
    # then
    assert claimed == ("new", None)


def _timer(occurrence: str = "cart_id=c1") -> Pending:
    entry = {"messageId": "add-c1", "timestamp": NOW.isoformat()}
    return Pending("abandoned_cart", ADA, occurrence, NOW + DAY, "absence", entry)


def test_a_timer_saved_again_with_its_schedule_stands(engine: EngineRecords) -> None:
    """Saving an occurrence's timer again under the same schedule succeeds (a redelivery)."""
    # given
    engine.save_timer(_timer(), "schedule-1")
    # when
    saved = engine.save_timer(_timer(), "schedule-1")
    # then
    assert saved is True
    assert engine.timers([ADA]) == [(_timer(), "schedule-1")]


def test_a_second_schedule_for_an_occurrence_is_refused(engine: EngineRecords) -> None:
    """The occurrence's first timer stands: another schedule for it is refused."""
    # given
    engine.save_timer(_timer(), "schedule-1")
    # when
    saved = engine.save_timer(_timer(), "schedule-2")
    # then
    assert saved is False
    assert engine.timers([ADA]) == [(_timer(), "schedule-1")]


def test_a_deleted_timer_is_gone(engine: EngineRecords) -> None:
    """After delete_timer the person has no timer for that occurrence, and the other stays."""
    # given
    engine.save_timer(_timer("cart_id=c1"), "schedule-1")
    engine.save_timer(_timer("cart_id=c2"), "schedule-2")
    # when
    engine.delete_timer(_timer("cart_id=c1"))
    # then
    assert engine.timers([ADA]) == [(_timer("cart_id=c2"), "schedule-2")]


# ---- the contact record --------------------------------------------------------------------


@pytest.fixture
def contacts(implementation: str, request: pytest.FixtureRequest) -> ContactRecords:
    if implementation == "fake":
        return InMemoryContacts()
    aws = _moto(request)
    return ContactStore(aws.dynamodb, aws.table)


CLAIMED = ContactState(
    day="2026-11-28",
    per_channel={"email": 1},
    per_trigger={"abandoned_cart": 1},
    fires={"fire-a": "claimed@2026-11-28T10:00:00+00:00"},
)


def test_someone_never_contacted_has_an_empty_record(contacts: ContactRecords) -> None:
    """Loading a record nobody wrote gives the empty state, version 0."""
    # given: nobody wrote ada's record
    # when
    state = contacts.load(ADA)
    # then
    assert state == ContactState()


def test_a_saved_record_loads_as_saved_with_the_next_version(contacts: ContactRecords) -> None:
    """A record saved on version 0 is stored as version 1, and loads back the same."""
    # given: nobody wrote ada's record
    # when
    saved = contacts.save(ADA, CLAIMED)
    # then
    assert saved.version == 1
    assert contacts.load(ADA) == saved


def test_a_write_on_a_stale_version_is_a_conflict(contacts: ContactRecords) -> None:
    """Two senders read version 0; the second to write gets VersionConflict, the first stays."""
    # given
    read_by_both = contacts.load(ADA)
    first = contacts.save(ADA, CLAIMED)
    # when / then
    with pytest.raises(VersionConflict):
        contacts.save(ADA, read_by_both)
    assert contacts.load(ADA) == first


# ---- schedules -----------------------------------------------------------------------------


@dataclass
class Schedules:
    port: Scheduler
    armed: Callable[[], dict[str, dict[str, Any]]]  # one-time schedules: name -> payload


@pytest.fixture
def schedules(implementation: str, request: pytest.FixtureRequest) -> Schedules:
    if implementation == "fake":
        fake = FakeScheduler()
        return Schedules(fake, lambda: {name: a.payload for name, a in fake.schedules.items()})
    aws = _moto(request)
    environment = aws.environment("Evaluate")
    group = environment["NUDGE_SCHEDULE_GROUP"]
    reminders = Reminders(aws.scheduler, group, environment["NUDGE_SCHEDULER_ROLE_ARN"])

    def armed() -> dict[str, dict[str, Any]]:
        found = {}
        for summary in aws.scheduler.list_schedules(GroupName=group)["Schedules"]:
            schedule = aws.scheduler.get_schedule(Name=summary["Name"], GroupName=group)
            if str(schedule["ScheduleExpression"]).startswith("at("):  # not the hourly sweep
                found[schedule["Name"]] = json.loads(schedule["Target"]["Input"])
        return found

    return Schedules(reminders, armed)


def test_arming_a_name_twice_is_one_schedule_the_first(schedules: Schedules) -> None:
    """A name armed twice (a redelivered batch) is one schedule, holding the first payload."""
    # given
    schedules.port.arm("cart-1", NOW + DAY, TARGET, {"attempt": 1}, NOW)
    # when
    schedules.port.arm("cart-1", NOW + DAY, TARGET, {"attempt": 2}, NOW)
    # then
    assert schedules.armed() == {"cart-1": {"attempt": 1}}


def test_a_cancelled_schedule_is_gone(schedules: Schedules) -> None:
    """Cancelling an armed name removes its schedule."""
    # given
    schedules.port.arm("cart-1", NOW + DAY, TARGET, {"attempt": 1}, NOW)
    # when
    schedules.port.cancel("cart-1")
    # then
    assert schedules.armed() == {}


def test_cancelling_a_missing_schedule_is_fine(schedules: Schedules) -> None:
    """Cancelling a name that ran or never was raises nothing."""
    # given: no schedule named cart-1
    # when
    schedules.port.cancel("cart-1")
    # then
    assert schedules.armed() == {}


# ---- the suppression list and receipts -----------------------------------------------------


@dataclass
class Suppressions:
    port: SuppressionList
    reason: Callable[[str, str], str | None]


@pytest.fixture
def suppressions(implementation: str, request: pytest.FixtureRequest) -> Suppressions:
    if implementation == "fake":
        fake = InMemorySuppressionList()
        return Suppressions(fake, fake.reason)
    aws = _moto(request)

    def reason(channel: str, address: str) -> str | None:
        key = to_attributes(keys.suppression_key(channel, address))
        item = aws.dynamodb.get_item(TableName=aws.table, Key=key).get("Item")
        return item["reason"]["S"] if item else None

    return Suppressions(SuppressionStore(aws.dynamodb, aws.table), reason)


def test_a_suppression_written_twice_keeps_the_first_reason(suppressions: Suppressions) -> None:
    """The first suppression says True and stands; a second says False and changes nothing."""
    # given
    first = suppressions.port.suppress("email", "ada@example.com", "unsubscribed", NOW)
    # when
    second = suppressions.port.suppress("email", "ada@example.com", "complained", NOW + DAY)
    # then
    assert (first, second) == (True, False)
    assert suppressions.reason("email", "ada@example.com") == "unsubscribed"


def test_suppression_ignores_case_but_not_the_channel(suppressions: Suppressions) -> None:
    """Ada@Example.com suppressed on email suppresses ada@example.com there, not on webhook."""
    # given
    suppressions.port.suppress("email", "Ada@Example.com ", "unsubscribed", NOW)
    # when
    found = [
        suppressions.port.is_suppressed(channel, "ada@example.com")
        for channel in ("email", "webhook")
    ]
    # then
    assert found == [True, False]


@pytest.fixture
def receipts(implementation: str, request: pytest.FixtureRequest) -> Receipts:
    if implementation == "fake":
        return InMemoryReceipts()
    aws = _moto(request)
    return SendReceipts(aws.dynamodb, aws.table)


def test_a_recorded_receipt_is_found_by_its_fire(receipts: Receipts) -> None:
    """A receipt recorded twice (SES publishing twice) is found once, as recorded."""
    # given
    receipts.record("fire-a", "ses-1", NOW)
    receipts.record("fire-a", "ses-1", NOW)
    # when
    found = [receipts.find("fire-a"), receipts.find("fire-b")]
    # then
    assert found == [Receipt("fire-a", "ses-1", iso(NOW)), None]


# ---- the send queue ------------------------------------------------------------------------


@dataclass
class Queue:
    port: FireQueue
    held: Callable[[], list[tuple[FireMessage, int]]]  # each fire and its delay, in order


@pytest.fixture
def queue(implementation: str, request: pytest.FixtureRequest) -> Queue:
    if implementation == "fake":
        fake = FakeQueue()
        return Queue(fake, lambda: [(q.fire, q.delay_seconds) for q in fake.messages])
    aws = _moto(request)
    url = aws.environment("Send")["NUDGE_SEND_QUEUE_URL"]

    def held() -> list[tuple[FireMessage, int]]:
        # Read from moto's backend: a delayed message cannot be received before its time.
        messages = sqs_backends["123456789012"]["us-east-1"].queues[url.rsplit("/", 1)[-1]]
        return [(FireMessage.from_json(m.body), _delay(m)) for m in messages._messages]

    return Queue(SendQueue(aws.sqs, url), held)


def _delay(message: Any) -> int:
    """The DelaySeconds moto holds a message for (it keeps the times in milliseconds)."""
    if not message.delayed_until:
        return 0
    held_ms: int = message.delayed_until - (message.sent_timestamp or 0)
    return round(held_ms / 1000)


def _fire() -> FireMessage:
    return FireMessage(
        fire_id="fire-a",
        trigger="abandoned_cart",
        person=ADA,
        user_id="ada",
        occurrence="cart_id=c1",
        fired_at=iso(NOW),
        channel="email",
        template="abandoned_cart",
    )


def test_a_fire_sent_with_a_delay_is_held_that_long(queue: Queue) -> None:
    """A fire queued with a 60 s delay is held with that delay, unchanged."""
    # given: an empty queue
    # when
    queue.port.send(_fire(), delay_seconds=60)
    # then
    assert queue.held() == [(_fire(), 60)]


def test_a_delay_beyond_fifteen_minutes_is_refused(queue: Queue) -> None:
    """SQS holds a message at most 900 s: a longer delay is a ValueError, and nothing is sent."""
    # given: an empty queue
    # when / then
    with pytest.raises(ValueError, match="900"):
        queue.port.send(_fire(), delay_seconds=901)
    assert queue.held() == []


# ---- people: events and profiles -----------------------------------------------------------


RETENTION = timedelta(days=90)
PROFILE_KEPT = profile_kept(RETENTION)


@pytest.fixture
def people(implementation: str, request: pytest.FixtureRequest) -> PersonStore:
    if implementation == "fake":
        return InMemoryPeople(PROFILE_KEPT)
    aws = _moto(request)
    return EventStore(aws.dynamodb, aws.table, profile_kept=PROFILE_KEPT)


def _stored(message_id: str, at: datetime, person: PersonId = ADA) -> StoredEvent:
    body = {
        "type": "track",
        "event": "Product Viewed",
        "messageId": message_id,
        "userId": person.value,
        "timestamp": iso(at),
        "receivedAt": iso(at),
    }
    event = Event(message_id, "track", person.value, None, at, at, body)
    return StoredEvent(person=person, event=event)


def _put(people: PersonStore, *events: StoredEvent, links: dict[str, str] | None = None) -> None:
    """What Ingest writes (put_events is Ingest's, not a port of Evaluate's)."""
    assert isinstance(people, InMemoryPeople | EventStore)
    people.put_events(events, links or {}, RETENTION)


def test_events_since_are_oldest_first_from_the_given_time(people: PersonStore) -> None:
    """Events stored out of order come back oldest first (message id breaking ties), and
    only those at or after ``since``."""
    # given
    _put(
        people,
        _stored("m-late", NOW + timedelta(hours=2)),
        _stored("m-b", NOW),
        _stored("m-before", NOW - timedelta(minutes=1)),
        _stored("m-a", NOW),
    )
    # when
    found = people.events_since(ADA, NOW, NOW)
    # then
    assert [body["messageId"] for body in found] == ["m-a", "m-b", "m-late"]


def test_an_event_is_read_until_its_retention_has_passed_then_left_out(
    people: PersonStore,
) -> None:
    """An event is read by a decision taken exactly ``retention`` after it, and left out of
    one a second later, though TTL has deleted nothing."""
    # given
    _put(people, _stored("m-a", NOW))
    since = NOW - DAY
    # when
    at_retention = people.events_since(ADA, since, NOW + RETENTION)
    a_second_later = people.events_since(ADA, since, NOW + RETENTION + timedelta(seconds=1))
    # then
    assert [body["messageId"] for body in at_retention] == ["m-a"]
    assert a_second_later == []


def test_events_sent_together_are_kept_as_long_as_the_latest_of_them(people: PersonStore) -> None:
    """Events sent in one request are kept as long as the latest of them (one item)."""
    # given
    _put(people, _stored("m-early", NOW - timedelta(hours=2)), _stored("m-late", NOW))
    # when
    found = people.events_since(ADA, NOW - DAY, NOW + RETENTION - timedelta(hours=1))
    # then
    assert [body["messageId"] for body in found] == ["m-early", "m-late"]


def test_a_message_stored_twice_is_one_event(people: PersonStore) -> None:
    """The same message id written again (a client's retry) is still one event."""
    # given
    _put(people, _stored("m-a", NOW))
    # when
    _put(people, _stored("m-a", NOW))
    # then
    assert [body["messageId"] for body in people.events_since(ADA, NOW, NOW)] == ["m-a"]


def test_a_saved_profile_loads_as_saved(people: PersonStore) -> None:
    """A profile saved is the profile loaded; someone never saved is left out."""
    # given
    profile = Profile(
        person=ADA,
        user_id="ada",
        anonymous_ids=("anon-1",),
        traits={"email": "ada@example.com", "plan": {"tier": "vip"}},
        last_seen=iso(NOW),
        events=3,
        event_counts={"Product Viewed": 3},
        applied_seq=7,
        arms={"abandoned_cart@0123456789ab": "h24"},  # an experiment's arm, kept for re-entry
    )
    # when
    refused = people.save_profiles([profile])
    # then
    assert refused == set()
    assert people.load_profiles([ADA, PersonId.user("bob")]) == {ADA: profile}


def test_a_profile_past_its_expiry_is_left_out_of_a_decision_taken_then(
    people: PersonStore,
) -> None:
    """A profile whose expires_at has come is not loaded for a decision taken then, though
    it is still stored (TTL deletes it days later at most); a second earlier, it is."""
    # given
    profile = Profile(person=ADA, user_id="ada", last_seen=iso(NOW), traits={"tier": "vip"})
    people.save_profiles([profile])
    expires = expiry(hour_of(NOW), PROFILE_KEPT)
    # when
    before = people.load_profiles([ADA], expires - timedelta(seconds=1))
    at_expiry = people.load_profiles([ADA], expires)
    stored = people.load_profiles([ADA])
    # then
    assert before == {ADA: profile}
    assert at_expiry == {}
    assert stored == {ADA: profile}


def test_a_profile_is_found_in_the_hour_it_was_last_seen(people: PersonStore) -> None:
    """The seen index lists a person under the hour of their last activity, and no other."""
    # given
    seen = NOW + timedelta(minutes=25)
    people.save_profiles([Profile(person=ADA, user_id="ada", last_seen=iso(seen))])
    # when
    found = [people.persons_seen_in(NOW), people.persons_seen_in(NOW + timedelta(hours=1))]
    # then
    assert found == [[ADA], []]


def test_linked_users_names_only_linked_visitors(people: PersonStore) -> None:
    """A visitor linked to a user is answered with that user; an unknown visitor is left out."""
    # given
    _put(people, _stored("m-a", NOW), links={"anon-1": "ada"})
    # when
    linked = people.linked_users(["anon-1", "anon-2"])
    # then
    assert linked == {"anon-1": "ada"}


# ---- experiments: assignments and counters -------------------------------------------------


@pytest.fixture
def experiments(implementation: str, request: pytest.FixtureRequest) -> ExperimentRecords:
    if implementation == "fake":
        return InMemoryExperiments()
    aws = _moto(request)
    return ExperimentStore(aws.dynamodb, aws.table)


VERSION = "0123456789ab"
WEEK = 7 * DAY
IN_H24 = CountedUnder("abandoned_cart", VERSION, "h24")


def _assignment(
    since: datetime = NOW, arm: str = "h24", version: str = VERSION, trigger: str = "abandoned_cart"
) -> Assignment:
    return Assignment(
        trigger=trigger,
        version=version,
        arm=arm,
        since=since,
        until=since + WEEK,
        goal="Order Completed",
        value_path="properties.revenue",
    )


def _tally(arm: str, at: datetime, **counts: float) -> Tally:
    return Tally(VERSION, arm, at.date(), counts)  # type: ignore[arg-type]


def _current(experiments: ExperimentRecords, person: PersonId = ADA) -> Assignment:
    """The person's assignment as a service reads it before converting."""
    (found,) = [assignment for _, assignment in experiments.assignments([person])]
    return found


def test_an_assignment_is_opened_and_counted_once(experiments: ExperimentRecords) -> None:
    """The first assignment of a person in an experiment version opens and counts one."""
    # given: ada was never assigned

    # when
    opened = experiments.assign(ADA, _assignment())

    # then
    assert opened is True
    assert experiments.tallies("abandoned_cart", VERSION) == [_tally("h24", NOW, assigned=1)]


def test_a_second_assignment_while_one_is_open_counts_nothing(
    experiments: ExperimentRecords,
) -> None:
    """A re-entry two days into the window (or a redelivered entry) opens nothing: False,
    the first assignment stays, and ``assigned`` stays 1."""
    # given
    experiments.assign(ADA, _assignment())

    # when
    opened = experiments.assign(ADA, _assignment(since=NOW + 2 * DAY))

    # then
    assert opened is False
    assert _current(experiments) == _assignment()
    assert experiments.tallies("abandoned_cart", VERSION) == [_tally("h24", NOW, assigned=1)]


def test_an_assignment_after_the_window_closed_opens_and_counts_again(
    experiments: ExperimentRecords,
) -> None:
    """Eight days on, the week's window has closed: a new assignment replaces it and counts
    on its own day."""
    # given
    experiments.assign(ADA, _assignment())
    later = NOW + 8 * DAY

    # when
    opened = experiments.assign(ADA, _assignment(since=later))

    # then
    assert opened is True
    assert _current(experiments) == _assignment(since=later)
    assert experiments.tallies("abandoned_cart", VERSION) == [
        _tally("h24", NOW, assigned=1),
        _tally("h24", later, assigned=1),
    ]


def test_an_assignment_at_the_windows_end_opens_a_new_one(experiments: ExperimentRecords) -> None:
    """The window's end is exclusive: at exactly ``until`` the old one is closed."""
    # given
    experiments.assign(ADA, _assignment())

    # when
    opened = experiments.assign(ADA, _assignment(since=NOW + WEEK))

    # then
    assert opened is True


def test_assignments_lists_each_partitions_latest(experiments: ExperimentRecords) -> None:
    """Each partition asked for answers with its own assignments, under its own name; a
    partition not asked for is left out."""
    # given
    visitor, bob = PersonId.anonymous("anon-1"), PersonId.user("bob")
    experiments.assign(visitor, _assignment(arm="h48"))
    experiments.assign(ADA, _assignment(version="other-version"))
    experiments.assign(bob, _assignment())

    # when
    found = experiments.assignments([ADA, visitor, ADA])

    # then
    assert sorted(found, key=lambda pair: str(pair[0])) == [
        (visitor, _assignment(arm="h48")),
        (ADA, _assignment(version="other-version")),
    ]


def test_a_conversion_counts_once_and_its_revenue_each_time(
    experiments: ExperimentRecords,
) -> None:
    """Two goal events in the window: ``converted`` is 1, revenue is both values, and the
    assignment reads as converted."""
    # given
    experiments.assign(ADA, _assignment())
    first = experiments.convert(ADA, _current(experiments), 10, 30.0, NOW + DAY)

    # when
    second = experiments.convert(ADA, _current(experiments), 11, 20.0, NOW + DAY)

    # then
    assert (first, second) == (True, True)
    assert _current(experiments).converted is True
    assert experiments.tallies("abandoned_cart", VERSION) == [
        _tally("h24", NOW, assigned=1),
        _tally("h24", NOW + DAY, converted=1, revenue=50),
    ]


def test_revenue_adds_up_in_decimal(experiments: ExperimentRecords) -> None:
    """0.1 and 0.2 of revenue add up to 0.3, as DynamoDB's ADD of numbers does (no binary
    floating-point noise in a report)."""
    # given
    experiments.assign(ADA, _assignment())
    experiments.convert(ADA, _current(experiments), 10, 0.1, NOW)

    # when
    experiments.convert(ADA, _current(experiments), 11, 0.2, NOW)

    # then
    (day,) = experiments.tallies("abandoned_cart", VERSION)
    assert day.get("revenue") == 0.3


def test_a_redelivered_goal_event_counts_nothing(experiments: ExperimentRecords) -> None:
    """The same goal event (same sequence) counted again: False, and no revenue added."""
    # given
    experiments.assign(ADA, _assignment())
    experiments.convert(ADA, _current(experiments), 10, 30.0, NOW + DAY)

    # when
    again = experiments.convert(ADA, _current(experiments), 10, 30.0, NOW + DAY)

    # then
    assert again is False
    assert experiments.tallies("abandoned_cart", VERSION) == [
        _tally("h24", NOW, assigned=1),
        _tally("h24", NOW + DAY, converted=1, revenue=30),
    ]


def test_a_goal_event_at_the_windows_end_counts_nothing(experiments: ExperimentRecords) -> None:
    """A goal event exactly at ``until`` (the end is exclusive) converts nothing."""
    # given
    experiments.assign(ADA, _assignment())

    # when
    converted = experiments.convert(ADA, _current(experiments), 10, 30.0, NOW + WEEK)

    # then
    assert converted is False
    assert experiments.tallies("abandoned_cart", VERSION) == [_tally("h24", NOW, assigned=1)]


def test_a_conversion_of_a_replaced_assignment_counts_nothing(
    experiments: ExperimentRecords,
) -> None:
    """An assignment read before it was replaced by a newer one converts nothing, though
    the newer one is open: the read was stale."""
    # given
    experiments.assign(ADA, _assignment())
    stale = _current(experiments)
    later = NOW + 8 * DAY
    experiments.assign(ADA, _assignment(since=later))

    # when
    converted = experiments.convert(ADA, stale, 10, 30.0, later + DAY)

    # then
    assert converted is False
    assert _current(experiments).converted is False
    assert experiments.tallies("abandoned_cart", VERSION) == [
        _tally("h24", NOW, assigned=1),
        _tally("h24", later, assigned=1),
    ]


def test_a_conversion_of_an_assignment_never_opened_counts_nothing(
    experiments: ExperimentRecords,
) -> None:
    """Converting an assignment the store never opened (gone, or never written) counts
    nothing and leaves no assignment behind."""
    # given: ada was never assigned

    # when
    converted = experiments.convert(ADA, _assignment(), 10, 30.0, NOW + DAY)

    # then
    assert converted is False
    assert experiments.assignments([ADA]) == []
    assert experiments.tallies("abandoned_cart", VERSION) == []


def test_a_conversion_read_before_another_converted_it_counts_converted_once(
    experiments: ExperimentRecords,
) -> None:
    """Two goal events that both read the assignment unconverted (concurrent batches, e.g.
    under two identities of one person) convert it once between them."""
    # given
    experiments.assign(ADA, _assignment())
    read_by_both = _current(experiments)
    experiments.convert(ADA, read_by_both, 10, 30.0, NOW + DAY)

    # when
    experiments.convert(ADA, read_by_both, 11, 20.0, NOW + DAY)

    # then
    converted = sum(
        tally.get("converted") for tally in experiments.tallies("abandoned_cart", VERSION)
    )
    assert converted == 1


def test_a_fire_counts_once_per_measure(experiments: ExperimentRecords) -> None:
    """A fire counted sent twice is counted once (the second says False); its open is a
    measure of its own, counted once too."""
    # given
    experiments.count_fire("fire-a", "sent", IN_H24, NOW)

    # when
    answers = [
        experiments.count_fire("fire-a", "sent", IN_H24, NOW),
        experiments.count_fire("fire-a", "opened", IN_H24, NOW),
        experiments.count_fire("fire-a", "opened", IN_H24, NOW),
    ]

    # then
    assert answers == [False, True, False]
    assert experiments.tallies("abandoned_cart", VERSION) == [_tally("h24", NOW, sent=1, opened=1)]


def test_sent_as_says_where_the_send_was_counted(experiments: ExperimentRecords) -> None:
    """A fire counted sent is found where it was counted; a fire only opened, or never
    counted, has no send to be found."""
    # given
    experiments.count_fire("fire-a", "sent", IN_H24, NOW)
    experiments.count_fire("fire-b", "opened", IN_H24, NOW)

    # when
    found = [experiments.sent_as(fire) for fire in ("fire-a", "fire-b", "fire-c")]

    # then
    assert found == [IN_H24, None, None]


def test_tallies_sum_each_arm_and_day_over_the_shards(experiments: ExperimentRecords) -> None:
    """Counts of several people and fires (spread over the counter's shards) come back one
    tally per arm and day, summed; other versions and triggers are left out."""
    # given: five people on two days in two arms, and counts elsewhere
    people = [PersonId.user(f"user-{n}") for n in range(5)]
    assert len({keys.counter_shard(str(person)) for person in people}) > 1
    for person in people[:3]:
        experiments.assign(person, _assignment())
    experiments.assign(people[3], _assignment(arm="h48"))
    experiments.assign(people[4], _assignment(since=NOW + DAY))
    for n in range(4):
        experiments.count_fire(f"fire-{n}", "sent", IN_H24, NOW)
    experiments.assign(people[0], _assignment(version="other-version"))
    experiments.assign(people[0], _assignment(trigger="welcome"))
    experiments.count_fire("fire-x", "sent", CountedUnder("welcome", VERSION, "h24"), NOW)

    # when
    tallies = experiments.tallies("abandoned_cart", VERSION)

    # then
    assert tallies == [
        _tally("h24", NOW, assigned=3, sent=4),
        _tally("h24", NOW + DAY, assigned=1),
        _tally("h48", NOW, assigned=1),
    ]


# ---- in-app messages and open pages --------------------------------------------------------


@pytest.fixture
def inbox(implementation: str, request: pytest.FixtureRequest) -> InAppInbox:
    if implementation == "fake":
        return InMemoryInAppInbox()
    aws = _moto(request)
    return InAppStore(aws.dynamodb, aws.table)


HOUR = timedelta(hours=1)
VISITOR = PersonId.anonymous("anon-7")
OFFER_DISPLAY = InAppDisplay(delay=5.0, scroll=50.0, match="all", exclude=("/checkout*",))


def _message(fire_id: str = "fire-a", expires_at: datetime = NOW + DAY) -> InAppMessage:
    return InAppMessage(
        fire_id=fire_id,
        trigger="product_offer",
        html="<p>Still thinking about the Espresso Cup?</p>",
        display=OFFER_DISPLAY,
        expires_at=expires_at,
    )


def test_keeping_a_message_twice_keeps_the_first(inbox: InAppInbox) -> None:
    """A fire kept again (a redelivery) says False, and the message kept first stands."""
    # given
    first = inbox.keep(ADA, _message())
    # when
    second = inbox.keep(ADA, replace(_message(), html="<p>another rendering</p>"))
    # then
    assert (first, second) == (True, False)
    assert inbox.pending([ADA], NOW) == [_message()]


def test_pending_skips_expired_messages(inbox: InAppInbox) -> None:
    """A message read at or after its expiry is not pending, though it is still held."""
    # given
    inbox.keep(ADA, _message("fire-soon", NOW + HOUR))
    inbox.keep(ADA, _message("fire-later", NOW + 3 * HOUR))
    # when
    found = [
        [m.fire_id for m in inbox.pending([ADA], at)]
        for at in (NOW, NOW + HOUR, NOW + 2 * HOUR, NOW + 3 * HOUR)
    ]
    # then
    assert found == [["fire-soon", "fire-later"], ["fire-later"], ["fire-later"], []]


def test_pending_gathers_every_identity_soonest_expiry_first(inbox: InAppInbox) -> None:
    """Messages kept for the user and for the visitor they were are all pending for a page
    that is both, the one expiring soonest first."""
    # given
    inbox.keep(ADA, _message("fire-user", NOW + 2 * HOUR))
    inbox.keep(VISITOR, _message("fire-visitor", NOW + HOUR))
    inbox.keep(PersonId.user("grace"), _message("fire-grace", NOW + HOUR))
    # when
    found = inbox.pending([ADA, VISITOR], NOW)
    # then
    assert [m.fire_id for m in found] == ["fire-visitor", "fire-user"]


def test_a_message_is_taken_once(inbox: InAppInbox) -> None:
    """The first take of a message wins it; a second take of it gets False, and it is no
    longer pending."""
    # given
    inbox.keep(ADA, _message())
    # when
    takes = [inbox.take([ADA], "fire-a", NOW), inbox.take([ADA], "fire-a", NOW)]
    # then
    assert takes == [True, False]
    assert inbox.pending([ADA], NOW) == []


def test_a_taken_message_stays_kept(inbox: InAppInbox) -> None:
    """Keeping a message a page already took refuses (False): a redelivered fire cannot put
    it back to wait for a page."""
    # given
    inbox.keep(ADA, _message())
    inbox.take([ADA], "fire-a", NOW)
    # when
    kept_again = inbox.keep(ADA, _message())
    # then
    assert kept_again is False
    assert inbox.pending([ADA], NOW) == []


def test_an_expired_message_is_never_taken(inbox: InAppInbox) -> None:
    """A message past its expiry cannot be taken, though the TTL has not deleted it yet."""
    # given
    inbox.keep(ADA, _message(expires_at=NOW + HOUR))
    # when
    taken = [inbox.take([ADA], "fire-a", at) for at in (NOW + HOUR, NOW + 2 * HOUR)]
    # then
    assert taken == [False, False]


def test_a_message_kept_for_the_visitor_is_taken_by_the_user_they_became(
    inbox: InAppInbox,
) -> None:
    """A page that is both the user and the anonymous visitor takes a message kept under
    the visitor; a fire id nobody kept is not taken."""
    # given
    inbox.keep(VISITOR, _message())
    # when
    taken = [inbox.take([ADA, VISITOR], "fire-a", NOW), inbox.take([ADA, VISITOR], "nope", NOW)]
    # then
    assert taken == [True, False]
    assert inbox.pending([VISITOR], NOW) == []


def test_a_message_kept_for_someone_else_is_not_taken(inbox: InAppInbox) -> None:
    """A page of another person cannot take a message by its fire id."""
    # given
    inbox.keep(ADA, _message())
    # when
    taken = inbox.take([PersonId.user("grace")], "fire-a", NOW)
    # then
    assert taken is False
    assert inbox.pending([ADA], NOW) == [_message()]


def test_connections_skip_expired_ones(inbox: InAppInbox) -> None:
    """An open page is listed until its ``until``, and not from then on."""
    # given
    inbox.connect(ADA, "conn-long", NOW, NOW + 2 * HOUR)
    inbox.connect(ADA, "conn-short", NOW, NOW + HOUR)
    inbox.connect(VISITOR, "conn-visitor", NOW, NOW + 2 * HOUR)
    # when
    found = [sorted(inbox.connections(ADA, at)) for at in (NOW, NOW + HOUR, NOW + 2 * HOUR)]
    # then
    assert found == [["conn-long", "conn-short"], ["conn-long"], []]


def test_disconnecting_is_idempotent(inbox: InAppInbox) -> None:
    """Forgetting a connection twice, or one never recorded, raises nothing; the person's
    other pages stay."""
    # given
    inbox.connect(ADA, "conn-1", NOW, NOW + 2 * HOUR)
    inbox.connect(ADA, "conn-2", NOW, NOW + 2 * HOUR)
    # when
    inbox.disconnect(ADA, "conn-1")
    inbox.disconnect(ADA, "conn-1")
    inbox.disconnect(VISITOR, "never-open")
    # then
    assert inbox.connections(ADA, NOW) == ["conn-2"]


# ---- the model artefacts -------------------------------------------------------------------


@pytest.fixture(params=["fake", "folder", "moto"])
def artefacts(request: pytest.FixtureRequest, tmp_path: Path) -> ModelArtefacts:
    if request.param == "fake":
        return InMemoryModels()
    if request.param == "folder":
        return FolderModels(tmp_path / "models")
    aws = _moto(request)
    return S3Models(aws.s3, aws.models_bucket)


def test_a_model_never_written_reads_as_none(artefacts: ModelArtefacts) -> None:
    """No artefact for the prediction: None, not an error."""
    # when
    found = artefacts.read("no-such-prediction")
    # then
    assert found is None


def test_a_written_model_reads_back_and_a_second_write_replaces_it(
    artefacts: ModelArtefacts,
) -> None:
    """The artefact's bytes as written; the latest write wins whole."""
    # given
    artefacts.write("churn", b'{"version": 1}')
    # when
    artefacts.write("churn", b'{"version": 2}')
    # then
    assert artefacts.read("churn") == b'{"version": 2}'
