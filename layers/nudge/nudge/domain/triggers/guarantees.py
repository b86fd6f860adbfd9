"""What a trigger's conditions guarantee is present when it fires, as template paths.

A condition every fire must meet (a predicate of the entry event's ``where``, or of the
audience when the audience is a predicate or an ``all`` of them) that holds only for a
present value (any operator but ``ne`` and ``exists: false``) guarantees its path. Event
paths are written relative to the event in conditions (``properties.url``) and from
``event`` in templates (``event.properties.url``).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from nudge.domain.render import template_files
from nudge.domain.template_reads import unguarded_reads
from nudge.domain.triggers.model import AllOf, EventMatch, Predicate, Trigger

__all__ = ["ALWAYS_PRESENT", "guaranteed", "guaranteed_paths", "template_warnings"]

# What every stored event has, normalised at intake.
ALWAYS_PRESENT = frozenset({"event.type", "event.messageId", "event.timestamp", "event.receivedAt"})
_PRESENT_ONLY = ("eq", "gt", "gte", "lt", "lte", "in", "contains", "starts_with")


def guaranteed_paths(trigger: Trigger) -> set[str]:
    paths = set(ALWAYS_PRESENT)
    if isinstance(trigger.when, EventMatch):
        paths.add("event.event")
        paths |= {_template_path(p.path) for p in _predicates(trigger.when.where)}
    if trigger.audience is not None:
        paths |= {_template_path(p.path) for p in _predicates([trigger.audience])}
    return paths


def template_warnings(trigger: Trigger, templates: Path) -> list[str]:
    """``file:line: warning: ...`` for each read of the trigger's templates (its own and its
    variants') that its conditions do not guarantee and the template does not guard."""
    files: list[str] = []
    for _, send in trigger.sends:
        files += template_files(send.template, send.channel)
    for variant in trigger.experiment.variants if trigger.experiment else []:
        override = variant.send
        if override is not None and trigger.send and (override.template or override.channel):
            name = override.template or trigger.send.template
            files += template_files(name, override.channel or trigger.send.channel)
    paths = guaranteed_paths(trigger)
    return [
        f"{templates / read.file}:{read.line}: warning: {trigger.id} sends it, and its conditions"
        f" do not guarantee {read.path}: a fire without it fails to render. Give it a"
        " | default(...), test it in an {% if %}, or require it in the trigger's where"
        for read in unguarded_reads(templates, list(dict.fromkeys(files)))
        if not guaranteed(read.path, paths)
    ]


def guaranteed(path: str, paths: set[str]) -> bool:
    """A read is safe when its path, or a longer one under it, is guaranteed."""
    return any(known == path or known.startswith(path + ".") for known in paths)


def _predicates(conditions: Iterable[Any]) -> list[Predicate]:
    found: list[Predicate] = []
    for condition in conditions:
        if isinstance(condition, AllOf):
            found += _predicates(condition.all)
        elif isinstance(condition, Predicate) and _needs_a_value(condition):
            found.append(condition)
    return found


def _needs_a_value(predicate: Predicate) -> bool:
    if predicate.exists is True:
        return True
    return any(getattr(predicate, operator, None) is not None for operator in _PRESENT_ONLY)


def _template_path(path: str) -> str:
    root = path.partition(".")[0]
    return path if root in ("traits", "profile") else f"event.{path}"
