"""Fold newly inserted events into their person's profile, exactly once per stream record.

Records of one partition key arrive on one shard, in order, so one writer at a time
updates a profile; the ``applied_seq`` watermark makes a redelivered record a no-op.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from nudge.adapters.store import EventStore, StoredEvent
from nudge.domain.profile import Profile, fold

__all__ = ["ApplyResult", "ProfileService", "SequencedEvent"]


@dataclass(frozen=True)
class SequencedEvent:
    sequence: int
    stored: StoredEvent


@dataclass(frozen=True)
class ApplyResult:
    # Lambda redelivers from the lowest failed sequence number onwards; the watermark
    # turns the records already applied after it into no-ops.
    failed_from: int | None = None
    errors: list[str] = field(default_factory=list)


class ProfileService:
    def __init__(self, store: EventStore) -> None:
        self._store = store

    def apply(self, records: Sequence[SequencedEvent]) -> ApplyResult:
        by_person: dict[str, list[SequencedEvent]] = defaultdict(list)
        for record in sorted(records, key=lambda record: record.sequence):
            by_person[record.stored.person].append(record)
        if not by_person:
            return ApplyResult()
        current = self._store.load_profiles(by_person)  # one read per 100 people
        updated: list[Profile] = []
        failed: list[int] = []
        errors: list[str] = []
        for person, person_records in by_person.items():
            try:
                profile = _folded(current.get(person) or Profile(person=person), person_records)
            except Exception as error:  # one person's bad data must not block the others
                failed.append(person_records[0].sequence)
                errors.append(f"{person}: {type(error).__name__}: {error}")
                continue
            if profile is not None:
                updated.append(profile)
        for person in self._store.save_profiles(updated):
            failed.append(by_person[person][0].sequence)
            errors.append(f"{person}: DynamoDB kept refusing the write")
        return ApplyResult(failed_from=min(failed) if failed else None, errors=errors)


def _folded(profile: Profile, records: list[SequencedEvent]) -> Profile | None:
    """The profile with the records it has not seen yet; None when it has seen them all."""
    fresh = [record for record in records if record.sequence > profile.applied_seq]
    if not fresh:
        return None
    for record in fresh:
        profile = fold(profile, record.stored.event)
    return replace(profile, applied_seq=fresh[-1].sequence)
