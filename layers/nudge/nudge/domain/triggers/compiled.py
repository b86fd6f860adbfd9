"""Conditions compiled once, when the triggers load, into closures the engine calls per event.

``holds`` and ``why_not`` walk a condition's models on every call: which kind it is, which
operator, where its path starts. A compiled condition has answered those once. ``test``
says whether it holds (as ``holds``); ``check`` says why it does not (as ``why_not``, the
same text), or None when it holds. Both read only the facts they are given: pure.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from nudge.domain.triggers.conditions import (
    _OPERATORS,
    Facts,
    _equal,
    _timestamp,
    _walk,
    event_name,
)
from nudge.domain.triggers.explain import _short, describe
from nudge.domain.triggers.model import AllOf, AnyOf, Condition, Count, NotOf, Predicate

__all__ = ["Compiled", "Values", "compile_all", "compile_condition", "compile_path"]

Values = Callable[[Facts], list[Any]]  # every value a path reaches (as ``values_at``)
Test = Callable[[Facts], bool]
Check = Callable[[Facts], str | None]


@dataclass(frozen=True, slots=True)
class Compiled:
    """A condition compiled once: a fast test, and the check that says why it fails."""

    test: Test  # holds
    check: Check  # None when it holds; else why_not's reason


def compile_all(conditions: list[Condition]) -> Compiled | None:
    """Every condition must hold; the reason is the first failing one's (as ``why_not``)."""
    parts = [compile_condition(condition) for condition in conditions]
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        return _both(*parts)
    tests = tuple(part.test for part in parts)
    checks = tuple(part.check for part in parts)

    def test(facts: Facts) -> bool:
        for each in tests:  # noqa: SIM110 (a loop: no generator per call)
            if not each(facts):
                return False
        return True

    def check(facts: Facts) -> str | None:
        for each in checks:
            failed = each(facts)
            if failed is not None:
                return failed
        return None

    return Compiled(test, check)


def _both(first: Compiled, second: Compiled) -> Compiled:
    """compile_all of two conditions (a where's usual size: a property present, a threshold),
    without the loop: an entry's where is checked on every event its name enters."""
    first_test, second_test = first.test, second.test
    first_check, second_check = first.check, second.check

    def test(facts: Facts) -> bool:
        return first_test(facts) and second_test(facts)

    def check(facts: Facts) -> str | None:
        failed = first_check(facts)
        return failed if failed is not None else second_check(facts)

    return Compiled(test, check)


def compile_condition(condition: Condition) -> Compiled:
    if isinstance(condition, AllOf):
        compiled = compile_all(list(condition.all))
        assert compiled is not None  # at least one, the model says
        return compiled
    if isinstance(condition, AnyOf):
        return _any_of([compile_condition(inner) for inner in condition.any])
    if isinstance(condition, NotOf):
        return _not_of(compile_condition(condition.not_), describe(condition.not_))
    if isinstance(condition, Count):
        return _count(condition)
    return _predicate(condition)


def _any_of(parts: list[Compiled]) -> Compiled:
    tests = tuple(part.test for part in parts)
    checks = tuple(part.check for part in parts)

    def test(facts: Facts) -> bool:
        for each in tests:  # noqa: SIM110 (a loop: no generator per call)
            if each(facts):
                return True
        return False

    def check(facts: Facts) -> str | None:
        reasons: list[str] = []
        for each in checks:
            failed = each(facts)
            if failed is None:
                return None
            reasons.append(failed)
        return "none of: " + "; ".join(reasons)

    return Compiled(test, check)


def _not_of(inner: Compiled, described: str) -> Compiled:
    inner_test = inner.test
    reason = f"not ({described}) failed: it holds"

    def test(facts: Facts) -> bool:
        return not inner_test(facts)

    def check(facts: Facts) -> str | None:
        return reason if inner_test(facts) else None

    return Compiled(test, check)


def _count(condition: Count) -> Compiled:
    spec = condition.count
    within, name = spec.within, spec.event
    wheres = tuple(_predicate(predicate).test for predicate in spec.where)
    holds_for = _values_test(condition.operator, condition.operand)
    described = describe(condition)

    def counted(facts: Facts) -> int:  # as conditions.count_in_window
        since, now = facts.now - within, facts.now
        found = 0
        for past in facts.history:
            moment = _timestamp(past)
            if moment is None or not since <= moment <= now or event_name(past) != name:
                continue
            if wheres:
                past_facts = facts.with_event(past)
                found += all(where(past_facts) for where in wheres)
            else:
                found += 1
        return found

    def test(facts: Facts) -> bool:
        return holds_for([counted(facts)])

    def check(facts: Facts) -> str | None:
        found = counted(facts)
        return None if holds_for([found]) else f"{described} failed: counted {found}"

    return Compiled(test, check)


def _predicate(condition: Predicate) -> Compiled:
    values = compile_path(condition.path)
    holds_for = _values_test(condition.operator, condition.operand)
    described = describe(condition)

    def failed(found: list[Any]) -> str:
        seen = "missing" if not found else ", ".join(_shown(value) for value in found[:3])
        return f"{described} failed: found {seen}"

    root, _, rest = condition.path.partition(".")
    if rest and "." not in rest and root in _CONTAINERS:
        return _one_name(root, rest, condition, values, holds_for, failed)

    def test(facts: Facts) -> bool:
        return holds_for(values(facts))

    def check(facts: Facts) -> str | None:
        found = values(facts)
        return None if holds_for(found) else failed(found)

    return Compiled(test, check)


_CONTAINERS = ("properties", "context", "traits", "profile")


def _one_name(
    root: str,
    name: str,
    condition: Predicate,
    values: Values,
    holds_for: Callable[[list[Any]], bool],
    failed: Callable[[list[Any]], str],
) -> Compiled:
    """A predicate on one name in a mapping (``properties.price``, ``traits.tier``), the
    usual kind: a dict lookup and one comparison, no list of values in between. Anything
    else found there (not a dict, a missing container) takes the general way."""
    one_holds, none_holds = _one_value_test(condition.operator, condition.operand)
    missing = failed([])
    prefix = f"{describe(condition)} failed: found "
    on_event = root in ("properties", "context")
    person = attrgetter(root)  # facts.traits or facts.profile

    def test(facts: Facts) -> bool:
        found = facts.event.get(root, _NOTHING) if on_event else person(facts)
        if type(found) is dict:
            return one_holds(found[name]) if name in found else none_holds
        return holds_for(values(facts))

    def check(facts: Facts) -> str | None:
        found = facts.event.get(root, _NOTHING) if on_event else person(facts)
        if type(found) is dict:
            if name in found:
                value = found[name]
                return None if one_holds(value) else prefix + _shown(value)
            return None if none_holds else missing
        every = values(facts)
        return None if holds_for(every) else failed(every)

    if condition.operator in _ORDER and _is_number(condition.operand) and on_event:
        # A threshold on the event's properties (``properties.price gt 100``), the commonest
        # kind of all: the comparison inline too.
        order, bound, operand = (
            _ORDER[condition.operator],
            float(condition.operand),
            condition.operand,
        )
        general = _OPERATORS[condition.operator]

        def check_threshold(facts: Facts) -> str | None:
            found = facts.event.get(root, _NOTHING)
            if type(found) is dict:
                if name in found:
                    value = found[name]
                    kind = type(value)
                    if kind is int or kind is float:
                        if order(float(value), bound):
                            return None
                    elif general(value, operand):
                        return None
                    return prefix + _shown(value)
                return missing
            every = values(facts)
            return None if holds_for(every) else failed(every)

        return Compiled(test, check_threshold)
    return Compiled(test, check)


_NOTHING: dict[str, Any] = {}  # what values_at starts from when the event lacks the root


def _one_value_test(name: str, operand: Any) -> tuple[Callable[[Any], bool], bool]:
    """``compare`` on one value found, and on none: as ``_values_test`` says for [value], []."""
    if name == "exists":
        wanted = bool(operand)
        return (lambda value: (value is not None) == wanted), not wanted
    if name == "ne":
        return (lambda value: not _equal(value, operand)), True
    return _value_test(name, operand), False


# ---- paths -------------------------------------------------------------------------


def compile_path(path: str) -> Values:
    """``values_at`` for one path, its root and segments worked out once."""
    root, _, rest = path.partition(".")
    segments = rest.split(".") if rest else []
    start = _start(root)
    if not segments:

        def whole(facts: Facts) -> list[Any]:
            value = start(facts)
            return [] if value is None else [value]

        return whole
    if len(segments) == 1:
        head = segments[0]

        def one(facts: Facts) -> list[Any]:
            value = start(facts)
            if type(value) is dict:  # the usual case, without the walk
                return [value[head]] if head in value else []
            return [] if value is None else list(_walk(value, segments))

        return one

    def walked(facts: Facts) -> list[Any]:
        value = start(facts)
        return [] if value is None else list(_walk(value, segments))

    return walked


def _start(root: str) -> Callable[[Facts], Any]:
    """Where a path's walk starts, as ``values_at`` finds it."""
    if root in ("properties", "context"):
        return lambda facts: facts.event.get(root, {})
    if root == "traits":
        return lambda facts: facts.traits
    if root == "profile":
        return lambda facts: facts.profile
    if root == "event":
        return lambda facts: event_name(facts.event)
    return lambda facts: facts.event.get(root)


# ---- comparisons -------------------------------------------------------------------


def _values_test(name: str, operand: Any) -> Callable[[list[Any]], bool]:
    """``compare`` for one operator and operand."""
    if name == "exists":
        wanted = bool(operand)

        def exists(found: list[Any]) -> bool:
            for value in found:
                if value is not None:
                    return wanted
            return not wanted

        return exists
    if name == "ne":

        def differs(found: list[Any]) -> bool:
            for value in found:  # noqa: SIM110 (a loop: no generator per call)
                if _equal(value, operand):
                    return False
            return True

        return differs
    single = _value_test(name, operand)

    def any_holds(found: list[Any]) -> bool:
        for value in found:  # noqa: SIM110 (a loop: no generator per call)
            if single(value):
                return True
        return False

    return any_holds


_ORDER: Mapping[str, Callable[[Any, Any], bool]] = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}


def _value_test(name: str, operand: Any) -> Callable[[Any], bool]:
    """One value against the operand, as ``_OPERATORS[name]``; plain ints, floats and
    strings take a short way, anything else the general one."""
    general = _OPERATORS[name]
    if name in _ORDER and _is_number(operand):
        order, bound = _ORDER[name], float(operand)

        def ordered(value: Any) -> bool:
            kind = type(value)
            if kind is int or kind is float:
                return order(float(value), bound)
            return general(value, operand)

        return ordered
    if name == "in" and isinstance(operand, list) and all(type(o) is str for o in operand):
        options = frozenset(operand)

        def among(value: Any) -> bool:
            if type(value) is str:
                return value in options
            return general(value, operand)

        return among
    if name == "eq" and type(operand) is str:

        def same(value: Any) -> bool:
            if type(value) is str:
                return value == operand
            return general(value, operand)

        return same
    return lambda value: general(value, operand)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


# ---- reasons -----------------------------------------------------------------------

_PLAIN = re.compile(r'[\x00-\x1f\\"]')  # what JSON would escape (non-ASCII it keeps)


def _shown(value: Any) -> str:
    """``explain._short`` (a value as JSON, at most 60 characters), without the encoder
    for the values reasons usually show."""
    kind = type(value)
    if kind is int:
        text = str(value)
    elif kind is float and math.isfinite(value):
        text = str(int(value)) if value.is_integer() else repr(value)
    elif kind is str and not _PLAIN.search(value):
        text = f'"{value}"'
    else:
        return _short(value)
    return text if len(text) <= 60 else text[:57] + "..."
