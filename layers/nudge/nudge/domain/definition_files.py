"""What the files users write (``triggers/*.yaml``, ``predictions/*.yaml``) share: one YAML
mapping read with the line of every place in it, and pydantic's errors reported as
``file:line: place: message`` at the line a person has to fix.

A module apart from the trigger loader, so that loading predictions (the Train function's
cold start) does not load the trigger model and the template renderer (bench/README.md,
issue #13).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml
from pydantic_core import ValidationError

__all__ = ["Location", "Problem", "read_mapping", "validation_problems"]

Location = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """Why a file (a trigger, a prediction) does not load, at a line of it."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


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
