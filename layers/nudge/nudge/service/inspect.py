"""What the table says about people, for operators: `nudge explain` and the local stack's
control API read through here, never a function.

Read-only. A person is the user and the visitors they were (``explain.partitions``), so
every view of one person reads all of their partitions.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from nudge.adapters.contacts import ContactStore
from nudge.adapters.engine_store import EngineStore
from nudge.adapters.fire_scan import FireScan
from nudge.adapters.store import EventStore, PersonView
from nudge.domain.person import PersonId
from nudge.domain.predictions.live import Scoring
from nudge.domain.triggers.engine import TriggerIndex
from nudge.service.explain import explain, journeys, partitions, scores

__all__ = ["PersonViews"]


class PersonViews:
    def __init__(
        self,
        events: EventStore,
        engine: EngineStore,
        contacts: ContactStore,
        scan: FireScan,
        index: TriggerIndex,
        scoring: Scoring | None = None,
    ) -> None:
        self._events = events
        self._engine = engine
        self._contacts = contacts
        self._scan = scan
        self._index = index  # only to say where inactivity triggers stand
        self._scoring = scoring or Scoring()  # only to take kept scores apart

    def person(self, user_id: str) -> PersonView:
        """The user's profile, the profiles of the visitors they were, and their events."""
        return self._events.read_person(user_id)

    def explain(self, user_id: str, now: datetime) -> list[dict[str, Any]]:
        """Every recorded decision about the person, oldest first, then where inactivity
        triggers stand at ``now``."""
        return explain(self._events, self._engine, self._index, user_id, now)

    def journeys(self, user_id: str) -> list[dict[str, Any]]:
        """Where the person is in each journey: waiting at a step, completed, or exited."""
        return journeys(self._events, self._engine, self._index, user_id)

    def scores(self, user_id: str) -> dict[str, Any]:
        """The person's prediction scores as of their last event, each with its model and
        the features' contributions to it (or why they are not available)."""
        return scores(self._events, self._scoring, user_id)

    def fires(self, user_id: str) -> list[dict[str, Any]]:
        """The person's fires, oldest first."""
        return self._engine.fires(partitions(user_id, self._events.read_person(user_id)))

    def all_fires(self) -> list[dict[str, Any]]:
        """Every fire in the table, oldest first (a Scan: for small tables and operators)."""
        return self._scan.all_fires()

    def delivery_mark(self, fire: Mapping[str, Any]) -> str:
        """How far delivery of a fire record got, from its person's contact record:
        ``claimed@<time>``, ``failed@<time>`` or ``sent@<time>``; empty when the record has
        no mark for it (not handled yet, or marked more than 3 days ago)."""
        marks = self._contacts.load(PersonId.parse(str(fire.get("person")))).fires
        return marks.get(str(fire.get("fireId")), "")
