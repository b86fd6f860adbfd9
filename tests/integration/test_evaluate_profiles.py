"""The Evaluate function over the table's stream, as profile keeper: exactly-once folds,
sessions, partial failures."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from nudge import bootstrap
from nudge.adapters.store import EventStore
from nudge.domain.person import PersonId
from nudge.domain.profile import Profile
from nudge.service.evaluate import EvaluateService

from tests.integration._harness import NOW, Aws, Invoke, Stream, beacon


def _profile(person: str) -> Profile:
    key = PersonId.parse(person)
    return bootstrap.event_store().load_profiles([key])[key]


def _track(user: str, event: str, minutes: float, message_id: str) -> dict[str, Any]:
    return {
        "type": "track",
        "userId": user,
        "event": event,
        "messageId": message_id,
        "timestamp": (NOW + timedelta(minutes=minutes)).isoformat(),
    }


def _send(ingest: Invoke, *messages: dict[str, Any]) -> None:
    response = ingest(beacon("batch", {"batch": list(messages)}, at=NOW + timedelta(hours=1)))
    assert response["statusCode"] == 200, response


def test_redelivered_records_are_folded_once(ingest: Invoke, stream: Stream):
    """Feeding the same stream records twice leaves the profile's counts unchanged."""
    # given
    _send(
        ingest,
        _track("ada", "Signed Up", 0, "m-1"),
        _track("ada", "Item Viewed", 1, "m-2"),
        _track("ada", "Item Viewed", 2, "m-3"),
    )
    records = stream.read()
    stream.deliver(records)
    first = _profile("u:ada")
    # when
    responses = stream.deliver(records)
    # then
    assert responses == [{"batchItemFailures": []}]
    assert _profile("u:ada") == first
    assert (first.events, first.event_counts) == (3, {"Signed Up": 1, "Item Viewed": 2})


def test_records_arriving_in_several_batches_are_each_folded_once(ingest: Invoke, stream: Stream):
    """Records delivered across invocations (as the mapping does) add up to one count per event."""
    # given
    _send(ingest, _track("ada", "Item Viewed", 0, "m-1"))
    stream.drain()
    # when
    _send(ingest, _track("ada", "Item Viewed", 1, "m-2"), _track("ada", "Item Viewed", 2, "m-3"))
    stream.drain()
    # then
    assert _profile("u:ada").event_counts == {"Item Viewed": 3}


def test_sessions_split_after_thirty_minutes_without_events(ingest: Invoke, stream: Stream):
    """Pages 5 minutes apart share a session; a 40-minute gap starts another and closes the last."""
    # given
    minutes = [0, 5, 10, 50, 55]
    pages = [
        {
            "type": "page",
            "userId": "ada",
            "name": f"Page {index}",
            "messageId": f"p-{index}",
            "timestamp": (NOW + timedelta(minutes=minute)).isoformat(),
        }
        for index, minute in enumerate(minutes)
    ]
    _send(ingest, *pages)
    # when
    stream.drain()
    # then
    profile = _profile("u:ada")
    assert profile.sessions == 2
    assert profile.pages == 5
    assert profile.session_pages == 2
    assert profile.last_session_pages == 3
    assert profile.session_started == "2026-11-28T10:50:00.000Z"
    assert profile.last_seen == "2026-11-28T10:55:00.000Z"


class _FlakyStore(EventStore):
    """The real store, except that saving some people's profiles fails (throttled, say)."""

    def __init__(self, store: EventStore, failing: set[PersonId]) -> None:
        super().__init__(store._client, store._table)
        self.failing = failing

    def save_profiles(self, profiles: Sequence[Profile]) -> set[PersonId]:
        refused = {profile.person for profile in profiles if profile.person in self.failing}
        super().save_profiles([profile for profile in profiles if profile.person not in refused])
        return refused


@pytest.fixture
def flaky(aws: Aws, monkeypatch: pytest.MonkeyPatch) -> tuple[_FlakyStore, Stream]:
    """An Evaluate function whose composition root wires the flaky store in, and its stream.

    The service is built when the handler module is imported, so the patch comes first.
    """
    store = _FlakyStore(bootstrap.event_store(), failing=_people("u:bob", "u:dave"))
    monkeypatch.setattr(bootstrap, "event_store", lambda: store)
    return store, Stream.of(aws, aws.load_handler("Evaluate"))


ORDER = ["alice", "bob", "alice", "carol", "dave", "alice"]


def _interleaved(ingest: Invoke) -> None:
    _send(
        ingest,
        *[_track(user, "Item Viewed", index, f"m-{index}") for index, user in enumerate(ORDER)],
    )


def _people(*persons: str) -> set[PersonId]:
    return {PersonId.parse(person) for person in persons}


def _events_by_person(*persons: str) -> dict[str, int]:
    """Each person's folded event count, keyed by their text form; people without a profile
    are left out."""
    folded = bootstrap.event_store().load_profiles(_people(*persons))
    return {str(person): profile.events for person, profile in folded.items()}


def _retry_from(response: dict[str, Any]) -> int:
    """Where Lambda resumes a stream batch: the lowest sequence number the function reported."""
    return min(int(failure["itemIdentifier"]) for failure in response["batchItemFailures"])


def _first_sequence(records: list[dict[str, Any]], person: str) -> str:
    return next(
        str(r["dynamodb"]["SequenceNumber"])
        for r in records
        if r["dynamodb"]["Keys"]["pk"]["S"] == f"P#{person}"
    )


def test_failed_person_is_reported_from_its_lowest_sequence_number(
    ingest: Invoke, flaky: tuple[_FlakyStore, Stream]
):
    """When saving some people fails, each is reported by its first record, so the batch resumes
    from the lowest of them."""
    # given
    _, stream = flaky
    _interleaved(ingest)
    records = stream.read()
    # when
    (response,) = stream.deliver(records)
    # then
    reported = sorted(failure["itemIdentifier"] for failure in response["batchItemFailures"])
    assert reported == sorted(_first_sequence(records, person) for person in ("u:bob", "u:dave"))
    assert _retry_from(response) == int(_first_sequence(records, "u:bob"))


def test_other_people_are_applied_when_one_fails(ingest: Invoke, flaky: tuple[_FlakyStore, Stream]):
    """One person's failure does not hold back everyone else's profile."""
    # given
    _, stream = flaky
    _interleaved(ingest)
    # when
    stream.deliver(stream.read())
    # then
    assert _events_by_person("u:alice", "u:bob", "u:carol", "u:dave") == {
        "u:alice": 3,
        "u:carol": 1,
    }


def test_redelivery_from_the_reported_record_converges_to_exact_counts(
    ingest: Invoke, flaky: tuple[_FlakyStore, Stream]
):
    """A retry from the reported record folds the failed people once and the others not again."""
    # given
    store, stream = flaky
    _interleaved(ingest)
    records = stream.read()
    (response,) = stream.deliver(records)
    failed_from = _retry_from(response)
    store.failing.clear()
    # when
    retry = stream.deliver(
        [r for r in records if int(r["dynamodb"]["SequenceNumber"]) >= failed_from]
    )
    # then
    assert retry == [{"batchItemFailures": []}]
    assert _events_by_person("u:alice", "u:bob", "u:carol", "u:dave") == {
        f"u:{user}": count for user, count in Counter(ORDER).items()
    }


def test_only_inserted_events_reach_the_function(aws: Aws, ingest: Invoke, evaluate: Invoke):
    """The template's filter passes event INSERTs only: not a retry's MODIFY, links or profiles."""
    # given
    received: list[dict[str, Any]] = []

    def spy(event: dict[str, Any]) -> dict[str, Any]:
        received.extend(event["Records"])
        return evaluate(event)

    identify = {"type": "identify", "userId": "ada", "anonymousId": "anon-1", "messageId": "m-id"}
    _send(ingest, identify)
    ingest(beacon("batch", {"batch": [identify]}, at=NOW + timedelta(hours=2)))
    stream = Stream.of(aws, spy)
    written = stream.read()
    # when
    stream.deliver(written)
    # then
    assert sorted((r["eventName"], r["dynamodb"]["NewImage"]["kind"]["S"]) for r in written) == [
        ("INSERT", "event"),
        ("INSERT", "link"),
        ("MODIFY", "event"),
    ]
    assert [(r["eventName"], r["dynamodb"]["Keys"]["sk"]["S"]) for r in received] == [
        ("INSERT", "E#m-id")
    ]
    assert _profile("u:ada").events == 1


def test_an_unreadable_record_is_reported_and_what_precedes_it_is_folded(
    ingest: Invoke, stream: Stream
):
    """An unreadable record is named in batchItemFailures; the records before it still count."""
    # given
    _send(ingest, _track("ada", "Item Viewed", 0, "m-1"))
    _send(ingest, _track("ada", "Item Viewed", 1, "m-2"))  # a second request, a second record
    records = stream.read()
    broken = [
        record for record in records if record["dynamodb"]["NewImage"].get("kind") == {"S": "event"}
    ]
    del broken[1]["dynamodb"]["NewImage"]["zd"]  # the packed body
    # when
    responses = stream.deliver(broken)
    # then
    assert responses == [
        {"batchItemFailures": [{"itemIdentifier": broken[1]["dynamodb"]["SequenceNumber"]}]}
    ]
    assert _profile("u:ada").events == 1


def test_events_re_sent_with_newer_ones_are_folded_once(ingest: Invoke, stream: Stream):
    """A retry batched differently stores old events again; Evaluate folds only the new one."""
    # given
    _send(ingest, _track("ada", "Item Viewed", 0, "m-1"), _track("ada", "Item Viewed", 1, "m-2"))
    stream.drain()
    # when
    _send(
        ingest,
        _track("ada", "Item Viewed", 0, "m-1"),
        _track("ada", "Item Viewed", 1, "m-2"),
        _track("ada", "Item Viewed", 2, "m-3"),
    )
    stream.drain()
    # then
    assert _profile("u:ada").event_counts == {"Item Viewed": 3}


def test_a_record_failing_midway_resumes_after_the_events_it_folded(
    ingest: Invoke, stream: Stream, monkeypatch: pytest.MonkeyPatch
):
    """A record holds a request's events: when its second event fails, the redelivered record
    folds the rest and not the first again."""
    # given a record of three events whose second cannot be decided the first time
    _send(
        ingest,
        _track("ada", "Item Viewed", 0, "m-1"),
        _track("ada", "Item Viewed", 1, "m-2"),
        _track("ada", "Item Viewed", 2, "m-3"),
    )
    records = stream.read()
    count_reaction = EvaluateService.count_reaction
    failures = [RuntimeError("throttled")]

    def fail_once_on_the_second(
        service: EvaluateService, event: dict[str, Any], now: datetime
    ) -> None:
        if event["messageId"] == "m-2" and failures:
            raise failures.pop()
        count_reaction(service, event, now)

    monkeypatch.setattr(EvaluateService, "count_reaction", fail_once_on_the_second)
    (first,) = stream.deliver(records)
    # when
    retry = stream.deliver(
        [r for r in records if int(r["dynamodb"]["SequenceNumber"]) >= _retry_from(first)]
    )
    # then
    assert retry == [{"batchItemFailures": []}]
    assert _profile("u:ada").event_counts == {"Item Viewed": 3}
