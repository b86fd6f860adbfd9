"""Deciding whether a condition holds, from facts gathered beforehand (no I/O here).

Paths name facts: ``properties.*`` and ``context.*`` of the event in hand, ``traits.*``
and ``profile.*`` of the person, and ``event``, ``type``, ``userId``, ``anonymousId``.
A segment that meets a list without an index looks into every element, and a
predicate holds when any value found satisfies it (``properties.products.sku``).
A value of the wrong type simply does not match: it never raises.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from nudge.domain.triggers.condition_model import (
    AllOf,
    AnyOf,
    Condition,
    Count,
    NotOf,
    _Comparison,
)

if TYPE_CHECKING:
    from nudge.domain.triggers.model import EventMatch

__all__ = ["Facts", "compare", "holds", "matches_event", "same_value", "values_at"]

_MISSING: list[Any] = []


@dataclass(frozen=True)
class Facts:
    """Everything a condition may read, as of ``now``."""

    now: datetime
    event: Mapping[str, Any] = field(default_factory=dict)
    traits: Mapping[str, Any] = field(default_factory=dict)
    profile: Mapping[str, Any] = field(default_factory=dict)
    # The person's events, oldest first, for counts in a window (each with "timestamp").
    history: Sequence[Mapping[str, Any]] = ()
    # The person's scores before this event was folded in (``profile.scores`` holds them
    # after): what tells a score that crossed a threshold from one that stayed above it.
    scores_before: Mapping[str, int] = field(default_factory=dict)
    # Why a prediction scored nothing for this event (no model, outside its audience).
    unscored: Mapping[str, str] = field(default_factory=dict)

    def with_event(self, event: Mapping[str, Any]) -> Facts:
        return Facts(
            now=self.now,
            event=event,
            traits=self.traits,
            profile=self.profile,
            history=self.history,
            scores_before=self.scores_before,
            unscored=self.unscored,
        )


def values_at(path: str, facts: Facts) -> list[Any]:
    """Every value the path reaches; empty when it reaches nothing."""
    root, _, rest = path.partition(".")
    if root in ("properties", "context"):
        start: Any = facts.event.get(root, {})
    elif root == "traits":
        start = facts.traits
    elif root == "profile":
        start = facts.profile
    elif root == "event":
        start = event_name(facts.event)
    else:
        start = facts.event.get(root)
    if start is None:
        return _MISSING
    return list(_walk(start, rest.split(".") if rest else []))


def same_value(same: str | None, entry: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """Whether ``event`` is about the entry's thing (``same: properties.cart_id``): the two
    share the path's first value, or either lacks it (an order that names no cart is
    about them all). Without ``same``, every event is."""
    if not same:
        return True
    ours = values_at(same, Facts(now=datetime.min, event=event))
    theirs = values_at(same, Facts(now=datetime.min, event=entry))
    return not ours or not theirs or bool(ours[0] == theirs[0])


def event_name(event: Mapping[str, Any]) -> Any:
    """A track event's name; page and screen views answer to their type ("page", "screen")."""
    return event.get("event") if event.get("type", "track") == "track" else event.get("type")


def _walk(value: Any, segments: list[str]) -> Iterator[Any]:
    if not segments:
        yield value
        return
    head, tail = segments[0], segments[1:]
    if isinstance(value, Mapping):
        if head in value:
            yield from _walk(value[head], tail)
    elif isinstance(value, list):
        if head.isdigit():
            index = int(head)
            if index < len(value):
                yield from _walk(value[index], tail)
        else:
            for element in value:
                yield from _walk(element, segments)


def holds(condition: Condition, facts: Facts) -> bool:
    if isinstance(condition, AllOf):
        return all(holds(inner, facts) for inner in condition.all)
    if isinstance(condition, AnyOf):
        return any(holds(inner, facts) for inner in condition.any)
    if isinstance(condition, NotOf):
        return not holds(condition.not_, facts)
    if isinstance(condition, Count):
        return compare(condition, [count_in_window(condition, facts)])
    return compare(condition, values_at(condition.path, facts))


def count_in_window(condition: Count, facts: Facts) -> int:
    spec = condition.count
    since = facts.now - spec.within
    counted = 0
    for past in facts.history:
        moment = _timestamp(past)
        if moment is None or not since <= moment <= facts.now or event_name(past) != spec.event:
            continue
        counted += all(holds(predicate, facts.with_event(past)) for predicate in spec.where)
    return counted


def matches_event(match: EventMatch, facts: Facts) -> bool:
    """The event in hand has this name and satisfies every ``where``."""
    return event_name(facts.event) == match.event and all(
        holds(inner, facts) for inner in match.where
    )


def compare(comparison: _Comparison, values: Iterable[Any]) -> bool:
    found = list(values)
    operator, operand = comparison.operator, comparison.operand
    if operator == "exists":
        # null counts as absent, so ``exists: false`` is the exact opposite of ``exists: true``
        return any(value is not None for value in found) == bool(operand)
    if operator == "ne":
        return all(not _equal(value, operand) for value in found)
    return any(_OPERATORS[operator](value, operand) for value in found)


def _equal(left: Any, right: Any) -> bool:
    if _is_number(left) and _is_number(right):
        return float(left) == float(right)
    return type(left) is type(right) and left == right


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _ordered(test: str) -> Callable[[Any, Any], bool]:
    def check(left: Any, right: Any) -> bool:
        if _is_number(left) and _is_number(right):
            left, right = float(left), float(right)
        elif not (isinstance(left, str) and isinstance(right, str)):
            return False  # ISO timestamps and versions compare as text; mixed types never match
        outcome: bool = {
            "gt": left > right,
            "gte": left >= right,
            "lt": left < right,
            "lte": left <= right,
        }[test]
        return outcome

    return check


def _contains(left: Any, right: Any) -> bool:
    if isinstance(left, str) and isinstance(right, str):
        return right in left
    if isinstance(left, list):
        return any(_equal(element, right) for element in left)
    return False


_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": _equal,
    "gt": _ordered("gt"),
    "gte": _ordered("gte"),
    "lt": _ordered("lt"),
    "lte": _ordered("lte"),
    "in": lambda left, right: any(_equal(left, option) for option in right),
    "contains": _contains,
    "starts_with": lambda left, right: isinstance(left, str) and left.startswith(right),
}


def _timestamp(event: Mapping[str, Any]) -> datetime | None:
    value = event.get("timestamp")
    try:
        moment = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None
    # a timestamp without an offset is UTC; comparing naive with aware would raise
    return moment.replace(tzinfo=UTC) if moment and moment.tzinfo is None else moment
