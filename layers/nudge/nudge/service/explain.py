"""`explain`: why a person did or did not get a trigger, for the CLI and the local stack.

Mostly the decision records the engine and delivery left. Two things come from the
profile instead, because a record per event would cost a write per event: each event
trigger's latest ``not_matched`` (kept on the profile write the event makes anyway), and
where an inactivity trigger stands for someone who is simply active (worked out when
asked). A prediction's score is on the profile too; what moved it is worked out when
asked, from the profile and the events before the moment it was scored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from nudge.adapters.engine_store import EngineStore
from nudge.adapters.store import EventStore, PersonView
from nudge.domain.person import PersonId
from nudge.domain.predictions.contributions import Explained
from nudge.domain.predictions.live import Scoring, explain_score
from nudge.domain.predictions.score import ModelProblem
from nudge.domain.profile import Profile
from nudge.domain.timefmt import iso
from nudge.domain.triggers.engine import TriggerIndex, inactivity_status
from nudge.domain.triggers.journey import describe_step, step_at

__all__ = ["explain", "journeys", "partitions", "scores"]


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


def scores(events: EventStore, scoring: Scoring, user_id: str) -> dict[str, Any]:
    """Each score on the person's profile: its value, its model, and the contributions of
    its features, largest first (or, in ``contributionsUnavailable``, why there are none)."""
    profile = events.read_person(user_id).profile
    if profile is None or not profile.scores:
        return {}
    as_of = profile.scored_at or profile.folded_at  # the sweep's re-score, or the last fold
    if as_of is None:  # scores are only ever kept by a fold or the sweep: never here
        return {
            prediction: {**kept, "contributionsUnavailable": "the profile has no fold time"}
            for prediction, kept in profile.to_json()["scores"].items()
        }
    scored_at = datetime.fromisoformat(as_of)
    # The one read scoring made: the scored partition's events back to the longest window.
    history = (
        events.events_since(profile.person, scored_at - scoring.window, scored_at)
        if scoring.window
        else []
    )
    facts = profile.facts(scored_at)
    found: dict[str, Any] = {}
    for prediction, kept in profile.to_json()["scores"].items():
        why = explain_score(scoring, prediction, kept["model"], facts, history, scored_at)
        found[prediction] = {**kept, **_explained(why, profile, prediction)}
    return found


def _explained(why: Explained | ModelProblem, profile: Profile, prediction: str) -> dict[str, Any]:
    if isinstance(why, ModelProblem):
        return {"contributionsUnavailable": str(why)}
    body: dict[str, Any] = {
        "asOf": profile.scored_at or profile.folded_at,
        "base": {"score": round(why.base_score, 1), "logOdds": round(why.base_log_odds, 4)},
        "logOdds": round(why.log_odds, 4),
        "contributions": [
            {
                "feature": contribution.feature,
                "value": contribution.value,
                "points": round(contribution.points, 2),
                "logOdds": round(contribution.log_odds, 4),
            }
            for contribution in why.contributions
        ],
    }
    kept = profile.scores[prediction]
    if round(why.score) != kept:
        # The events before that moment changed since it was scored: some expired, were
        # forgotten, or arrived late, stamped before it. The contributions are of this score.
        body["note"] = (
            f"the features read again give {round(why.score)}, not {kept}: the person's"
            " events before then have changed since it was scored"
        )
    return body


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
