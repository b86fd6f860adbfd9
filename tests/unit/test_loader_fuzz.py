"""The trigger loader under generated input (hypothesis): whatever a file holds, loading it
gives a trigger or problems with a line number, and never raises."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nudge.domain.triggers.loader import parse_trigger

TRIGGERS = Path(__file__).resolve().parents[2] / "triggers"
SHIPPED = {path.name: yaml.safe_load(path.read_text()) for path in TRIGGERS.glob("*.yaml")}

BOUNDED = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)


def _answers(text: str) -> bool:
    trigger, problems = parse_trigger(text, "fuzzed.yaml")
    assert (trigger is None) == bool(problems)
    assert all(problem.line >= 1 and problem.message for problem in problems)
    return trigger is not None


@BOUNDED
@given(st.text(max_size=300))
def test_any_text_gives_a_trigger_or_problems(text: str) -> None:
    _answers(text)


@BOUNDED
@given(VALUES)
def test_any_yaml_document_gives_a_trigger_or_problems(document: Any) -> None:
    _answers(yaml.safe_dump(document))


def _paths(document: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a document a value sits."""
    found = [at] if at else []
    if isinstance(document, dict):
        for key, value in document.items():
            found += _paths(value, (*at, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found += _paths(value, (*at, index))
    return found


def _replaced(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    head, *rest = path
    if isinstance(document, dict):
        return {**document, head: _replaced(document[head], tuple(rest), value)}
    copy = list(document)
    copy[head] = _replaced(copy[head], tuple(rest), value)
    return copy


@st.composite
def shipped_with_one_value_replaced(draw: st.DrawFn) -> str:
    document = SHIPPED[draw(st.sampled_from(sorted(SHIPPED)))]
    path = draw(st.sampled_from(_paths(document)))
    return yaml.safe_dump(_replaced(document, path, draw(VALUES)))


@BOUNDED
@given(shipped_with_one_value_replaced())
def test_a_shipped_trigger_with_any_value_replaced_gives_a_trigger_or_problems(
    text: str,
) -> None:
    _answers(text)


def test_the_shipped_triggers_load() -> None:
    assert all(_answers(yaml.safe_dump(document)) for document in SHIPPED.values())
