"""The decisions a trigger leads to, on an event and when a timer is due. Pure.

The engine never stores, schedules or sends. It returns actions — arm a timer, cancel
one, fire — and a decision record for every trigger it considered; the service carries
them out. The same functions run on the table's stream, on a due schedule, and in the
backtest, which is what makes the backtest's answers the live system's answers.

A timer is a reminder, not the truth: when it is due, ``on_due`` looks at what the
person did since and decides again. Inactivity has no timer per person: an hourly sweep
reads who was last seen in the hour that has just become long enough ago (``swept_hour``)
and decides each of them (``on_inactive``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from nudge.domain.durations import words
from nudge.domain.outcomes import Outcome
from nudge.domain.person import PersonId
from nudge.domain.timefmt import hour_of
from nudge.domain.triggers.actions import (
    Action,
    Arm,
    Assign,
    Begin,
    Cancel,
    Decision,
    Finish,
    Fire,
    Pending,
    Result,
)
from nudge.domain.triggers.compiled import (
    Compiled,
    Values,
    compile_all,
    compile_condition,
    compile_path,
)
from nudge.domain.triggers.conditions import (
    Facts,
    event_name,
    matches_event,
    same_value,
    values_at,
)
from nudge.domain.triggers.experiment import HOLDOUT, assign, experiment_key
from nudge.domain.triggers.explain import why_not
from nudge.domain.triggers.model import (
    Absence,
    EventMatch,
    Inactivity,
    ScoreCross,
    Trigger,
    WaitUntil,
    WaitUntilStep,
)
from nudge.domain.triggers.scores import crossed, not_crossed

# The journey walker is imported where a trigger with steps needs it (the index built at
# cold start imports it when one is enabled): Evaluate's cold start without one does not
# load it (bench/README.md, "Handler import time").
if TYPE_CHECKING:
    from nudge.domain.triggers.journey import Walker

__all__ = [
    "SWEEP_EVERY",
    "Action",
    "Arm",
    "Assign",
    "Begin",
    "Cancel",
    "Decision",
    "Finish",
    "Fire",
    "Outcome",
    "Pending",
    "Result",
    "Timing",
    "TriggerIndex",
    "arm_key",
    "assigned",
    "collected",
    "hour_of",
    "inactivity_occurrence",
    "inactivity_status",
    "occurrence_of",
    "on_due",
    "on_event",
    "on_inactive",
    "on_rescored",
    "rescored_hours",
    "rescored_occurrence",
    "swept_hour",
    "timing_of",
]

# An entry as on_event reads it: its key ("" without one), where and audience (compiled: a
# reason, or None when they hold), whether the audience is decided now even for a visitor,
# whether a match fires at once, the fixed fields of its not_matched and fired decisions
# and of its fire, and the entry itself for the rest.
_Check = Callable[[Facts], str | None]
_Fields = dict[str, Any]
_Plan = tuple[str, _Check | None, _Check | None, bool, bool, _Fields, _Fields, _Fields, "_Entry"]
# An exit event and its where, compiled: what cancels a trigger's pending timer.
_Exit = tuple[EventMatch, Callable[[Facts], bool] | None]
SWEEP_EVERY = timedelta(hours=1)  # the InactivitySweep schedule's rate in template.yaml


@dataclass(frozen=True)
class TriggerIndex:
    """Triggers by the event names they watch, so an event costs only the triggers it can touch."""

    triggers: Mapping[str, Trigger]
    by_event: Mapping[str, tuple[Trigger, ...]]
    inactivity: tuple[Trigger, ...]
    exit_names: frozenset[str] = frozenset()  # events that may cancel a pending timer
    goal_names: frozenset[str] = frozenset()  # experiments' goal events: they may convert
    crossing: tuple[Trigger, ...] = ()  # score triggers: any event may move the score

    @classmethod
    def of(cls, triggers: Sequence[Trigger]) -> TriggerIndex:
        enabled = [trigger for trigger in triggers if trigger.enabled]
        by_event: dict[str, list[Trigger]] = defaultdict(list)
        for trigger in enabled:
            for name in sorted(trigger.watched_events):
                by_event[name].append(trigger)
        index = cls(
            triggers={trigger.id: trigger for trigger in enabled},
            by_event={name: tuple(found) for name, found in by_event.items()},
            inactivity=tuple(t for t in enabled if isinstance(t.when, Inactivity)),
            # Exits, and the events a journey's wait_until waits for: both act on a timer.
            exit_names=frozenset(
                match.event
                for trigger in enabled
                for match in [*trigger.exit_events, *trigger.waits_for]
            ),
            goal_names=frozenset(t.experiment.goal.event for t in enabled if t.experiment),
            crossing=tuple(t for t in enabled if isinstance(t.when, ScoreCross)),
        )
        index.compile()
        return index

    def compile(self) -> None:
        """Compiles the triggers' conditions now, at load, rather than on the first event."""
        _ = self.entries, self.exits

    def watching(self, name: str | None) -> tuple[Trigger, ...]:
        return self.by_event.get(name or "", ())

    @cached_property
    def entries(self) -> Mapping[str, tuple[_Plan, ...]]:
        """By event name, the triggers it enters, compiled (in ``watching``'s order)."""
        shared: dict[str, Compiled] = {}  # the same audience in many triggers: compiled once
        return {
            name: tuple(
                _Entry.of(trigger, trigger.when, shared).plan
                for trigger in found
                if isinstance(trigger.when, EventMatch) and trigger.when.event == name
            )
            for name, found in self.by_event.items()
        }

    @cached_property
    def exits(self) -> Mapping[str, tuple[_Exit, ...]]:
        """By trigger id, the events that cancel its pending timers, compiled."""
        return {
            trigger.id: tuple(
                (match, compiled.test if (compiled := compile_all(match.where)) else None)
                for match in trigger.exit_events
            )
            for trigger in self.triggers.values()
        }

    def history_window(self, triggers: Sequence[Trigger]) -> timedelta:
        """How far back these triggers' conditions and collections look."""
        return max((trigger.history_window for trigger in triggers), default=timedelta(0))


def occurrence_of(trigger: Trigger, event: Mapping[str, Any]) -> str:
    """What tells this trigger's occurrences apart: the key's value, else the entry event."""
    if trigger.key:
        values = [
            value
            for value in values_at(trigger.key, Facts(now=datetime.min, event=event))
            if value is not None
        ]
        if values and isinstance(values[0], str | int | float) and not isinstance(values[0], bool):
            return f"{trigger.key.rsplit('.', 1)[-1]}={values[0]}"
    if isinstance(trigger.when, Inactivity):
        return "inactive"
    return f"event={event.get('messageId', '?')}"


# ---- on an event -------------------------------------------------------------------

# Frozen dataclasses set each field through object.__setattr__ in __init__: the hot loop
# of on_event, which makes one Decision per trigger an event enters, fills the instance's
# __dict__ instead (every field), about four times faster. Equality, hashing and repr are
# the dataclass's.
_new = object.__new__


def on_event(
    index: TriggerIndex,
    person: PersonId,
    facts: Facts,
    pending: Sequence[Pending],
    arms: Mapping[str, str] | None = None,
) -> Result:
    """Everything one event decides: exits of pending timers, and entries.

    ``facts`` holds the event, and the profile already folded with it; ``arms`` the
    person's experiment arms so far (``arm_key`` -> arm). Inactivity is not decided here:
    an event only moves the person's last-seen hour, which the sweep reads.
    """
    result: Result = _new(Result)  # Result(), without the dataclass's default factories
    fields = result.__dict__
    fields["actions"], fields["decisions"] = [], []
    event = facts.event
    name = event_name(event)
    if pending:
        exits = index.exits
        for timer in pending:
            found = exits.get(timer.trigger)
            if found is None or _maybe_exit(found, timer, name, facts, result):
                continue
            if timer.kind == "wait_until":
                _maybe_arrived(index.triggers[timer.trigger], timer, person, facts, result)
    for trigger in index.crossing:
        _maybe_crossed(trigger, person, facts, result, arms or {})
    entries = index.entries.get(name or "", ())
    if not entries:
        return result
    # The hot loop: every trigger the event's name enters. Conditions are compiled, and a
    # trigger that fires at once (no wait, no experiment) is decided here without detours;
    # its Fire and Decision are made with their fields filled in directly (see ``_new``).
    decisions, actions, now = result.decisions, result.actions, facts.now
    anonymous = person.kind == "anonymous"  # is_anonymous, without the property's call
    summary: dict[str, Any] | None = None  # the entry event's summary, one for all its fires
    audiences: dict[_Check, str | None] = {}  # an audience many triggers share: decided once
    # The event's occurrence by key: triggers keyed alike (product_interest and product_offer
    # by properties.product_id) read it once, and "" (no key) is the event's own, made when
    # a trigger without key needs it.
    occurrences: dict[str, str] = {}
    for key, where, audience, judged_now, immediate, missed, fired, fire_of, entry in entries:
        occurrence = occurrences.get(key)
        if occurrence is None:
            occurrence = occurrences[key] = (
                entry.occurrence(facts) if key else f"event={event.get('messageId', '?')}"
            )
        failed = where(facts) if where is not None else None
        if failed is None and audience is not None and (judged_now or not anonymous):
            if audience in audiences:
                failed = audiences[audience]
            else:
                failed = audiences[audience] = audience(facts)
        if failed is not None:
            decision = _new(Decision)
            fields = decision.__dict__
            fields.update(missed)
            fields["person"], fields["reason"] = person, failed
            fields["at"], fields["occurrence"] = now, occurrence
            decisions.append(decision)
        elif immediate:
            if summary is None:
                summary = _entry_summary(event)
            fire = _new(Fire)
            fields = fire.__dict__
            fields.update(fire_of)
            fields["person"], fields["occurrence"] = person, occurrence
            fields["at"], fields["entry"] = now, summary
            actions.append(fire)
            decision = _new(Decision)
            fields = decision.__dict__
            fields.update(fired)
            fields["person"], fields["at"], fields["occurrence"] = person, now, occurrence
            decisions.append(decision)
        else:
            _enter(entry.trigger, entry.matched, person, facts, result, arms or {}, occurrence)
    return result


def _maybe_crossed(
    trigger: Trigger, person: PersonId, facts: Facts, result: Result, arms: Mapping[str, str]
) -> None:
    """A score trigger, on any event: enters when the event made the score cross."""
    assert isinstance(trigger.when, ScoreCross)
    occurrence = occurrence_of(trigger, facts.event)
    failed = not_crossed(trigger.when, facts)
    if failed is None and trigger.audience is not None:
        failed = why_not([trigger.audience], facts)
    if failed is not None:
        result.decisions.append(
            Decision(trigger.id, person, "not_matched", failed, facts.now, occurrence)
        )
        return
    _enter(trigger, crossed(trigger.when), person, facts, result, arms, occurrence)


def _maybe_exit(
    exits: tuple[_Exit, ...], timer: Pending, name: Any, facts: Facts, result: Result
) -> bool:
    """Cancels the timer if the event is one of its trigger's exits; says whether it did."""
    if facts.event.get("messageId") == timer.entry.get("messageId"):
        return False
    for exit_event, where in exits:
        if (
            name == exit_event.event
            and (where is None or where(facts))
            and _correlated(exit_event, timer.entry, facts.event)
        ):
            reason = f"{exit_event.event} at {facts.event.get('timestamp')} cancels it"
            result.actions.append(
                Finish(timer, f"exit: {exit_event.event}")
                if timer.step is not None
                else Cancel(timer, reason)
            )
            result.decisions.append(
                Decision(
                    timer.trigger,
                    timer.person,
                    "exited",
                    reason if timer.step is None else f"step {timer.step}: {reason}",
                    facts.now,
                    timer.occurrence,
                    step=timer.step,
                )
            )
            return True
    return False


def _maybe_arrived(
    trigger: Trigger, timer: Pending, person: PersonId, facts: Facts, result: Result
) -> None:
    """A journey waiting at a wait_until step, and the event may be the one it waits for:
    it ends the journey or moves it on now, as the step's ``then`` says. The audience is
    judged first, as at the due time (``_journey_due``): a visitor's is not judged at entry
    when the journey starts by waiting, and continuing must not send to one outside it."""
    from nudge.domain.triggers.journey import arrives, waiting_at

    step = waiting_at(trigger.steps or [], timer.step)
    if not isinstance(step, WaitUntilStep) or not arrives(
        step.wait_until, timer, facts.event, facts
    ):
        return
    walker = _walker(trigger, timer, person, facts)
    failed = _audience_failed(trigger, timer, facts)
    if failed is not None:
        actions, decisions = walker.leave(timer, "audience", f"no longer in the audience: {failed}")
    else:
        actions, decisions = _answered(walker, trigger, timer, step.wait_until, facts.event)
    result.actions.extend(actions)
    result.decisions.extend(decisions)


def _answered(
    walker: Walker,
    trigger: Trigger,
    timer: Pending,
    waiting: WaitUntil,
    event: Mapping[str, Any],
) -> tuple[list[Action], list[Decision]]:
    """What a wait_until's event does when it comes: ends the journey, or moves it on."""
    from nudge.domain.triggers.journey import FIRST, next_position

    came = f"{waiting.event} at {event.get('timestamp')}"
    if waiting.then == "exit":
        return walker.leave(timer, f"wait_until: {waiting.event}", f"{came}: then exit")
    following = next_position(trigger.steps or [], timer.step or FIRST)
    return walker.walk(following, timer, f"step {timer.step}: {came}: continue")


def _walker(trigger: Trigger, timer: Pending, person: PersonId, facts: Facts) -> Walker:
    """The journey of ``timer``, for ``person``, with what its branches read at ``facts.now``:
    the entry event, its context holding the collected lists."""
    from nudge.domain.triggers.journey import Walker

    return Walker(
        trigger,
        person,
        timer.person,
        timer.occurrence,
        timer.entry,
        _branch_facts(trigger, timer.entry, facts),
    )


def _branch_facts(trigger: Trigger, entry: Mapping[str, Any], facts: Facts) -> Facts:
    lists = collected(trigger, entry, facts.history, facts.now)
    context = {**(entry.get("context") or {}), **lists}
    return facts.with_event({**entry, "context": context})


def _correlated(exit_event: EventMatch, entry: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """With ``same``, an exit cancels only its own occurrence (that cart); an exit event
    that does not say which one (an order without a cart_id) cancels them all."""
    return same_value(exit_event.same if isinstance(exit_event, Absence) else None, entry, event)


@dataclass(frozen=True)
class _Entry:
    """What entering a trigger takes, worked out once from its model (``TriggerIndex``)."""

    trigger: Trigger
    when: EventMatch
    id: str
    where: Callable[[Facts], str | None] | None  # why_not(when.where), compiled
    audience: Callable[[Facts], str | None] | None
    # An unless or a delay: a visitor who will be waited for may identify meanwhile, so
    # their audience is decided at the due time, on the user they became (``on_due``), not
    # on the traits they lack now.
    waits: bool
    immediate: bool  # no wait and no experiment: a match fires at once
    matched: str  # the fire's reason
    key: Values | None
    key_path: str  # the trigger's key, "" without one
    key_name: str
    key_on_event: bool  # the key's path reads the event (else it finds nothing: see below)
    key_property: bool  # the key is one of the event's properties: properties.<name>

    @classmethod
    def of(cls, trigger: Trigger, when: EventMatch, shared: dict[str, Compiled]) -> _Entry:
        where = compile_all(when.where)
        audience = None
        if trigger.audience:
            written = trigger.audience.model_dump_json(by_alias=True, exclude_unset=True)
            audience = shared.get(written) or compile_condition(trigger.audience)
            shared[written] = audience
        # A journey's unless is one of its exits, not a wait before it starts.
        journey = trigger.steps is not None
        if journey:
            from nudge.domain.triggers.journey import starts_waiting

            waits = starts_waiting(trigger)
        else:
            waits = bool(trigger.unless or trigger.delay)
        key = trigger.key or ""
        return cls(
            trigger=trigger,
            when=when,
            id=trigger.id,
            where=where.check if where else None,
            audience=audience.check if audience else None,
            waits=waits,
            immediate=not waits and trigger.experiment is None and not journey,
            matched=f"{when.event} matched",
            key=compile_path(key) if key else None,
            key_path=key,
            key_name=key.rsplit(".", 1)[-1],
            key_on_event=key.partition(".")[0] not in ("traits", "profile"),
            key_property=key.startswith("properties.") and key.count(".") == 1 and key[-1] != ".",
        )

    @property
    def plan(self) -> _Plan:
        """What the hot loop reads, as a tuple: unpacked, not looked up one by one. The
        dicts are the fields a Decision or Fire of this trigger always has."""
        return (
            self.key_path,
            self.where,
            self.audience,
            not self.waits,
            self.immediate,
            {"trigger": self.id, "outcome": "not_matched", "arm": None},
            {"trigger": self.id, "outcome": "fired", "reason": self.matched, "arm": None},
            {"trigger": self.id, "arm": None},
            self,
        )

    def occurrence(self, facts: Facts) -> str:
        """``occurrence_of``: the key's first value, else the entry event."""
        if self.key_property:
            # A key on one of the event's properties (``properties.product_id``), the usual
            # kind: read as compile_path finds it when the properties are a dict, and the
            # value's type told apart without isinstance's subclass walk when it is a plain
            # str, int or float (a bool is an int's subclass: not plain, so not here).
            found = facts.event.get("properties")
            if type(found) is dict:
                value = found.get(self.key_name)
                kind = type(value)
                if kind is str or kind is int or kind is float:
                    return f"{self.key_name}={value}"
                if value is None:
                    return f"event={facts.event.get('messageId', '?')}"
        if self.key is not None:
            # occurrence_of reads the key on the event alone: traits and profile are empty.
            on = facts if self.key_on_event else Facts(now=datetime.min, event=facts.event)
            for value in self.key(on):
                if value is None:
                    continue
                if isinstance(value, str | int | float) and not isinstance(value, bool):
                    return f"{self.key_name}={value}"
                break
        return f"event={facts.event.get('messageId', '?')}"


def _enter(
    trigger: Trigger,
    matched: str,
    person: PersonId,
    facts: Facts,
    result: Result,
    arms: Mapping[str, str],
    occurrence: str,
) -> None:
    """A matched entry that waits, is in an experiment, or begins a journey."""
    entry = _entry_summary(facts.event)
    if trigger.steps is not None:
        from nudge.domain.triggers.journey import FIRST, Walker

        walker = Walker(
            trigger, person, person, occurrence, entry, _branch_facts(trigger, entry, facts)
        )
        actions, decisions = walker.walk(FIRST, None, matched)
        begin = Fire(trigger.id, person, occurrence, facts.now, entry)
        result.actions.append(Begin(begin, tuple(actions), tuple(decisions)))
        return
    arm = _enter_arm(trigger, person, arms, result)
    timing = timing_of(trigger, arm)
    waits = [
        (_timestamp(facts.event, facts.now) + timing.absence, "absence")
        if trigger.unless and timing.absence
        else None,
        (facts.now + timing.delay, "delay") if timing.delay else None,
    ]
    due_kind = max((wait for wait in waits if wait), default=None, key=lambda wait: wait[0])
    if due_kind is None:
        result.actions.append(Fire(trigger.id, person, occurrence, facts.now, entry, arm))
        result.decisions.append(_firing(trigger.id, person, matched, facts.now, occurrence, arm))
        return
    due, kind = due_kind
    timer = Pending(trigger.id, person, occurrence, due, kind, entry, arm)  # type: ignore[arg-type]
    result.actions.append(Arm(timer))
    waiting_for = f"no {trigger.unless.event} " if trigger.unless else ""
    reason = f"{matched}; waiting {waiting_for}until {due.isoformat()}{_in(arm)}"
    result.decisions.append(
        Decision(trigger.id, person, "pending", reason, facts.now, occurrence, arm)
    )


# ---- experiments: arms and their timing ----------------------------------------------


@dataclass(frozen=True)
class Timing:
    """A trigger's delay and absence window, as an arm's variant sets them."""

    delay: timedelta
    absence: timedelta | None  # the unless window, when the trigger has one


def arm_key(trigger: Trigger) -> str:
    """Where a person's arm is kept: per trigger and experiment version."""
    assert trigger.experiment is not None
    return experiment_key(trigger.id, trigger.experiment.version)


def _enter_arm(
    trigger: Trigger, person: PersonId, arms: Mapping[str, str], result: Result
) -> str | None:
    """The person's arm: the one they were given before, else a new one (to be kept)."""
    if trigger.experiment is None:
        return None
    key = arm_key(trigger)
    first = key not in arms
    arm = assign(trigger.id, trigger.experiment, person) if first else arms[key]
    result.actions.append(Assign(key, arm, trigger.id, person, first))
    return arm


def assigned(result: Result) -> dict[str, str]:
    """The arms a result gave for the first time, to keep with the person's profile."""
    return {
        action.key: action.arm
        for action in result.actions
        if isinstance(action, Assign) and action.first
    }


def timing_of(trigger: Trigger, arm: str | None) -> Timing:
    """The trigger's delay and absence window, as the arm's variant overrides them (the
    holdout keeps the trigger's own, so it is compared at the same moments)."""
    variant = trigger.experiment.variant(arm) if trigger.experiment and arm else None
    delay = variant.delay if variant and variant.delay is not None else trigger.delay
    absence = trigger.unless.within if trigger.unless else None
    if variant and variant.unless is not None:
        absence = variant.unless.within
    return Timing(delay, absence)


def _firing(
    trigger: str, person: PersonId, why: str, at: datetime, occurrence: str, arm: str | None
) -> Decision:
    """A fire's decision: ``held_out`` for the holdout, whose fire is never sent."""
    if arm == HOLDOUT:
        why = f"{why}; in the holdout: recorded, not sent"
        return Decision(trigger, person, "held_out", why, at, occurrence, arm)
    return Decision(trigger, person, "fired", f"{why}{_in(arm)}", at, occurrence, arm)


def _in(arm: str | None) -> str:
    return f" (arm {arm})" if arm else ""


# ---- when a timer is due -------------------------------------------------------------


def on_due(trigger: Trigger, timer: Pending, person: PersonId, facts: Facts) -> Result:
    """Decide again with what happened since: the timer only said "look now".

    ``facts.history`` holds the person's events (all identities) since the entry event.
    ``person`` is who the message would go to: the user the timer's visitor became.
    """
    if trigger.steps is not None:
        return _journey_due(trigger, timer, person, facts)
    result = Result()
    exited = _exit_since_entry(trigger, timer, facts)
    if exited is not None:
        reason = f"{exited[0]} came before the timer"
        result.decisions.append(
            Decision(trigger.id, person, "exited", reason, facts.now, timer.occurrence)
        )
        return result
    failed = _audience_failed(trigger, timer, facts)
    if failed:
        result.decisions.append(
            Decision(
                trigger.id,
                person,
                "not_matched",
                f"at {facts.now.isoformat()}: {failed}",
                facts.now,
                timer.occurrence,
            )
        )
        return result
    result.actions.append(
        Fire(trigger.id, person, timer.occurrence, facts.now, timer.entry, timer.arm)
    )
    absence = timing_of(trigger, timer.arm).absence
    what = (
        f"no {trigger.unless.event} within {words(absence)}"
        if trigger.unless and absence
        else "delay over"
    )
    result.decisions.append(
        _firing(trigger.id, person, what, facts.now, timer.occurrence, timer.arm)
    )
    return result


def _exit_since_entry(trigger: Trigger, timer: Pending, facts: Facts) -> tuple[str, str] | None:
    """The first exit event since the timer's entry event (what the stream may not have
    delivered yet), as (what and when, its name); None if there was none."""
    entry_time = _timestamp(timer.entry, timer.due)
    # Only an exit's name can match: the name is read before the timestamp is parsed, and
    # most of the history (page views, beacons) is passed over on it. A tuple: a name that
    # is not text (an unvalidated body) is compared, never hashed.
    exit_names = tuple(exit_event.event for exit_event in trigger.exit_events)
    for later in facts.history:
        # event_name(later), written out: this reads every event since the entry.
        name = later.get("event") if later.get("type", "track") == "track" else later.get("type")
        if (
            name not in exit_names
            or later.get("messageId") == timer.entry.get("messageId")
            or _timestamp(later, entry_time) < entry_time
        ):
            continue
        later_facts = facts.with_event(later)
        for exit_event in trigger.exit_events:
            if matches_event(exit_event, later_facts) and _correlated(
                exit_event, timer.entry, later
            ):
                return f"{exit_event.event} at {later.get('timestamp')}", exit_event.event
    return None


def _audience_failed(trigger: Trigger, timer: Pending, facts: Facts) -> str | None:
    """Why the person is not in the audience now, judged on the entry event; None if they are."""
    if not trigger.audience:
        return None
    return why_not([trigger.audience], facts.with_event(timer.entry))


def _journey_due(trigger: Trigger, timer: Pending, person: PersonId, facts: Facts) -> Result:
    """A journey's timer is due: it ends (an exit came, the person left the audience, the
    awaited event came and says exit) or moves on to its next wait or its end."""
    from nudge.domain.triggers.journey import FIRST, arrival, next_position, waiting_at

    walker = _walker(trigger, timer, person, facts)
    exited = _exit_since_entry(trigger, timer, facts)
    failed = _audience_failed(trigger, timer, facts)
    step = waiting_at(trigger.steps or [], timer.step)
    if step is None:
        # Edited since: where the person was is gone. Ending is safe; guessing a new place
        # could send a step twice or skip one.
        why = f"the journey's steps changed: step {timer.step} is no longer a wait"
        actions, decisions = walker.leave(timer, "steps changed", why)
    elif exited is not None:
        actions, decisions = walker.leave(timer, f"exit: {exited[1]}", f"{exited[0]} ends it")
    elif failed is not None:
        actions, decisions = walker.leave(timer, "audience", f"no longer in the audience: {failed}")
    elif isinstance(step, WaitUntilStep) and (came := arrival(step.wait_until, timer, facts)):
        actions, decisions = _answered(walker, trigger, timer, step.wait_until, came)
    else:
        waited = (
            f"no {step.wait_until.event} within {words(step.wait_until.within)}"
            if isinstance(step, WaitUntilStep)
            else "the wait is over"
        )
        following = next_position(trigger.steps or [], timer.step or FIRST)
        actions, decisions = walker.walk(following, timer, f"step {timer.step}: {waited}")
    return Result(actions, decisions)


# ---- inactivity: the hourly sweep -----------------------------------------------------


def swept_hour(trigger: Trigger, at: datetime) -> datetime:
    """The last-seen hour a sweep at ``at`` looks at for this trigger.

    Everyone last seen in that hour has been quiet for the trigger's whole duration by
    ``at``; the sweep an hour later looks at the next hour, so consecutive sweeps cover
    consecutive hours, and a repeated sweep (a retry) looks at the same hour again.
    """
    assert isinstance(trigger.when, Inactivity)
    # In UTC first: across a daylight-saving change, local arithmetic counts wall-clock time.
    return hour_of(at.astimezone(UTC) - trigger.when.inactive - SWEEP_EVERY)


def inactivity_occurrence(trigger: Trigger, last_seen: datetime) -> str:
    """One occurrence per quiet spell: named by the moment the spell reached the duration."""
    assert isinstance(trigger.when, Inactivity)
    return f"inactive@{(last_seen + trigger.when.inactive).isoformat()}"


def on_inactive(
    trigger: Trigger,
    person: PersonId,
    facts: Facts,
    last_seen: datetime | None,
    arms: Mapping[str, str] | None = None,
) -> Result:
    """The sweep found ``person`` among those last seen long enough ago: decide.

    The index may lag a write, so the profile's ``last_seen`` decides: someone who came
    back is left alone, and their new last-seen hour will be swept in its turn.
    """
    assert isinstance(trigger.when, Inactivity)
    result = Result()
    if last_seen is None or facts.now - last_seen < trigger.when.inactive:
        return result
    occurrence = inactivity_occurrence(trigger, last_seen)
    failed = why_not([trigger.audience], facts) if trigger.audience else None
    if failed:
        reason = f"inactive for {words(trigger.when.inactive)}, but {failed}"
        result.decisions.append(
            Decision(trigger.id, person, "not_matched", reason, facts.now, occurrence)
        )
        return result
    arm = _enter_arm(trigger, person, arms or {}, result)
    result.actions.append(Fire(trigger.id, person, occurrence, facts.now, {}, arm))
    reason = f"no activity since {last_seen.isoformat()}"
    result.decisions.append(_firing(trigger.id, person, reason, facts.now, occurrence, arm))
    return result


def inactivity_status(
    trigger: Trigger, person: PersonId, last_seen: datetime | None, now: datetime
) -> Decision | None:
    """Where an inactivity trigger stands for someone still within their sweep, for
    ``explain``: nothing is recorded while a person is merely active (that would cost a
    write per event), so this is worked out when asked.

    The sweep that reads the person's hour runs at some minute of the hour that ends at
    ``decided_by``; from then on this says nothing (None), and ``explain`` already drops
    the line once that sweep's decision is recorded."""
    assert isinstance(trigger.when, Inactivity)
    if last_seen is None:
        return None
    decided_by = hour_of(last_seen) + trigger.when.inactive + 2 * SWEEP_EVERY
    if now >= decided_by:
        return None
    due = last_seen + trigger.when.inactive
    reason = (
        f"last active at {last_seen.isoformat()}; quiet for {words(trigger.when.inactive)}"
        f" at {due.isoformat()}, decided by the hourly sweep by {decided_by.isoformat()}"
    )
    return Decision(
        trigger.id, person, "pending", reason, now, inactivity_occurrence(trigger, last_seen)
    )


# ---- scores: the quiet re-scored by the same sweep -------------------------------------


def rescored_hours(boundaries: Sequence[timedelta], at: datetime) -> list[datetime]:
    """The last-seen hours a sweep at ``at`` re-scores: for each time since a person's last
    activity at which a score can change with no event (``Scoring.quiet_boundaries``), the
    hour whose people have just passed it. As for inactivity (``swept_hour``), consecutive
    sweeps cover consecutive hours and a retry reads the same ones."""
    at = at.astimezone(UTC)
    return sorted({hour_of(at - boundary - SWEEP_EVERY) for boundary in boundaries})


def rescored_occurrence(at: datetime) -> str:
    """A crossing found by the sweep: one occurrence per sweep hour, so a retried sweep
    decides the same occurrence and the ledger makes it a no-op."""
    return f"score@{hour_of(at.astimezone(UTC)).isoformat()}"


def on_rescored(
    trigger: Trigger, person: PersonId, facts: Facts, arms: Mapping[str, str] | None = None
) -> Result:
    """The sweep re-scored a quiet person (``facts.scores_before`` the stored scores,
    ``profile.scores`` the new ones): a score trigger enters when the score rose through its
    threshold, exactly as on an event. A score that did not cross decides nothing: most of
    any hour's quiet people, and a record each would cost a write."""
    assert isinstance(trigger.when, ScoreCross)
    result = Result()
    if not_crossed(trigger.when, facts) is not None:
        return result
    occurrence = rescored_occurrence(facts.now)
    failed = why_not([trigger.audience], facts) if trigger.audience else None
    if failed is not None:
        reason = f"{crossed(trigger.when)} while quiet, but {failed}"
        result.decisions.append(
            Decision(trigger.id, person, "not_matched", reason, facts.now, occurrence)
        )
        return result
    _enter(
        trigger,
        f"{crossed(trigger.when)} while quiet",
        person,
        facts,
        result,
        arms or {},
        occurrence,
    )
    return result


# ---- what delivery gets --------------------------------------------------------------


def collected(
    trigger: Trigger, entry: Mapping[str, Any], history: Sequence[Mapping[str, Any]], now: datetime
) -> dict[str, Any]:
    """The trigger's ``collect`` lists: e.g. the cart's items, from its Product Added events.

    Items are told apart by product (product_id, sku or name), so adding the same product
    twice lists it once, with its latest properties. Beside each list, ``<name>_count`` is
    how many items it holds and ``<name>_total`` the sum of price times quantity (a missing
    quantity counts 1; an item without a numeric price adds nothing): what a journey's
    branch or a template reads (``context.items_total``).
    """
    context: dict[str, Any] = {}
    for name, spec in trigger.collect.items():
        since = now - spec.within
        items: dict[str, dict[str, Any]] = {}
        values: dict[str, float] = {}
        # Oldest first, so a product added twice keeps its latest properties.
        events = sorted([*history, entry], key=lambda event: _timestamp(event, now))
        for event in events:
            if event_name(event) != spec.from_ or _timestamp(event, now) < since:
                continue
            if not same_value(spec.same, entry, event):
                continue
            properties = event.get("properties") or {}
            identity = str(
                properties.get("product_id")
                or properties.get("sku")
                or properties.get("name")
                or event.get("messageId")
            )
            items[identity] = {field_name: properties.get(field_name) for field_name in spec.fields}
            values[identity] = _line_value(properties)
        context[name] = list(items.values())
        context[f"{name}_count"] = len(items)
        context[f"{name}_total"] = round(sum(values.values()), 2)
    return context


def _line_value(properties: Mapping[str, Any]) -> float:
    price, quantity = properties.get("price"), properties.get("quantity", 1)
    if not isinstance(price, int | float) or isinstance(price, bool):
        return 0.0
    return float(price) * (float(quantity) if _is_number(quantity) else 1.0)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _entry_summary(event: Mapping[str, Any]) -> dict[str, Any]:
    """What a timer remembers of the event that started it (small: it rides in the schedule)."""
    keep = (
        "messageId",
        "type",
        "event",
        "name",
        "timestamp",
        "userId",
        "anonymousId",
        "properties",
    )
    return {key: event[key] for key in keep if key in event}


def _timestamp(event: Mapping[str, Any], default: datetime) -> datetime:
    value = event.get("timestamp")
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return default
    return default
