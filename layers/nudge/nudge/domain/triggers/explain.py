"""Human-readable reasons a condition does not hold, for decision records and `explain`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from nudge.domain.durations import words
from nudge.domain.triggers.condition_model import AllOf, AnyOf, Condition, Count, NotOf, Predicate
from nudge.domain.triggers.conditions import Facts, count_in_window, holds, values_at

__all__ = ["describe", "why_not"]


def why_not(conditions: Sequence[Condition | None], facts: Facts) -> str | None:
    """None when every condition holds; otherwise what failed, with the value found."""
    for condition in conditions:
        if condition is None or holds(condition, facts):
            continue
        return _reason(condition, facts)
    return None


def _reason(condition: Condition, facts: Facts) -> str:
    if isinstance(condition, AllOf):
        failing = next(inner for inner in condition.all if not holds(inner, facts))
        return _reason(failing, facts)
    if isinstance(condition, AnyOf):
        return "none of: " + "; ".join(_reason(inner, facts) for inner in condition.any)
    if isinstance(condition, NotOf):
        return f"not ({describe(condition.not_)}) failed: it holds"
    if isinstance(condition, Count):
        found = count_in_window(condition, facts)
        return f"{describe(condition)} failed: counted {found}"
    values = values_at(condition.path, facts)
    seen = "missing" if not values else ", ".join(_short(value) for value in values[:3])
    return f"{describe(condition)} failed: found {seen}"


def describe(condition: Condition) -> str:
    if isinstance(condition, AllOf):
        return " and ".join(describe(inner) for inner in condition.all)
    if isinstance(condition, AnyOf):
        return " or ".join(describe(inner) for inner in condition.any)
    if isinstance(condition, NotOf):
        return f"not {describe(condition.not_)}"
    if isinstance(condition, Count):
        spec, bound = condition.count, _short(condition.operand)
        return f"count of {spec.event} in {words(spec.within)} {condition.operator} {bound}"
    assert isinstance(condition, Predicate)
    return f"{condition.path} {condition.operator} {_short(condition.operand)}"


def _short(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # "gt 120", as written, not "gt 120.0"
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."
