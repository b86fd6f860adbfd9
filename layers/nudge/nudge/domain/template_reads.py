"""Which event properties and traits a template reads without a fallback.

A template that reads ``event.properties.url`` fails to render for an event without it
(StrictUndefined), and the fire goes to the dead-letter queue after paying for its writes.
``nudge validate`` compares these reads with what the trigger's conditions guarantee
(``domain/triggers/guarantees.py``) and warns about the rest. A read counts as guarded when
the same path appears anywhere in the template under ``default(...)``, in an ``is defined``
(or other) test, or in an ``{% if %}`` / inline-if test: the template then says what to do
without it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment, TemplateError, nodes

__all__ = ["Read", "unguarded_reads"]

_ROOTS = frozenset({"event", "traits"})


@dataclass(frozen=True)
class Read:
    file: str
    line: int
    path: str  # event.properties.url, traits.first_name


def unguarded_reads(templates: Path, files: list[str]) -> list[Read]:
    """Reads of ``event.*`` and ``traits.*`` with no fallback, in these template files
    (missing or unparsable files are left to the template checks)."""
    found: list[Read] = []
    environment = Environment()
    for file in files:
        path = templates / file
        if not path.is_file():
            continue
        try:
            tree = environment.parse(path.read_text(encoding="utf-8"))
        except TemplateError:
            continue
        reads = list(_reads(tree, guarded=False))
        guarded = {dotted for dotted, _, is_guarded in reads if is_guarded}
        found += [
            Read(file, line, dotted)
            for dotted, line, is_guarded in reads
            if not is_guarded and dotted not in guarded
        ]
    return found


def _reads(node: nodes.Node, *, guarded: bool) -> Iterator[tuple[str, int, bool]]:
    """(path, line, guarded) for every outermost attribute chain rooted at event or traits."""
    if isinstance(node, nodes.Getattr | nodes.Getitem):
        dotted = _dotted(node)
        if dotted is not None:
            yield dotted, node.lineno, guarded
            return
    if isinstance(node, nodes.Filter) and node.name == "default":
        if node.node is not None:
            yield from _reads(node.node, guarded=True)
        for argument in (*node.args, *(keyword.value for keyword in node.kwargs)):
            yield from _reads(argument, guarded=guarded)
        return
    if isinstance(node, nodes.Test):
        yield from _reads(node.node, guarded=True)
        return
    if isinstance(node, nodes.If | nodes.CondExpr):
        yield from _reads(node.test, guarded=True)
        for branch in node.iter_child_nodes():
            if branch is not node.test:
                yield from _reads(branch, guarded=guarded)
        return
    for child in node.iter_child_nodes():
        yield from _reads(child, guarded=guarded)


def _dotted(node: nodes.Node) -> str | None:
    """``event.properties.url`` for a chain of constant names from event or traits."""
    names: list[str] = []
    while isinstance(node, nodes.Getattr | nodes.Getitem):
        if isinstance(node, nodes.Getattr):
            names.append(node.attr)
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            names.append(node.arg.value)
        else:
            return None
        node = node.node
    if not isinstance(node, nodes.Name) or node.name not in _ROOTS:
        return None
    return ".".join([node.name, *reversed(names)])
