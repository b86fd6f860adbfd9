"""Load trigger files and report every problem as ``file:line: message``.

YAML is composed first (keeping each node's line), then converted, so that a pydantic
error's location can be traced back to the line a person has to fix
(``domain/definition_files.py``, shared with the prediction loader).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from nudge.domain.definition_files import Location, Problem, read_mapping, validation_problems
from nudge.domain.render import template_problems
from nudge.domain.triggers.model import (
    AllOf,
    AnyOf,
    Condition,
    EventMatch,
    NotOf,
    Predicate,
    Trigger,
)

__all__ = [
    "Location",
    "Problem",
    "TriggerSet",
    "load_triggers",
    "parse_trigger",
    "read_mapping",
    "validation_problems",
]


@dataclass(frozen=True)
class TriggerSet:
    """The triggers of a folder, the problems found, and the file each trigger came from."""

    triggers: list[Trigger] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)  # trigger id -> file

    @property
    def ok(self) -> bool:
        return not self.problems


def load_triggers(directory: Path, templates: Path | None = None) -> TriggerSet:
    """Every ``*.yaml`` in the directory; with problems, nothing here should be deployed."""
    triggers: list[Trigger] = []
    problems: list[Problem] = []
    sources: dict[str, str] = {}
    for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
        trigger, found = parse_trigger(
            path.read_text(encoding="utf-8"), str(path), templates or directory / "templates"
        )
        problems += found
        if trigger is None:
            continue
        if trigger.id in sources:
            problems.append(
                Problem(str(path), 1, f"id {trigger.id!r} is already used by {sources[trigger.id]}")
            )
            continue
        sources[trigger.id] = str(path)
        triggers.append(trigger)
    return TriggerSet(triggers=triggers, problems=problems, sources=sources)


def parse_trigger(
    text: str, file: str, templates: Path | None = None
) -> tuple[Trigger | None, list[Problem]]:
    document, line_of, problems = read_mapping(
        text,
        file,
        empty="empty file: a trigger needs at least id, when and send",
        not_mapping="a trigger file holds one mapping (id, when, send, ...)",
    )
    if document is None:
        return None, problems
    try:
        trigger = Trigger.model_validate(document)
    except ValidationError as error:
        return None, validation_problems(file, error, document, line_of)
    found = _semantic_problems(trigger)
    if templates is not None:
        found += _template_problems(trigger, templates)
    problems = [Problem(file, line_of.get(location, 1), message) for location, message in found]
    return (None if problems else trigger), problems


# ---- semantics beyond the schema ---------------------------------------------------


def _semantic_problems(trigger: Trigger) -> list[tuple[Location, str]]:
    problems: list[tuple[Location, str]] = []
    if isinstance(trigger.when, EventMatch):
        problems += _unreachable(trigger.when.where, ("when", "where"))
    if trigger.audience is not None:
        problems += _unreachable([trigger.audience], ("audience",))
    return problems


def _unreachable(conditions: Sequence[Condition], location: Location) -> list[tuple[Location, str]]:
    """Conditions that can never hold together: eq a and eq b, gt 5 and lt 3, exists and not."""
    predicates = [
        condition for condition in _conjuncts(conditions) if isinstance(condition, Predicate)
    ]
    problems: list[tuple[Location, str]] = []
    by_path: dict[str, list[Predicate]] = {}
    for predicate in predicates:
        by_path.setdefault(predicate.path, []).append(predicate)
    for path, group in by_path.items():
        reason = _contradiction(group)
        if reason:
            problems.append((location, f"unreachable: {path} {reason}"))
    return problems


def _conjuncts(conditions: Iterable[Condition]) -> Iterable[Condition]:
    for condition in conditions:
        if isinstance(condition, AllOf):
            yield from _conjuncts(condition.all)
        elif not isinstance(condition, AnyOf | NotOf):
            yield condition


def _contradiction(group: list[Predicate]) -> str | None:
    equal = {repr(_plain(p.operand)) for p in group if p.operator == "eq"}
    if len(equal) > 1:
        return f"cannot equal {' and '.join(sorted(equal))} at once"
    exists = {p.operand for p in group if p.operator == "exists"}
    if False in exists and any(p.operator not in ("exists", "ne") for p in group):
        return "is required to be absent and also compared"
    low = max(
        (float(p.operand) for p in group if p.operator in ("gt", "gte") and _number(p.operand)),
        default=None,
    )
    high = min(
        (float(p.operand) for p in group if p.operator in ("lt", "lte") and _number(p.operand)),
        default=None,
    )
    if low is not None and high is not None:
        # only a strict bound at the binding value (gt 5 with lte 5) rules out the value itself
        strict = any(
            (p.operator == "gt" and _number(p.operand) and float(p.operand) == low)
            or (p.operator == "lt" and _number(p.operand) and float(p.operand) == high)
            for p in group
        )
        if low > high or (low == high and strict):
            return f"cannot be above {low:g} and below {high:g} at once"
    return None


def _plain(value: Any) -> Any:
    """Numbers as floats, so eq 1 and eq 1.0 are seen as the same value, as conditions see them."""
    return float(value) if _number(value) else value


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _send_location(step: str | None) -> Location:
    """Where a send's template is written: ``send.template``, or a journey step's
    (``steps.3.then.0.send.template`` for the step at "3.then.0")."""
    if step is None:
        return ("send", "template")
    parts = tuple(int(part) if part.isdigit() else part for part in step.split("."))
    return ("steps", *parts, "send", "template")


def _template_problems(trigger: Trigger, templates: Path) -> list[tuple[Location, str]]:
    """The trigger's template, and each variant's when it sends another or by another
    channel, must exist and render for its channel."""
    uses: list[tuple[Location, str, str]] = [
        (_send_location(step), send.template, send.channel) for step, send in trigger.sends
    ]
    for index, variant in enumerate(trigger.experiment.variants if trigger.experiment else []):
        override = variant.send
        if override is not None and trigger.send and (override.template or override.channel):
            # The line of the field the variant wrote: its template, else its channel.
            named = "template" if override.template else "channel"
            where: Location = ("experiment", "variants", index, "send", named)
            template = override.template or trigger.send.template
            uses.append((where, template, override.channel or trigger.send.channel))
    found: list[tuple[Location, str]] = []
    for where, name, channel in uses:
        field = ".".join(str(part) for part in where)
        if not templates.is_dir() or not any(templates.glob(f"{name}.*")):
            found.append((where, f"{field}: no template named {name!r} in {templates}"))
            continue
        found += [(where, problem) for problem in template_problems(templates, name, channel)]
    return found
