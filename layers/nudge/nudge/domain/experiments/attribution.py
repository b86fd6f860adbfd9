"""Attribution: who was assigned to which arm when, and which goal events convert them.

The analysis is intention-to-treat from assignment. A person is assigned when they enter
an experiment's trigger (whatever then becomes of the fire: sent, exited, capped, held
out), and the assignment stays open for the goal's window (``goal.within``, counted from
assignment). A goal event inside the window converts every open assignment of that person
whose goal it is: the first goal event counts the conversion once, and every goal event
inside the window adds its value to the revenue.

A person keeps their arm across re-entries (the engine sees to that). A re-entry while an
assignment is open is the same exposure and opens nothing; a re-entry after the window has
closed opens a new assignment, in the same arm, counted again. So ``assigned`` counts
assignments: people, when their entries are more than a window apart.

Everything here is pure: the caller passes the time in and stores what comes out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from nudge.domain.experiments.naming import experiment_key

if TYPE_CHECKING:
    from nudge.domain.triggers.model import Trigger

__all__ = [
    "DEFAULT_VALUE_PATH",
    "Assignment",
    "arms_open_at",
    "goal_value",
    "new_assignment",
    "open_for_goal",
]

# The goal's value when the trigger names none (Segment's Order Completed carries ``total``;
# ``revenue`` is the Ecommerce spec's older name for the same, named explicitly in triggers).
DEFAULT_VALUE_PATH = "properties.total"


@dataclass(frozen=True)
class Assignment:
    """One person's time in one arm of one experiment version."""

    trigger: str
    version: str
    arm: str
    since: datetime  # when they entered: the window and the assignment's day count from it
    until: datetime  # the end of the goal's window (exclusive)
    goal: str  # the goal event's name, as the trigger said when they were assigned
    value_path: str | None = None  # where the goal event's value is; None: the default
    converted: bool = False

    def is_open(self, at: datetime) -> bool:
        return self.since <= at < self.until

    def converted_now(self) -> Assignment:
        return replace(self, converted=True)

    @property
    def arm_key(self) -> str:
        """Where the engine keeps this arm among a person's arms."""
        return experiment_key(self.trigger, self.version)


def arms_open_at(assignments: Iterable[Assignment], at: datetime) -> dict[str, str]:
    """The arms of the assignments still open at ``at``, as the engine takes a person's arms:
    a visitor's arm is the user's they became, while its assignment is open."""
    return {a.arm_key: a.arm for a in sorted(assignments, key=lambda a: a.since) if a.is_open(at)}


def new_assignment(trigger: Trigger, arm: str, at: datetime) -> Assignment:
    """The assignment a person's entry at ``at`` opens, when none of theirs is open."""
    experiment = trigger.experiment
    if experiment is None:
        raise ValueError(f"{trigger.id} runs no experiment")
    goal = experiment.goal
    return Assignment(
        trigger=trigger.id,
        version=experiment.version,
        arm=arm,
        since=at,
        until=at + goal.within,
        goal=goal.event,
        value_path=goal.value,
    )


def open_for_goal(
    assignments: Iterable[Assignment], event_name: object, at: datetime
) -> list[Assignment]:
    """The assignments a goal event named ``event_name`` at ``at`` counts for."""
    return [
        assignment
        for assignment in assignments
        if assignment.goal == event_name and assignment.is_open(at)
    ]


def goal_value(assignment: Assignment, event: Mapping[str, Any]) -> float:
    """What the goal event brought: the number at the goal's ``value`` path, else at
    ``properties.total``; 0 when there is none, or it is not a finite number."""
    # Only Evaluate counts goals, and its engine has loaded the conditions already; Feedback
    # and Send, which import this module for Assignment, need not load the trigger language.
    from nudge.domain.triggers.conditions import Facts, values_at

    facts = Facts(now=assignment.since, event=event)
    for value in values_at(assignment.value_path or DEFAULT_VALUE_PATH, facts):
        number = _number(value)
        if number is not None:
            return number
    return 0.0


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None
