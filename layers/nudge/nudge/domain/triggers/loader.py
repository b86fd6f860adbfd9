"""Load trigger files and report every problem as ``file:line: message``.

YAML is composed first (keeping each node's line), then converted, so that a pydantic
error's location can be traced back to the line a person has to fix.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

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

Location = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """Why a trigger file does not load, at a line of it."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


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


def read_mapping(
    text: str, file: str, *, empty: str, not_mapping: str
) -> tuple[dict[Any, Any] | None, dict[Location, int], list[Problem]]:
    """One YAML mapping, with the line of every place in it; or the problems that stop it.
    Shared by every file format the project validates (triggers, predictions)."""
    line_of: dict[Location, int] = {}
    try:
        loader = yaml.SafeLoader(text)
    except yaml.reader.ReaderError as error:  # a character YAML does not allow; not "marked"
        line = text.count("\n", 0, error.position) + 1
        return None, line_of, [Problem(file, line, f"YAML error: {error.reason}")]
    try:
        root = loader.get_single_node()
        if root is None:
            return None, line_of, [Problem(file, 1, empty)]
        document = _to_python(loader, root, (), line_of)
    except _DuplicateKey as duplicate:
        return None, line_of, [Problem(file, duplicate.line, f"{duplicate.key!r} is given twice")]
    except _Cycle as cycle:
        return None, line_of, [Problem(file, cycle.line, "a YAML alias refers to itself (a cycle)")]
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else 1
        return None, line_of, [Problem(file, line, f"YAML error: {error.problem or error}")]
    finally:
        loader.dispose()
    if not isinstance(document, dict):
        return None, line_of, [Problem(file, root.start_mark.line + 1, not_mapping)]
    return document, line_of, []


def validation_problems(
    file: str,
    error: ValidationError,
    document: Any,
    line_of: dict[Location, int],
    subject: str = "trigger",
) -> list[Problem]:
    """A pydantic error as ``file:line: place: message``, one per place (``subject`` names
    the file's top level, for a problem with the whole mapping)."""
    return [_problem(file, issue, document, line_of, subject) for issue in _distinct(error)]


class _Cycle(Exception):
    def __init__(self, line: int) -> None:
        self.line = line


class _DuplicateKey(Exception):
    def __init__(self, line: int, key: object) -> None:
        self.line = line
        self.key = key


def _to_python(
    loader: yaml.SafeLoader,
    node: yaml.Node,
    location: Location,
    line_of: dict[Location, int],
    ancestors: frozenset[int] = frozenset(),
) -> Any:
    """Plain data from composed nodes; a YAML alias that contains itself is a cycle."""
    line_of[location] = node.start_mark.line + 1
    if id(node) in ancestors:
        raise _Cycle(node.start_mark.line + 1)
    inner = ancestors | {id(node)}
    if isinstance(node, yaml.MappingNode):
        mapping: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if isinstance(key, list | dict):  # a complex key (? [a, b]) cannot key a dict
                raise yaml.constructor.ConstructorError(
                    None, None, "a key must be a plain value", key_node.start_mark
                )
            if key in mapping:  # YAML keeps the last silently; a reviewer would not notice
                raise _DuplicateKey(key_node.start_mark.line + 1, key)
            mapping[key] = _to_python(loader, value_node, (*location, key), line_of, inner)
            line_of[(*location, key)] = key_node.start_mark.line + 1
        return mapping
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            # An item's own line, for what is missing from it (a step without its then).
            line_of.setdefault((*location, index), item.start_mark.line + 1)
            items.append(_to_python(loader, item, (*location, index), line_of, inner))
        return items
    return loader.construct_object(node, deep=True)


def _distinct(error: ValidationError) -> list[dict[str, Any]]:
    """One message per place: union branches that failed for the same input are noise."""
    seen: set[Location] = set()
    issues = []
    for issue in error.errors():
        location = tuple(issue["loc"])
        if location in seen:
            continue
        seen.add(location)
        issues.append(dict(issue))
    return issues


def _problem(
    file: str,
    issue: dict[str, Any],
    document: Any,
    line_of: dict[Location, int],
    subject: str = "trigger",
) -> Problem:
    names_a_field = issue["type"] in ("missing", "extra_forbidden")
    data_location = _data_location(tuple(issue["loc"]), document, names_a_field)
    line = _line(data_location, line_of)
    where = ".".join(str(part) for part in data_location) or subject
    message = str(issue["msg"]).removeprefix("Value error, ")
    if issue["type"] == "extra_forbidden":
        message = f"unknown field {data_location[-1]!r}"
        where = ".".join(str(part) for part in data_location[:-1]) or subject
    elif issue["type"] == "missing":
        message = f"{data_location[-1] if data_location else 'field'!s} is required"
        where = ".".join(str(part) for part in data_location[:-1]) or subject
    return Problem(file, line, f"{where}: {message}")


def _line(location: Location, line_of: dict[Location, int]) -> int:
    """The line of a place in the file, else of the nearest place holding it (a missing
    field is not in the file: the mapping that lacks it is)."""
    for end in range(len(location), 0, -1):
        if location[:end] in line_of:
            return line_of[location[:end]]
    return 1


_ALIASES = {"not_": "not", "in_": "in", "from_": "from", "if_": "if", "else_": "else"}


def _data_location(location: Location, document: Any, names_a_field: bool) -> Location:
    """Pydantic's location without the union tags it inserts (EventMatch, predicate, ...)."""
    path: list[str | int] = []
    current = document
    for position, part in enumerate(location):
        key = _ALIASES.get(part, part) if isinstance(part, str) else part
        found, child = _child(current, key)
        if found:
            current = child
        elif not (names_a_field and isinstance(current, dict) and position == len(location) - 1):
            continue  # a union tag such as "predicate" or "EventMatch"
        # (the last part may be a missing or unknown field: named, though not in the data)
        path.append(key)
    return tuple(path)


def _child(container: Any, key: str | int) -> tuple[bool, Any]:
    if isinstance(container, dict) and key in container:
        return True, container[key]
    if isinstance(container, list) and isinstance(key, int) and 0 <= key < len(container):
        return True, container[key]
    return False, None


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
