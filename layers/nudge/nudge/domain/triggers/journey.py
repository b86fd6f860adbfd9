"""Journeys: a trigger's ``steps``, walked one stretch at a time. Pure.

For each occurrence a journey is in one place at a time: waiting at a step (one timer:
one item and one schedule, which name the step), or nowhere (not begun, or over). A walk
starts at a position and runs the steps until one must wait: a send becomes a fire,
claimed in the ledger under its own step (so a step sends at most once per occurrence,
however often a timer fires or a batch is redelivered); a branch picks its way; a wait or
a wait_until arms the next timer in place of the last one. When the steps run out, the
journey is finished and its timer goes.

Positions are paths through the steps: "0" is the first step, "3.then.1" the second step
of the fourth step's ``then``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from nudge.domain.durations import words
from nudge.domain.person import PersonId
from nudge.domain.triggers.actions import (
    Action,
    Arm,
    Decision,
    Finish,
    Fire,
    Pending,
    TimerKind,
    step_occurrence,
)
from nudge.domain.triggers.compiled import compile_condition
from nudge.domain.triggers.conditions import Facts, _timestamp, event_name, same_value
from nudge.domain.triggers.explain import describe
from nudge.domain.triggers.model import (
    Branch,
    Reentry,
    SendStep,
    Step,
    Trigger,
    WaitStep,
    WaitUntil,
    WaitUntilStep,
)

__all__ = [
    "FIRST",
    "STEP_REENTRY",
    "Walker",
    "arrival",
    "arrives",
    "describe_step",
    "next_position",
    "starts_waiting",
    "step_at",
    "step_wait",
    "waiting_at",
]

FIRST = "0"
# A send step's ledger claim: once per occurrence and step. The trigger's own re-entry rule
# (once, once_per) is claimed when the journey begins.
STEP_REENTRY = Reentry(mode="every_time")


def step_at(steps: Sequence[Step], position: str) -> Step:
    """The step at a position ("3.then.1")."""
    parts = position.split(".")
    found: Step = steps[int(parts[0])]
    for side, number in zip(parts[1::2], parts[2::2], strict=True):
        assert isinstance(found, Branch), f"{position}: only a branch has sides"
        found = _side(found, side)[int(number)]
    return found


def waiting_at(steps: Sequence[Step], position: str | None) -> WaitStep | WaitUntilStep | None:
    """The wait a journey's timer says it is at; None when the position names no wait any
    more (the trigger's steps were edited while people were in the journey)."""
    try:
        step = step_at(steps, position or FIRST)
    except (IndexError, ValueError, AssertionError):
        return None
    return step if isinstance(step, WaitStep | WaitUntilStep) else None


def next_position(steps: Sequence[Step], position: str) -> str | None:
    """Where a journey goes once the step at ``position`` is done: the next step in its
    list, else the step after the branch holding that list; None past the last step."""
    parts = position.split(".")
    parent = ".".join(parts[:-2])
    if parent:
        branch = step_at(steps, parent)
        assert isinstance(branch, Branch)
        siblings: Sequence[Step] = _side(branch, parts[-2])
    else:
        siblings = steps
    following = int(parts[-1]) + 1
    if following < len(siblings):
        return ".".join([*parts[:-1], str(following)])
    return next_position(steps, parent) if parent else None


def _side(branch: Branch, side: str) -> Sequence[Step]:
    return branch.then if side == "then" else branch.else_


def starts_waiting(trigger: Trigger) -> bool:
    """Whether the journey's first step is a wait (so nothing is sent at entry)."""
    return bool(trigger.steps) and isinstance(
        step_at(trigger.steps or [], FIRST), WaitStep | WaitUntilStep
    )


def step_wait(step: Step) -> tuple[timedelta, TimerKind] | None:
    """How long a step waits at most, and its timer's kind; None for a step that does not."""
    if isinstance(step, WaitStep):
        return step.wait, "wait"
    if isinstance(step, WaitUntilStep):
        return step.wait_until.within, "wait_until"
    return None


def describe_step(step: Step) -> str:
    """A step in words, for explain and the decisions."""
    if isinstance(step, WaitStep):
        return f"wait {words(step.wait)}"
    if isinstance(step, WaitUntilStep):
        waiting = step.wait_until
        same = f" (same {waiting.same.rsplit('.', 1)[-1]})" if waiting.same else ""
        return f"wait up to {words(waiting.within)} for {waiting.event}{same}, then {waiting.then}"
    if isinstance(step, Branch):
        return f"if {describe(step.if_)}"
    assert isinstance(step, SendStep)
    return f"send {step.send.channel} {step.send.template}"


def arrives(waiting: WaitUntil, timer: Pending, event: Mapping[str, Any], facts: Facts) -> bool:
    """Whether ``event`` is the one a journey waiting at a wait_until step waits for: its
    name and where, about the same thing as the entry, and within the step's window (a
    late event stamped before the wait began is no answer to it)."""
    if event_name(event) != waiting.event or event.get("messageId") == timer.entry.get("messageId"):
        return False
    moment = _timestamp(event)
    if moment is None or not timer.due - waiting.within <= moment <= timer.due:
        return False
    if not same_value(waiting.same, timer.entry, event):
        return False
    return all(compile_condition(where).test(facts.with_event(event)) for where in waiting.where)


def arrival(waiting: WaitUntil, timer: Pending, facts: Facts) -> Mapping[str, Any] | None:
    """The awaited event among the person's history, if it came while the step waited:
    what a timer that fires before the stream has delivered the event must see."""
    for event in facts.history:
        if arrives(waiting, timer, event, facts):
            return event
    return None


@dataclass(frozen=True)
class Walker:
    """One occurrence of a journey, walked from a position at ``now``.

    ``person`` is who the messages go to; ``partition`` where the journey's timer lives
    (the partition it began under, which a visitor's stays). ``facts`` are what a branch
    reads: the person, and the entry event with the collected lists as its ``context``.
    """

    trigger: Trigger
    person: PersonId
    partition: PersonId
    occurrence: str
    entry: Mapping[str, Any]
    facts: Facts

    @property
    def now(self) -> datetime:
        return self.facts.now

    def walk(
        self, start: str | None, replaces: Pending | None, why: str = ""
    ) -> tuple[list[Action], list[Decision]]:
        """Runs the steps from ``start`` until one waits or none are left. ``replaces``
        is the timer the journey waited on until now (None at entry); ``why`` opens the
        first decision's reason (what moved the journey on)."""
        steps = self.trigger.steps or []
        actions: list[Action] = []
        decisions: list[Decision] = []
        notes = [why] if why else []
        position = start
        while position is not None:
            step = step_at(steps, position)
            if isinstance(step, Branch):
                failed = compile_condition(step.if_).check(self.facts)
                notes.append(f"step {position}: {describe_step(step)}: {failed or 'held'}")
                position = self._into(step, position, steps, held=failed is None)
                continue
            reason = "; ".join([*notes, f"step {position}: {describe_step(step)}"])
            notes = []
            waits = step_wait(step)
            if waits is not None:
                timer = self._timer(position, waits)
                actions.append(Arm(timer, replaces=replaces))
                decisions.append(
                    self._decision("pending", f"{reason}, until {timer.due.isoformat()}", position)
                )
                return actions, decisions
            keyed = step_occurrence(self.occurrence, position)
            actions.append(
                Fire(self.trigger.id, self.person, keyed, self.now, self.entry, step=position)
            )
            decisions.append(self._decision("fired", reason, position, keyed))
            position = next_position(steps, position)
        if replaces is not None:
            actions.append(Finish(replaces, "completed"))
        reason = "; ".join([*notes, "the last step is done"])
        decisions.append(self._decision("completed", reason, None))
        return actions, decisions

    def leave(self, timer: Pending, why: str, reason: str) -> tuple[list[Action], list[Decision]]:
        """The journey ends at the step it waits at: an exit, a wait_until that says so,
        or the audience lost."""
        decision = self._decision("exited", f"step {timer.step}: {reason}", timer.step)
        return [Finish(timer, why)], [decision]

    def _into(self, branch: Branch, position: str, steps: Sequence[Step], held: bool) -> str | None:
        if held:
            return f"{position}.then.0"
        if branch.else_:
            return f"{position}.else.0"
        return next_position(steps, position)

    def _timer(self, position: str, waits: tuple[timedelta, TimerKind]) -> Pending:
        span, kind = waits
        return Pending(
            trigger=self.trigger.id,
            person=self.partition,
            occurrence=self.occurrence,
            due=self.now + span,
            kind=kind,
            entry=self.entry,
            step=position,
        )

    def _decision(
        self, outcome: Any, reason: str, step: str | None, occurrence: str | None = None
    ) -> Decision:
        return Decision(
            self.trigger.id,
            self.person,
            outcome,
            reason,
            self.now,
            occurrence or self.occurrence,
            step=step,
        )
