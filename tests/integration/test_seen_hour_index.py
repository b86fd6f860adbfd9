"""The by_seen_hour index on moto: who the sweep finds in an hour, with and without shards."""

from __future__ import annotations

from datetime import timedelta

from nudge.adapters.store import EventStore
from nudge.domain.person import PersonId
from nudge.domain.profile import Profile

from tests.integration._harness import NOW, Aws

PEOPLE = [PersonId.user(f"user-{number}") for number in range(20)]


def _seen(store: EventStore, persons: list[PersonId], at: str) -> None:
    assert store.save_profiles([Profile(person=p, last_seen=at) for p in persons]) == set()


def test_everyone_filed_under_an_hour_is_found_across_its_shards(aws: Aws) -> None:
    """With 4 shards, the people seen in one hour are spread over shards and all found."""
    # given
    store = EventStore(aws.dynamodb, aws.table, sweep_shards=4)
    _seen(store, PEOPLE, NOW.isoformat())
    # when
    found = store.persons_seen_in(NOW)
    # then
    assert found == sorted(PEOPLE)


def test_people_seen_in_another_hour_are_not_found(aws: Aws) -> None:
    """The hour before and the hour after are other partitions."""
    # given
    store = EventStore(aws.dynamodb, aws.table, sweep_shards=4)
    _seen(store, PEOPLE[:3], (NOW - timedelta(minutes=1)).isoformat())
    _seen(store, PEOPLE[3:6], (NOW + timedelta(hours=1)).isoformat())
    # when
    found = store.persons_seen_in(NOW)
    # then
    assert found == []


def test_raising_the_shard_count_still_finds_people_filed_before(aws: Aws) -> None:
    """Filed with 1 shard, then read with 8: shard 0 is among the 8, so no one is hidden."""
    # given
    _seen(EventStore(aws.dynamodb, aws.table, sweep_shards=1), PEOPLE, NOW.isoformat())
    # when
    found = EventStore(aws.dynamodb, aws.table, sweep_shards=8).persons_seen_in(NOW)
    # then
    assert found == sorted(PEOPLE)
