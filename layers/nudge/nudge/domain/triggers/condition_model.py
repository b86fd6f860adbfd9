"""Conditions as users write them in a trigger's ``where`` and ``audience`` and a
prediction's ``audience``: comparisons of a path or of a count, combined with all, any and
not. ``conditions.py`` decides whether one holds.

A module of their own, apart from the trigger model that uses them, so that a prediction
(``predictions/model.py``) is defined without loading messages, journeys and experiments:
the Train function builds predictions and no trigger (bench/README.md, issue #13).
"""

# No ``from __future__ import annotations`` here: pydantic would then evaluate every field's
# annotation from its text (a compile each) when the class is built, at cold start; written
# as objects they cost nothing more. The names used before they are defined are quoted.

from functools import cached_property
from typing import Annotated, Any

# pydantic's names from the modules that define them: ``from pydantic import`` loads
# them through importlib, which -X importtime bills to this module (bench/imports.py).
from pydantic.fields import Field
from pydantic.functional_validators import model_validator
from pydantic.types import Discriminator, Tag

from nudge.domain.triggers.common import Path, Window
from nudge.domain.triggers.common import Strict as _Strict

__all__ = [
    "OPERATORS",
    "AllOf",
    "AnyOf",
    "Condition",
    "Count",
    "CountSpec",
    "NotOf",
    "Predicate",
]

OPERATORS = ("eq", "ne", "gt", "gte", "lt", "lte", "in", "contains", "exists", "starts_with")


class _Comparison(_Strict):
    """Exactly one operator, written as a key: ``{path: properties.price, gt: 0}``."""

    eq: Any = None
    ne: Any = None
    gt: float | str | None = None
    gte: float | str | None = None
    lt: float | str | None = None
    lte: float | str | None = None
    in_: list[Any] | None = Field(default=None, alias="in")
    contains: Any = None
    exists: bool | None = None
    starts_with: str | None = None

    @model_validator(mode="after")
    def _one_operator(self) -> "_Comparison":
        used = self.operators_used()
        if len(used) != 1:
            named = ", ".join(used) if used else "none"
            raise ValueError(
                f"needs exactly one operator of {', '.join(OPERATORS)} (found {named})"
            )
        return self

    def operators_used(self) -> list[str]:
        used = {"in" if name == "in_" else name for name in self.model_fields_set}
        return [name for name in OPERATORS if name in used]  # in a stable order, for messages

    # Cached: conditions are evaluated on every event, and the answer never changes.
    @cached_property
    def operator(self) -> str:
        return self.operators_used()[0]

    @cached_property
    def operand(self) -> Any:
        return getattr(self, "in_" if self.operator == "in" else self.operator)


class Predicate(_Comparison):
    path: Path


class CountSpec(_Strict):
    event: Annotated[str, Field(min_length=1)]
    within: Window
    where: list[Predicate] = Field(default_factory=list)


class Count(_Comparison):
    """How many times an event happened in a window: ``{count: {event: X, within: 7d}, gte: 3}``."""

    count: CountSpec


class AllOf(_Strict):
    all: Annotated[list["Condition"], Field(min_length=1)]


class AnyOf(_Strict):
    any: Annotated[list["Condition"], Field(min_length=1)]


class NotOf(_Strict):
    not_: "Condition" = Field(alias="not")


def _condition_kind(value: Any) -> str:
    if isinstance(value, dict):
        for key in ("all", "any", "not", "count"):
            if key in value:
                return f"{key}_of"
        return "predicate"
    kinds: dict[type, str] = {AllOf: "all_of", AnyOf: "any_of", NotOf: "not_of", Count: "count_of"}
    return kinds.get(type(value), "predicate")


Condition = Annotated[
    Annotated[AllOf, Tag("all_of")]
    | Annotated[AnyOf, Tag("any_of")]
    | Annotated[NotOf, Tag("not_of")]
    | Annotated[Count, Tag("count_of")]
    | Annotated[Predicate, Tag("predicate")],
    Discriminator(_condition_kind),
]
