"""Trigger definitions as users write them in ``triggers/*.yaml``.

A trigger says: when this happens (an event, or a stretch of inactivity), for people in
this audience, unless that other thing happens within a while, send this. Every field
is checked here, so a definition that loads is one the engine can run.

``delay`` and ``send`` describe a single step. A journey replaces ``send`` with
``steps``: waits, sends, waits for an event, and branches, run in order for each
occurrence (``domain/triggers/journey.py`` walks them). The single-step form stays the
shorthand it always was.
"""

# No ``from __future__ import annotations`` here: pydantic would then evaluate every field's
# annotation from its text (a compile each) when the class is built, at cold start; written
# as objects they cost nothing more. The names used before they are defined are quoted.

import re
from collections.abc import Iterator
from datetime import timedelta
from functools import cached_property
from typing import Annotated, Any, Literal

# pydantic's names from the modules that define them: ``from pydantic import`` loads
# them through importlib, which -X importtime bills to this module (bench/imports.py).
from pydantic.fields import Field
from pydantic.functional_validators import AfterValidator, field_validator, model_validator
from pydantic.json_schema import WithJsonSchema
from pydantic.types import Discriminator, Tag

from nudge.domain.durations import parse_duration
from nudge.domain.engagement import BEST_HOUR_FALLBACK, BEST_HOUR_WITHIN
from nudge.domain.messages import InAppDisplay
from nudge.domain.triggers.common import (
    ID_PATTERN,
    MAX_WINDOW,
    ClockTime,
    Duration,
    Path,
    SendTime,
    Window,
    words,
)
from nudge.domain.triggers.common import Strict as _Strict
from nudge.domain.triggers.common import in_range as _in_range
from nudge.domain.triggers.condition_model import (
    OPERATORS,
    AllOf,
    AnyOf,
    Condition,
    Count,
    NotOf,
    Predicate,
)
from nudge.domain.triggers.experiment import Experiment, Percent

__all__ = [
    "IN_APP_EXPIRES",
    "JOURNEY_MAX_DEPTH",
    "JOURNEY_MAX_STEPS",
    "JOURNEY_MAX_WAIT",
    "OPERATORS",
    "Absence",
    "AllOf",
    "AnyOf",
    "Branch",
    "Collect",
    "Condition",
    "Count",
    "Display",
    "EventMatch",
    "Inactivity",
    "NotOf",
    "Predicate",
    "Reentry",
    "ScoreCross",
    "Send",
    "SendStep",
    "Step",
    "Trigger",
    "WaitStep",
    "WaitUntil",
    "WaitUntilStep",
    "in_app_fields",
]


class EventMatch(_Strict):
    """An event by name, optionally narrowed by conditions on it and on the person."""

    event: Annotated[str, Field(min_length=1, max_length=512)]
    where: list[Condition] = Field(default_factory=list)


class Inactivity(_Strict):
    inactive: Duration

    @field_validator("inactive")
    @classmethod
    def _in_range(cls, value: timedelta) -> timedelta:
        return _in_range(value, timedelta(hours=1), MAX_WINDOW)


class Absence(EventMatch):
    """ "A then not B within W": the trigger fires only if this event does not follow."""

    within: Window
    same: Path | None = None  # a path both events share, such as properties.cart_id


class ScoreCross(_Strict):
    """A prediction's score rising through a threshold on an event: the score before the
    event was below ``crosses`` (or there was none), and after it is at or above."""

    score: Annotated[str, Field(pattern=ID_PATTERN, description="a prediction's id")]
    crosses: Annotated[int, Field(ge=1, le=100, description="0-100, as scores are")]


def _when_kind(value: Any) -> str:
    if isinstance(value, dict):
        if "score" in value:
            return "score_cross"
        return "inactivity" if "inactive" in value else "event_match"
    if isinstance(value, ScoreCross):
        return "score_cross"
    return "inactivity" if isinstance(value, Inactivity) else "event_match"


When = Annotated[
    Annotated[EventMatch, Tag("event_match")]
    | Annotated[Inactivity, Tag("inactivity")]
    | Annotated[ScoreCross, Tag("score_cross")],
    Discriminator(_when_kind),
]


class Reentry(_Strict):
    """How often one person may get this trigger: once ever, once per period, or every time."""

    mode: Literal["once", "every_time", "once_per"]
    period: timedelta | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_words(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        words = value.split()
        if words == ["once"] or words == ["every_time"]:
            return {"mode": words[0]}
        if len(words) == 2 and words[0] == "once_per":
            return {
                "mode": "once_per",
                "period": _in_range(
                    parse_duration(words[1]), timedelta(minutes=1), timedelta(days=365)
                ),
            }
        raise ValueError("must be 'once', 'every_time' or 'once_per <duration>' (e.g. once_per 7d)")

    @model_validator(mode="after")
    def _period_only_for_once_per(self) -> "Reentry":
        if (self.mode == "once_per") != (self.period is not None):
            raise ValueError("once_per needs a period (once_per 7d); once and every_time take none")
        return self


# A glob on the page's path (location.pathname): ``*`` any run of characters, ``?`` one.
_GLOB = re.compile(r"^[/*][!-~]{0,199}$")  # printable ASCII, no spaces: what a path holds
IN_APP_EXPIRES = timedelta(days=1)  # how long an undelivered in-app message waits by default


def _check_glob(glob: str) -> str:
    if not _GLOB.match(glob):
        raise ValueError(
            f"{glob!r} is not a path glob; start with / (or *), no spaces, e.g. /checkout*"
        )
    return glob


PathGlob = Annotated[str, AfterValidator(_check_glob)]


class Display(_Strict):
    """When an in-app message may appear on the open page; the browser SDK applies it.

    ``delay`` counts from the page's load, ``scroll`` is the deepest the page was
    scrolled; ``match: any`` shows the message when either given rule holds, ``all``
    when both do. ``exclude`` names pages where it never appears (it waits for another).
    """

    delay: Duration | None = None
    scroll: Percent | None = None
    match: Literal["any", "all"] = "any"
    exclude: list[PathGlob] = Field(default_factory=list, max_length=20)

    @field_validator("delay")
    @classmethod
    def _delay_in_range(cls, value: timedelta | None) -> timedelta | None:
        return None if value is None else _in_range(value, timedelta(0), timedelta(hours=1))

    @field_validator("scroll")
    @classmethod
    def _scroll_in_range(cls, value: float | None) -> float | None:
        if value is not None and not 0 <= value <= 1:
            raise ValueError(f"{value * 100:g}% is out of range (0% to 100%)")
        return value


class Send(_Strict):
    channel: Literal["email", "webhook", "in_app"]
    template: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")]
    display: Display | None = None  # in_app only
    expires: Duration | None = None  # in_app only: an undelivered message is dropped after it
    # The next time the person's clock shows this (their timezone trait, else the account's
    # zone), or `best`: the hour within `within` when they most often engage (else at
    # `fallback`). Delivery waits for it, then quiet hours and caps apply as to any send.
    at: SendTime | None = None
    within: Duration | None = None  # at: best only; default 24h
    fallback: ClockTime | None = None  # at: best only; default 10:00

    @field_validator("within")
    @classmethod
    def _within_in_range(cls, value: timedelta | None) -> timedelta | None:
        return None if value is None else _in_range(value, timedelta(hours=1), timedelta(days=7))

    @model_validator(mode="after")
    def _best_hour_fields_for_best(self) -> "Send":
        given = [name for name in ("within", "fallback") if getattr(self, name) is not None]
        if given and self.at != "best":
            raise ValueError(f"{' and '.join(given)} apply to at: best only")
        return self

    @field_validator("expires")
    @classmethod
    def _expires_in_range(cls, value: timedelta | None) -> timedelta | None:
        return None if value is None else _in_range(value, timedelta(minutes=1), timedelta(days=30))

    @model_validator(mode="after")
    def _in_app_fields_for_in_app(self) -> "Send":
        given = [name for name in ("display", "expires") if getattr(self, name) is not None]
        if given and self.channel != "in_app":
            raise ValueError(f"{' and '.join(given)} apply to channel in_app only")
        return self


def in_app_fields(send: Send, channel: str) -> dict[str, Any]:
    """What a fire on ``channel`` carries for the page: display rules and expiry (in seconds,
    as the SDK and the message store use them); nothing for other channels. A variant that
    switches a trigger to in_app gets the defaults."""
    if channel != "in_app":
        return {}
    rules = send.display or Display()
    expires = send.expires or IN_APP_EXPIRES
    display = InAppDisplay(
        delay=rules.delay.total_seconds() if rules.delay is not None else None,
        scroll=round(rules.scroll * 100, 2) if rules.scroll is not None else None,
        match=rules.match,
        exclude=tuple(rules.exclude),
    )
    return {"display": display, "expires": int(expires.total_seconds())}


def send_time_fields(send: Send, arm_at: str | None) -> dict[str, Any]:
    """What a fire carries for delivery's wait: the time of day (the arm's, else the
    trigger's) and, for the best hour, how long it may wait and the time without history."""
    at = arm_at or send.at
    if at is None:
        return {}
    if at != "best":
        return {"send_at": at}
    within = send.within or BEST_HOUR_WITHIN
    return {
        "send_at": at,
        "send_within": int(within.total_seconds()),
        "send_fallback": send.fallback or BEST_HOUR_FALLBACK,
    }


# ---- journeys: steps ------------------------------------------------------------------

JOURNEY_MAX_STEPS = 20  # every step counts, those inside branches too
JOURNEY_MAX_DEPTH = 3  # a branch inside a branch inside a branch, no deeper
JOURNEY_MAX_WAIT = timedelta(days=90)  # the longest way through: events older are gone


class WaitStep(_Strict):
    """``wait: 1h``: the journey sleeps, then goes on (a one-time schedule wakes it)."""

    wait: Duration

    @field_validator("wait")
    @classmethod
    def _wait_in_range(cls, value: timedelta) -> timedelta:
        return _in_range(value, timedelta(minutes=1), JOURNEY_MAX_WAIT)


class SendStep(_Strict):
    send: Send


class WaitUntil(EventMatch):
    """Wait for an event, at most ``within``: when it arrives, ``then`` says whether the
    journey ends (exit) or goes on at once (continue); when it does not, it goes on."""

    within: Window
    same: Path | None = None  # a path the event shares with the entry (properties.cart_id)
    then: Literal["exit", "continue"] = "exit"


class WaitUntilStep(_Strict):
    wait_until: WaitUntil


class Branch(_Strict):
    """``if``: one condition on the person, the entry event and the collected lists
    (``context.<list>``, ``context.<list>_count``, ``context.<list>_total``)."""

    if_: Condition = Field(alias="if")
    then: Annotated[list["Step"], Field(min_length=1)]
    else_: list["Step"] = Field(default_factory=list, alias="else")


_STEP_KEYS = (("wait_until", "wait_until"), ("wait", "wait"), ("if", "branch"), ("send", "send"))


def _step_kind(value: Any) -> str | None:
    """Which step a mapping is, by the key it has; None (refused, naming the kinds) when
    it has none of them."""
    if isinstance(value, dict):
        return next((kind for key, kind in _STEP_KEYS if key in value), None)
    kinds: dict[type, str] = {
        WaitStep: "wait",
        WaitUntilStep: "wait_until",
        Branch: "branch",
        SendStep: "send",
    }
    return kinds.get(type(value))


Step = Annotated[
    Annotated[WaitStep, Tag("wait")]
    | Annotated[SendStep, Tag("send")]
    | Annotated[WaitUntilStep, Tag("wait_until")]
    | Annotated[Branch, Tag("branch")],
    Discriminator(
        _step_kind,
        custom_error_type="step_kind",
        custom_error_message="a step is one of wait, send, wait_until or if",
    ),
]


def _journey_shape(steps: list[Any], depth: int = 1) -> tuple[int, timedelta]:
    """How many steps there are in all and the longest wait through them; raises past the
    nesting limit."""
    if depth > JOURNEY_MAX_DEPTH:
        raise ValueError(f"branches nest deeper than {JOURNEY_MAX_DEPTH} levels")
    count, longest = 0, timedelta(0)
    for step in steps:
        count += 1
        if isinstance(step, WaitStep):
            longest += step.wait
        elif isinstance(step, WaitUntilStep):
            longest += step.wait_until.within
        elif isinstance(step, Branch):
            then_count, then_wait = _journey_shape(step.then, depth + 1)
            else_count, else_wait = _journey_shape(step.else_, depth + 1)
            count += then_count + else_count
            longest += max(then_wait, else_wait)
    return count, longest


class Collect(_Strict):
    """Properties of earlier events handed to delivery, e.g. a cart's items."""

    from_: Annotated[str, Field(alias="from", min_length=1)]
    same: Path | None = None
    fields: Annotated[list[str], Field(min_length=1)]
    within: Window = timedelta(days=30)


class Trigger(_Strict):
    id: str
    name: str | None = None
    description: str | None = None
    enabled: bool = True
    when: When
    key: Path | None = None  # a path whose value tells occurrences apart (properties.cart_id)
    audience: Condition | None = None
    unless: Absence | None = None
    exit: list[EventMatch] = Field(default_factory=list)
    delay: Duration = timedelta(0)
    reentry: Annotated[
        Reentry,
        WithJsonSchema(
            {
                "type": "string",
                "pattern": "^(once|every_time|once_per\\s+[0-9]+[smhdw]?)$",
                "examples": ["once", "every_time", "once_per 7d"],
            }
        ),
    ] = Reentry(mode="every_time")
    send: Send | None = None
    steps: list[Step] | None = None  # a journey, instead of one send
    collect: dict[str, Collect] = Field(default_factory=dict)
    experiment: Experiment | None = None

    @field_validator("id")
    @classmethod
    def _id_is_a_slug(cls, value: str) -> str:
        if not re.match(ID_PATTERN, value):
            raise ValueError("must be lower-case letters, digits, '-' or '_' (at most 63)")
        return value

    @field_validator("delay")
    @classmethod
    def _delay_in_range(cls, value: timedelta) -> timedelta:
        return _in_range(value, timedelta(0), timedelta(days=30))

    @model_validator(mode="after")
    def _coherent(self) -> "Trigger":
        if isinstance(self.when, Inactivity) and self.unless is not None:
            raise ValueError(
                "an inactivity trigger cannot also have 'unless': inactivity is already an absence"
            )
        if isinstance(self.when, ScoreCross) and (self.unless or self.steps is not None):
            raise ValueError(
                "a score trigger sends one message when the score crosses (no unless, no steps)"
            )
        if (
            isinstance(self.when, EventMatch)
            and self.unless
            and self.unless.event == self.when.event
            and not self.unless.where
        ):
            raise ValueError(
                f"'unless' names the entry event {self.when.event!r} itself: it could never fire"
            )
        self._variants_fit()
        self._one_send_or_steps()
        return self

    def _one_send_or_steps(self) -> None:
        if self.send is None and self.steps is None:
            raise ValueError("send is required (one message), or steps (a journey)")
        if self.send is not None and self.steps is not None:
            raise ValueError("has both send and steps: one message, or a journey, not both")
        if self.steps is None:
            return
        if not self.steps:
            raise ValueError("steps is empty: a journey needs at least one step")
        if self.delay:
            raise ValueError("a journey waits with a wait step, not delay")
        if self.experiment is not None:
            raise ValueError("experiments are not yet supported on journeys (steps)")
        if isinstance(self.when, Inactivity):
            raise ValueError("a journey starts on an event; inactivity triggers send once")
        count, longest = _journey_shape(self.steps)
        if count > JOURNEY_MAX_STEPS:
            raise ValueError(f"{count} steps: a journey has at most {JOURNEY_MAX_STEPS}")
        if longest > JOURNEY_MAX_WAIT:
            raise ValueError(
                f"the longest way through waits {words(longest)}: at most"
                f" {words(JOURNEY_MAX_WAIT)} (events older than that are gone)"
            )
        if not any(True for _ in self.sends):
            raise ValueError("a journey needs at least one send step")
        if self.unless is not None and self.unless.within < longest:
            # In a journey unless is an exit at every step: a window that closes before the
            # journey ends would say one thing and do another.
            raise ValueError(
                f"unless.within ({words(self.unless.within)}) is shorter than the journey's"
                f" waits ({words(longest)}): in a journey unless ends it at any step; give"
                " within at least that, or list the event under exit"
            )

    @property
    def sends(self) -> Iterator[tuple[str | None, Send]]:
        """Every message the trigger can send, with its step (None for the single send)."""
        if self.send is not None:
            yield None, self.send
        for position, step in _walk_steps(self.steps or [], ""):
            if isinstance(step, SendStep):
                yield position, step.send

    def send_at_step(self, step: str | None) -> Send:
        """The send of a step ("2.then.0"), or the trigger's one send (None)."""
        for position, send in self.sends:
            if position == step:
                return send
        raise KeyError(f"trigger {self.id!r} has no send at step {step!r}")

    def _variants_fit(self) -> None:
        """A variant may only change what the trigger has: no absence window to re-time
        without an 'unless', and no delay on an inactivity trigger (the sweep decides)."""
        for variant in self.experiment.variants if self.experiment else []:
            if variant.unless is not None and self.unless is None:
                raise ValueError(
                    f"variant {variant.id!r} overrides unless.within, but the trigger has no"
                    " 'unless'"
                )
            if variant.delay is not None and isinstance(self.when, Inactivity):
                raise ValueError(
                    f"variant {variant.id!r} overrides delay, which an inactivity trigger"
                    " does not have"
                )

    @property
    def waits_for(self) -> list[WaitUntil]:
        """The journey's wait_until steps: their events move a waiting journey on."""
        return [
            step.wait_until
            for _, step in _walk_steps(self.steps or [], "")
            if isinstance(step, WaitUntilStep)
        ]

    @property
    def watched_events(self) -> frozenset[str]:
        """Event names this trigger must see: entry, absence, exit and wait_until events."""
        names = {match.event for match in [*self.exit, *self.waits_for]}
        if isinstance(self.when, EventMatch):
            names.add(self.when.event)
        if self.unless:
            names.add(self.unless.event)
        return frozenset(names)

    @property
    def exit_events(self) -> list[EventMatch]:
        """Exit events, and the absence event: either one cancels a pending occurrence."""
        return [*self.exit, *([self.unless] if self.unless else [])]

    @cached_property
    def history_window(self) -> timedelta:
        """How far back this trigger's counts and collections look. Worked out once: the
        engine asks on every event."""
        windows = [timedelta(0), *(collect.within for collect in self.collect.values())]
        stack: list[Any] = [self.audience] if self.audience else []
        if isinstance(self.when, EventMatch):
            stack += list(self.when.where)
        for exit_event in [*self.exit_events, *self.waits_for]:
            stack += list(exit_event.where)
        stack += [
            step.if_ for _, step in _walk_steps(self.steps or [], "") if isinstance(step, Branch)
        ]
        while stack:
            condition = stack.pop()
            if isinstance(condition, AllOf):
                stack += condition.all
            elif isinstance(condition, AnyOf):
                stack += condition.any
            elif isinstance(condition, NotOf):
                stack.append(condition.not_)
            elif isinstance(condition, Count):
                windows.append(condition.count.within)
        return max(windows)


def _walk_steps(steps: list[Any], prefix: str) -> Iterator[tuple[str, Any]]:
    """Every step with its position ("0", "2.then.1"), depth first, in order."""
    for number, step in enumerate(steps):
        position = f"{prefix}{number}"
        yield position, step
        if isinstance(step, Branch):
            yield from _walk_steps(step.then, f"{position}.then.")
            yield from _walk_steps(step.else_, f"{position}.else.")


# No model_rebuild() here: the models are built on first use (common.Strict's defer_build),
# when this module's forward references (Condition) are all defined.
