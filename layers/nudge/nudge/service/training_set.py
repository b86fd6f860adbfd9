"""Training sets without leakage: each person's features as they were at a cut-off, from
the events before it only, folded into the profile exactly as Evaluate folds them; the
label from what the person did in the horizon after it.

Pure: the events and the cut-offs are passed in. The held-out cut-offs are the latest;
a training cut-off whose horizon reaches into them is left out, so no label the model
learns from was decided by events of the held-out period (a purged split by time).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from nudge.domain.intake import Event
from nudge.domain.person import PersonId
from nudge.domain.predictions.features import feature_values
from nudge.domain.predictions.model import EventLabel, Prediction
from nudge.domain.profile import Profile, fold
from nudge.domain.triggers.conditions import Facts, event_name, holds

__all__ = ["Row", "Split", "cutoff_times", "split_by_time", "training_rows"]


@dataclass(frozen=True)
class Row:
    """One person at one cut-off: their features as of then, and the label after it."""

    person: PersonId
    cutoff: datetime
    features: list[float | None]
    label: bool


@dataclass(frozen=True)
class Split:
    """The rows trained on, and the later ones held out to judge the model."""

    train: list[Row]
    held_out: list[Row]
    train_cutoffs: list[datetime]
    held_out_cutoffs: list[datetime]


def cutoff_times(
    first: datetime, last: datetime, horizon: timedelta, count: int, every: timedelta
) -> list[datetime]:
    """Up to ``count`` midnights (UTC), ``every`` apart, oldest first: the latest whose
    whole horizon lies within the events, and none before the first event."""
    latest = (last - horizon).replace(hour=0, minute=0, second=0, microsecond=0)
    times = [latest - every * step for step in range(count)]
    return sorted(moment for moment in times if moment > first)


def training_rows(
    events: Sequence[Event], prediction: Prediction, cutoffs: Sequence[datetime]
) -> list[Row]:
    """A row per person in the audience at each cut-off. ``events`` in time order."""
    by_person: dict[PersonId, list[Event]] = defaultdict(list)
    for event in events:
        by_person[PersonId.of(event.user_id, event.anonymous_id)].append(event)
    rows: list[Row] = []
    for person, theirs in by_person.items():
        rows += _person_rows(person, theirs, prediction, sorted(cutoffs))
    rows.sort(key=lambda row: (row.cutoff, str(row.person)))
    return rows


def _person_rows(
    person: PersonId, events: list[Event], prediction: Prediction, cutoffs: list[datetime]
) -> list[Row]:
    rows: list[Row] = []
    profile = Profile(person=person)
    history: list[tuple[datetime, Any]] = []
    bodies: list[dict[str, Any]] = []
    folded = 0
    for cutoff in cutoffs:
        # Only what happened before the cut-off goes into the profile: the fold stops there.
        while folded < len(events) and events[folded].timestamp < cutoff:
            event = events[folded]
            profile = fold(profile, event)
            history.append((event.timestamp, event_name(event.body)))
            bodies.append(event.body)
            folded += 1
        if not folded:
            continue
        facts = profile.facts(cutoff)
        if prediction.audience is not None and not holds(
            prediction.audience,
            Facts(now=cutoff, traits=profile.traits, profile=facts, history=bodies),
        ):
            continue
        features = feature_values(prediction.feature_list, facts, history, cutoff)
        label = _label(prediction, events[folded:], cutoff)
        rows.append(Row(person, cutoff, features, label))
    return rows


def _label(prediction: Prediction, after: list[Event], cutoff: datetime) -> bool:
    """What the horizon after the cut-off held: ``after`` is the person's events from it on."""
    end = cutoff + prediction.horizon
    within = (event for event in after if event.timestamp < end)
    if isinstance(prediction.label, EventLabel):
        wanted = prediction.label.event
        return any(event_name(event.body) == wanted for event in within)
    return next(within, None) is None


def split_by_time(
    rows: Sequence[Row], cutoffs: Sequence[datetime], horizon: timedelta, held_out: int
) -> Split:
    """The latest ``held_out`` cut-offs are held out; training keeps the earlier ones
    whose horizon ends by the first held-out cut-off."""
    ordered = sorted(cutoffs)
    tested = ordered[-held_out:] if held_out else []
    boundary = tested[0] if tested else None
    trained = [
        c for c in ordered if c not in tested and (boundary is None or c + horizon <= boundary)
    ]
    train_set, test_set = set(trained), set(tested)
    return Split(
        train=[row for row in rows if row.cutoff in train_set],
        held_out=[row for row in rows if row.cutoff in test_set],
        train_cutoffs=trained,
        held_out_cutoffs=tested,
    )
