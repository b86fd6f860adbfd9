"""What the engine decides, as data: timers, fires, decisions, and the actions around
them. The service (live) and the backtest (in memory) carry them out; the engine and the
journey walker only make them. Pure."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from nudge.domain.outcomes import Outcome
from nudge.domain.person import PersonId

__all__ = [
    "Action",
    "Arm",
    "Assign",
    "Begin",
    "Cancel",
    "Decision",
    "Finish",
    "Fire",
    "Pending",
    "Result",
    "TimerKind",
    "step_occurrence",
]

# absence and delay: a single-send trigger's wait; wait and wait_until: a journey step's.
TimerKind = Literal["absence", "delay", "wait", "wait_until"]


def step_occurrence(occurrence: str, step: str | None) -> str:
    """What a journey's step is keyed by (its ledger entry, its schedule): the journey's
    occurrence and the step's position, so each step runs once per occurrence."""
    return occurrence if step is None else f"{occurrence}/{step}"


@dataclass(frozen=True)
class Pending:
    """A timer that was armed and has not been decided yet."""

    trigger: str
    person: PersonId  # the partition it was armed under (an anonymous visitor, perhaps)
    occurrence: str
    due: datetime
    kind: TimerKind
    entry: Mapping[str, Any] = field(default_factory=dict)  # the event that started it
    arm: str | None = None  # the experiment arm the person entered in
    step: str | None = None  # a journey's: the step it waits at ("2", "3.then.0")

    @property
    def keyed(self) -> str:
        """What names its schedule: the occurrence, and a journey's step."""
        return step_occurrence(self.occurrence, self.step)


@dataclass(frozen=True)
class Arm:
    """Set a timer: a trigger's wait, due at ``pending.due``."""

    pending: Pending
    # A journey moving on from one wait to the next: the timer this one takes the place of
    # (the same item, rewritten only if it still holds that step).
    replaces: Pending | None = None


@dataclass(frozen=True)
class Cancel:
    """Remove a pending timer, and why."""

    pending: Pending
    reason: str


@dataclass(frozen=True)
class Fire:
    """Send the trigger's message for this occurrence (the holdout's is only recorded)."""

    trigger: str
    person: PersonId
    occurrence: str
    at: datetime
    entry: Mapping[str, Any]
    arm: str | None = None  # the experiment arm; the holdout's fire is recorded, never sent
    step: str | None = None  # a journey's send step (its occurrence names the step too)

    @property
    def fire_id(self) -> str:
        """The same decision always has the same id, however often it is retried."""
        # The person's text form, as ids were always made: the ledger still knows them.
        basis = f"{self.trigger}|{self.person}|{self.occurrence}|{self.entry.get('messageId', '')}"
        return hashlib.sha256(basis.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Decision:
    """What was decided for a person and a trigger, and why: what explain reads back."""

    trigger: str
    person: PersonId
    outcome: Outcome  # the engine's own, or delivery's for what became of a fire
    reason: str
    at: datetime
    occurrence: str | None = None
    arm: str | None = None  # the experiment arm, on the records of an experiment's trigger
    step: str | None = None  # a journey's step the decision is about


@dataclass(frozen=True)
class Assign:
    """A person entered an experiment's trigger in ``arm``. On their first entry (``first``)
    the arm is to be kept with their profile (by its key: trigger and version), so that
    re-entries find it whatever the weights say by then; every entry may open an assignment
    for the report (attribution decides whether one is open already)."""

    key: str
    arm: str
    trigger: str
    person: PersonId
    first: bool


@dataclass(frozen=True)
class Finish:
    """A journey is over for this occurrence (its last step done, an exit, a wait_until
    that ends it, the audience lost): its timer goes. ``why`` is a short label, for the
    backtest's counts: completed, exit: <event>, wait_until: <event>, audience."""

    pending: Pending
    why: str


@dataclass(frozen=True)
class Begin:
    """A person enters a journey: ``fire`` is claimed in the ledger under the trigger's
    re-entry rule (as a single send is), and only if the claim stands are ``actions`` and
    ``decisions`` (its first steps) carried out. ``fire`` itself is never sent."""

    fire: Fire
    actions: tuple[Action, ...]
    decisions: tuple[Decision, ...]


Action = Arm | Cancel | Fire | Assign | Finish | Begin


@dataclass(frozen=True)
class Result:
    """What the engine decided on one event or timer: actions to carry out, decisions to record."""

    actions: list[Action] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
