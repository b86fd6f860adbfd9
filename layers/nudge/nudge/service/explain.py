"""`explain`: why a person did or did not get a trigger, for the CLI and the local stack.

Mostly the decision records the engine and delivery left. Two things come from the
profile instead, because a record per event would cost a write per event: each event
trigger's latest ``not_matched`` (kept on the profile write the event makes anyway), and
where an inactivity trigger stands for someone who is simply active (worked out when
asked).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from nudge.adapters.engine_store import EngineStore
from nudge.adapters.store import EventStore, PersonView
from nudge.domain.person import PersonId
from nudge.domain.timefmt import iso
from nudge.domain.triggers.engine import TriggerIndex, inactivity_status
from nudge.domain.triggers.journey import describe_step, step_at

__all__ = ["explain", "journeys", "partitions"]


def explain(
    events: EventStore, engine: EngineStore, index: TriggerIndex, user_id: str, now: datetime
) -> list[dict[str, Any]]:
    """Every recorded decision about the person, oldest first, then where inactivity
    triggers stand now."""
    view = events.read_person(user_id)
    recorded = sorted(
        engine.decisions(partitions(user_id, view)) + _misses(view),
        key=lambda decision: str(decision["at"]),
    )
    decided = {(decision["trigger"], decision.get("occurrence")) for decision in recorded}
    waiting = [
        status
        for status in _waiting(index, view, now)
        if (status["trigger"], status["occurrence"]) not in decided
    ]
    return recorded + waiting


def journeys(
    events: EventStore, engine: EngineStore, index: TriggerIndex, user_id: str
) -> list[dict[str, Any]]:
    """Where the person is in each journey occurrence: waiting at a step (its timer: the
    step, what it waits for, when it is due), or out of it (its last decision: completed,
    or exited and why)."""
    view = events.read_person(user_id)
    persons = partitions(user_id, view)
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for decision in engine.decisions(persons):  # oldest first: the last one stays
        trigger = index.triggers.get(str(decision["trigger"]))
        if trigger is None or trigger.steps is None:
            continue
        if decision["outcome"] in ("exited", "completed"):
            found[(trigger.id, str(decision.get("occurrence")))] = {
                "trigger": trigger.id,
                "occurrence": decision.get("occurrence"),
                "status": decision["outcome"],
                "step": decision.get("step"),
                "reason": decision["reason"],
                "at": decision["at"],
            }
    for timer, _ in engine.timers(persons):
        trigger = index.triggers.get(timer.trigger)
        if trigger is None or trigger.steps is None or timer.step is None:
            continue
        found[(trigger.id, timer.occurrence)] = {
            "trigger": trigger.id,
            "occurrence": timer.occurrence,
            "status": "waiting",
            "step": timer.step,
            "reason": describe_step(step_at(trigger.steps, timer.step)),
            "at": iso(timer.due),  # when the step is due
        }
    return [found[key] for key in sorted(found)]


def partitions(user_id: str, view: PersonView) -> list[PersonId]:
    """Every partition of one person: the user, and the visitors they were (``user_id``
    may name a visitor nobody has linked yet)."""
    persons = [PersonId.user(user_id), PersonId.anonymous(user_id)]
    if view.profile is not None:
        persons += [PersonId.anonymous(anon) for anon in view.profile.anonymous_ids]
    return list(dict.fromkeys(persons))


def _misses(view: PersonView) -> list[dict[str, Any]]:
    """Each event trigger's latest ``not_matched`` or ``duplicate``, from the person's
    profiles."""
    profiles = [view.profile, *view.linked_profiles] if view.profile else []
    return [
        {
            "trigger": trigger,
            "outcome": miss.outcome,
            "reason": miss.reason,
            "at": miss.at,
            "occurrence": miss.occurrence,
            "person": str(profile.person),
        }
        for profile in profiles
        for trigger, miss in profile.misses.items()
    ]


def _waiting(index: TriggerIndex, view: PersonView, now: datetime) -> list[dict[str, Any]]:
    if view.profile is None:
        return []
    seen = [
        datetime.fromisoformat(profile.last_seen)
        for profile in (view.profile, *view.linked_profiles)
        if profile.last_seen
    ]
    last_seen = max(seen, default=None)
    waiting = []
    for trigger in index.inactivity:
        status = inactivity_status(trigger, view.profile.person, last_seen, now)
        if status is not None:
            waiting.append(
                {
                    "trigger": status.trigger,
                    "outcome": status.outcome,
                    "reason": status.reason,
                    "at": iso(status.at),
                    "occurrence": status.occurrence,
                    "person": str(status.person),
                }
            )
    return waiting
