"""Privacy requests: a person's data exported as one document, or erased for good.

A person is every partition they have: the user and the anonymous visitors linked to them
(the profile lists them). Erasure deletes every item under those partitions (events,
profile, link, timers and their schedules, ledger, fires, decisions, contact record,
experiment assignments, in-app messages and connections) and leaves a tombstone in each,
which Evaluate checks with every batch: an event that arrives later for a forgotten person
is deleted, never folded or decided on. Both requests are idempotent.

What erasure keeps, and why: suppressions (an address that bounced, complained or
unsubscribed must stay unsent-to: the record of a refusal is the reason for keeping it),
and the experiment counters (sums by day and arm, about nobody).
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from typing import Any

from nudge.domain.person import PersonId
from nudge.service.ports import PersonData, ProfileReader, Scheduler

__all__ = ["PrivacyService"]

_TOMBSTONE_SORT_KEY = "FORGOTTEN"


class PrivacyService:
    def __init__(self, *, people: ProfileReader, data: PersonData, reminders: Scheduler) -> None:
        self._people = people
        self._data = data
        self._reminders = reminders

    def identities(self, user_id: str) -> list[PersonId]:
        """The user's partitions: the user, a visitor of that id, and linked visitors."""
        user = PersonId.user(user_id)
        # Every profile still stored, expired or not: an export shows it, an erasure deletes it.
        profile = self._people.load_profiles([user]).get(user)
        linked = [PersonId.anonymous(anon) for anon in profile.anonymous_ids] if profile else []
        return list(dict.fromkeys([user, PersonId.anonymous(user_id), *linked]))

    def export(self, user_id: str) -> dict[str, Any]:
        """Everything stored about the person, by partition and kind of item."""
        partitions = []
        for person in self.identities(user_id):
            items = self._data.items(person)
            if items:
                partitions.append({"person": str(person), "items": _by_kind(items)})
        return {"userId": user_id, "partitions": partitions}

    def forget(self, user_id: str, now: datetime) -> dict[str, Any]:
        """Erases the person and tombstones every partition; how much went, by kind."""
        deleted: Counter[str] = Counter()
        schedules = 0
        identities = self.identities(user_id)
        for person in identities:
            items = [i for i in self._data.items(person) if i.get("sk") != _TOMBSTONE_SORT_KEY]
            for item in items:
                if item.get("kind") == "timer" and item.get("schedule"):
                    self._reminders.cancel(str(item["schedule"]))
                    schedules += 1
            # The tombstone first: an event arriving while the rest goes is dropped too.
            self._data.tombstone(person, now)
            self._data.delete(person, [str(item["sk"]) for item in items])
            deleted.update(str(item.get("kind", "other")) for item in items)
        return {
            "userId": user_id,
            "forgotten": [str(person) for person in identities],
            "deleted": dict(sorted(deleted.items())),
            "schedulesCancelled": schedules,
        }


def _by_kind(items: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Items grouped by kind, with JSON held in strings (event bodies, traits) opened."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        readable = {name: _opened(value) for name, value in item.items() if name != "pk"}
        grouped.setdefault(str(item.get("kind", "other")), []).append(readable)
    return grouped


def _opened(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value
