"""The local stack's TTL sweep (local/ttl.py) deletes as DynamoDB's TTL does: items whose
``expires_at`` is a Number before the sweep's time, not older than five years, as a
``REMOVE`` stream record with the service's identity, which Evaluate ignores; and the
product reads the same whether an expired item is still there or already gone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from nudge.adapters import keys
from nudge.adapters.in_app import InAppStore
from nudge.adapters.store import EventStore, StoredEvent, to_attributes
from nudge.domain.in_app import InAppMessage
from nudge.domain.intake import Event
from nudge.domain.messages import InAppDisplay
from nudge.domain.person import PersonId
from nudge.domain.timefmt import iso
from nudge.domain.triggers.common import MAX_WINDOW

from local.ttl import TtlSweeper, sweep_moment
from tests.integration._harness import Aws, Invoke, Stream

NOW = datetime(2026, 12, 5, 12, 30, tzinfo=UTC)
ADA = PersonId.user("ada")
SERVICE = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}


class Clock:
    """The stack's clock as the sweeper sees it: moved by hand."""

    def __init__(self, now: datetime) -> None:
        self.at = now

    def now(self) -> datetime:
        return self.at


def _sweeper(aws: Aws, clock: Clock) -> TtlSweeper:
    return TtlSweeper(aws.template.names.region, clock.now)


def _put(aws: Aws, sk: str, expires_at: dict[str, str] | None) -> None:
    item: dict[str, Any] = {"pk": {"S": "P#u:ada"}, "sk": {"S": sk}, "kind": {"S": "test"}}
    if expires_at is not None:
        item["expires_at"] = expires_at
    aws.dynamodb.put_item(TableName=aws.table, Item=item)


def _epoch(at: datetime) -> dict[str, str]:
    return {"N": str(int(at.timestamp()))}


def _present(aws: Aws, sk: str) -> bool:
    key = {"pk": {"S": "P#u:ada"}, "sk": {"S": sk}}
    return "Item" in aws.dynamodb.get_item(TableName=aws.table, Key=key, ConsistentRead=True)


def _swept_at(aws: Aws, at: datetime) -> int:
    """The sweeper polled with the clock at ``at`` (after a first poll an hour before)."""
    clock = Clock(at - timedelta(hours=1))
    sweeper = _sweeper(aws, clock)
    sweeper.poll()
    clock.at = at
    return sweeper.poll()


# ---- what is deleted, and when -------------------------------------------------------------


def test_an_item_past_its_ttl_is_deleted_by_the_first_sweep_after_it(aws: Aws) -> None:
    """expires_at before the sweep's hour: gone after that sweep."""
    # given
    _put(aws, "old", _epoch(NOW - timedelta(minutes=10)))
    # when
    deleted = _swept_at(aws, sweep_moment(NOW))
    # then
    assert deleted == 1
    assert not _present(aws, "old")


def test_an_expired_item_is_still_read_until_the_sweep(aws: Aws) -> None:
    """Between its TTL and the next sweep an expired item reads as before (AWS: for up to
    days)."""
    # given an item that expired ten minutes ago, with a sweep since the hour began
    _put(aws, "old", _epoch(NOW - timedelta(minutes=10)))
    clock = Clock(NOW - timedelta(minutes=20))
    sweeper = _sweeper(aws, clock)
    sweeper.poll()
    # when the clock is past its TTL but not at the next sweep
    clock.at = NOW
    deleted = sweeper.poll()
    # then
    assert deleted == 0
    assert _present(aws, "old")


def test_an_item_not_yet_expired_is_kept(aws: Aws) -> None:
    """expires_at after the sweep's time: kept."""
    # given
    _put(aws, "young", _epoch(sweep_moment(NOW) + timedelta(seconds=1)))
    # when
    deleted = _swept_at(aws, sweep_moment(NOW))
    # then
    assert deleted == 0
    assert _present(aws, "young")


def test_a_ttl_that_is_not_a_number_is_ignored(aws: Aws) -> None:
    """A String expires_at, however far past, is not a TTL."""
    # given
    _put(aws, "text", {"S": str(int((NOW - timedelta(days=1)).timestamp()))})
    # when
    deleted = _swept_at(aws, sweep_moment(NOW))
    # then
    assert deleted == 0
    assert _present(aws, "text")


def test_a_ttl_more_than_five_years_past_is_ignored(aws: Aws) -> None:
    """DynamoDB does not expire an item whose TTL is more than five years in the past."""
    # given
    _put(aws, "ancient", _epoch(NOW - timedelta(days=5 * 366)))
    # when
    deleted = _swept_at(aws, sweep_moment(NOW))
    # then
    assert deleted == 0
    assert _present(aws, "ancient")


def test_an_item_without_a_ttl_is_kept(aws: Aws) -> None:
    """No expires_at (a suppression, a timer): kept for good."""
    # given
    _put(aws, "forever", None)
    # when
    deleted = _swept_at(aws, sweep_moment(NOW) + timedelta(days=365))
    # then
    assert deleted == 0
    assert _present(aws, "forever")


def test_the_next_sweep_due_is_the_first_after_the_earliest_expiry(aws: Aws) -> None:
    """What the stepped clock moves to: the top of the hour after the earliest TTL."""
    # given
    _put(aws, "later", _epoch(NOW + timedelta(hours=5)))
    _put(aws, "sooner", _epoch(NOW + timedelta(hours=2)))
    _put(aws, "text", {"S": "0"})
    # when
    due = _sweeper(aws, Clock(NOW)).next_due(NOW)
    # then
    assert due == sweep_moment(NOW + timedelta(hours=2))


def test_no_sweep_is_due_when_nothing_will_expire(aws: Aws) -> None:
    """No TTL anywhere: the sweep adds no moment to the clock's steps."""
    # given
    _put(aws, "forever", None)
    # when / then
    assert _sweeper(aws, Clock(NOW)).next_due(NOW) is None


# ---- the stream, and Evaluate ------------------------------------------------------------------


def _removals(stream: Stream) -> list[dict[str, Any]]:
    return [record for record in stream.read() if record["eventName"] == "REMOVE"]


def test_a_ttl_deletion_is_a_remove_record_with_the_service_identity(
    aws: Aws, stream: Stream
) -> None:
    """The stream shows the deletion as DynamoDB's own, in Lambda's field names."""
    # given
    _put(aws, "old", _epoch(NOW - timedelta(minutes=10)))
    # when
    _swept_at(aws, sweep_moment(NOW))
    # then
    (removal,) = _removals(stream)
    assert removal["userIdentity"] == SERVICE
    assert removal["dynamodb"]["Keys"] == {"pk": {"S": "P#u:ada"}, "sk": {"S": "old"}}


def test_a_user_deletion_carries_no_identity(aws: Aws, stream: Stream) -> None:
    """Only the TTL process marks its deletions; a DeleteItem call is a plain REMOVE."""
    # given
    _put(aws, "gone", None)
    # when
    aws.dynamodb.delete_item(TableName=aws.table, Key={"pk": {"S": "P#u:ada"}, "sk": {"S": "gone"}})
    # then
    (removal,) = _removals(stream)
    assert "userIdentity" not in removal


def _expired_event(aws: Aws) -> None:
    """An event item, as Ingest writes it, already past its TTL."""
    at = NOW - timedelta(days=91)
    body = {
        "type": "track",
        "event": "Item Viewed",
        "messageId": "m-old",
        "userId": "ada",
        "timestamp": iso(at),
        "receivedAt": iso(at),
    }
    event = Event("m-old", "track", "ada", None, at, at, body)
    EventStore(aws.dynamodb, aws.table).put_events(
        [StoredEvent(person=ADA, event=event)], {}, timedelta(days=90)
    )


def test_evaluates_filter_drops_a_ttl_removal_before_any_invocation(
    aws: Aws, stream: Stream
) -> None:
    """The template's FilterCriteria, matched as the local poller matches it, lets no TTL
    REMOVE through: Evaluate is not invoked."""
    # given an expired event item, its INSERT already consumed
    _expired_event(aws)
    stream.read()
    _swept_at(aws, sweep_moment(NOW))
    records = stream.read()
    assert [record["eventName"] for record in records] == ["REMOVE"]
    # when
    responses = stream.deliver(records)
    # then
    assert responses == []


def test_evaluate_given_a_ttl_removal_decides_and_fires_nothing(
    aws: Aws, stream: Stream, evaluate: Invoke
) -> None:
    """Even past the filter (a changed template), Evaluate ignores the record: no profile,
    no decision record, no fire written."""
    # given
    _expired_event(aws)
    stream.read()
    _swept_at(aws, sweep_moment(NOW))
    (removal,) = _removals(stream)
    # when
    response = evaluate({"Records": [removal]})
    # then
    assert response == {"batchItemFailures": []}
    assert aws.item_count() == 0


# ---- the product reads the same before and after the sweep -----------------------------------


def test_events_read_the_same_with_an_expired_event_present_or_swept(aws: Aws) -> None:
    """The widest window a trigger may read (MAX_WINDOW) starts after any expired event:
    whether TTL has deleted it yet does not change what Evaluate reads."""
    # given an event past its TTL, and a recent one
    _expired_event(aws)
    people = EventStore(aws.dynamodb, aws.table)
    recent = NOW - timedelta(days=1)
    body = {"type": "track", "event": "Item Viewed", "messageId": "m-new", "userId": "ada"}
    body |= {"timestamp": iso(recent), "receivedAt": iso(recent)}
    event = Event("m-new", "track", "ada", None, recent, recent, body)
    people.put_events([StoredEvent(person=ADA, event=event)], {}, timedelta(days=90))
    since = NOW - MAX_WINDOW
    # when
    before = people.events_since(ADA, since, NOW)
    _swept_at(aws, sweep_moment(NOW))
    after = people.events_since(ADA, since, NOW)
    # then
    assert [body["messageId"] for body in before] == ["m-new"]
    assert after == before


def test_in_app_messages_read_the_same_with_an_expired_one_present_or_swept(aws: Aws) -> None:
    """A page is offered only messages not yet expired at its time, so an expired message
    TTL has not deleted yet is never shown."""
    # given a message that expired ten minutes ago
    store = InAppStore(aws.dynamodb, aws.table)
    message = InAppMessage(
        fire_id="fire-1",
        trigger="offer",
        html="<p>10% off</p>",
        display=InAppDisplay(),
        expires_at=NOW - timedelta(minutes=10),
    )
    store.keep(ADA, message)
    key = keys.in_app_key(ADA, "fire-1")
    # when
    before = store.pending([ADA], NOW)
    _swept_at(aws, sweep_moment(NOW))
    after = store.pending([ADA], NOW)
    # then
    assert before == after == []
    assert "Item" not in aws.dynamodb.get_item(TableName=aws.table, Key=to_attributes(key))
