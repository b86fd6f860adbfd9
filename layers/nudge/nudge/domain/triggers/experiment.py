"""A trigger's experiment: variants that change its timing or its message, a holdout that
is assigned and recorded but never sent, and the goal that says what worked.

```yaml
experiment:
  variants:
    - {id: h24, weight: 45, unless: {within: 24h}}
    - {id: h48, weight: 45, unless: {within: 48h}}
  holdout: 10%
  goal: {event: Order Completed, within: 7d, value: properties.revenue}
```

Assignment is a stable hash of the trigger, the experiment's version and the person, so it
needs no lookup and no randomness; the engine records it at entry, and a recorded arm is
kept on re-entry (that is what keeps people in place when weights change). The version is
a digest of the variants' definitions without their weights: editing what a variant does
starts a new experiment, re-weighting does not.
"""

# No ``from __future__ import annotations`` here: pydantic would then evaluate every field's
# annotation from its text (a compile each) when the class is built, at cold start; written
# as objects they cost nothing more. The names used before they are defined are quoted.

import hashlib
import json
import math
from datetime import timedelta
from functools import cached_property
from typing import Annotated, Any, Literal

# pydantic's names from the modules that define them: ``from pydantic import`` loads
# them through importlib, which -X importtime bills to this module (bench/imports.py).
from pydantic.fields import Field
from pydantic.functional_validators import BeforeValidator, field_validator, model_validator
from pydantic.json_schema import WithJsonSchema

from nudge.domain.experiments.naming import experiment_key
from nudge.domain.person import PersonId
from nudge.domain.triggers.common import (
    ID_PATTERN,
    Duration,
    Path,
    SendTime,
    Strict,
    Window,
    in_range,
)

__all__ = ["HOLDOUT", "Experiment", "Goal", "Variant", "assign", "experiment_key"]

HOLDOUT = "holdout"  # the arm that is assigned and recorded, never sent
MAX_GOAL_WINDOW = timedelta(days=30)
_BUCKETS = 10_000  # assignment resolution: weights are honoured to 0.01 %


def _percent(value: object) -> float:
    """``10%``, ``"10"`` or ``10`` as the fraction 0.10."""
    if isinstance(value, bool):
        raise ValueError("must be a percentage such as 10%")
    if isinstance(value, str):
        text = value.strip().removesuffix("%").strip()
        try:
            value = float(text)
        except ValueError:
            raise ValueError("must be a percentage such as 10%") from None
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError("must be a percentage such as 10%")
    return float(value) / 100


_PERCENT_SCHEMA = {
    "anyOf": [
        {"type": "string", "pattern": "^\\s*[0-9]+(\\.[0-9]+)?\\s*%?\\s*$"},
        {"type": "number"},
    ],
    "description": "A percentage: 10% or 10",
    "examples": ["10%"],
}
Percent = Annotated[float, BeforeValidator(_percent), WithJsonSchema(_PERCENT_SCHEMA)]


class UnlessOverride(Strict):
    within: Window


class SendOverride(Strict):
    channel: Literal["email", "webhook", "in_app"] | None = None
    template: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")] | None = None
    # An arm that waits for another local time, or for the person's best hour (with the
    # trigger's within and fallback): A/B timing.
    at: SendTime | None = None


class Variant(Strict):
    """One arm: its share of the traffic and what it changes (delay, the absence window,
    the channel or template); anything else a variant may not change."""

    id: Annotated[str, Field(pattern=ID_PATTERN)]
    weight: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    delay: Duration | None = None
    unless: UnlessOverride | None = None
    send: SendOverride | None = None

    @field_validator("id")
    @classmethod
    def _not_the_holdout(cls, value: str) -> str:
        if value == HOLDOUT:
            raise ValueError(f"{HOLDOUT!r} names the holdout; give the variant another id")
        return value

    @field_validator("delay")
    @classmethod
    def _delay_in_range(cls, value: timedelta | None) -> timedelta | None:
        return None if value is None else in_range(value, timedelta(0), timedelta(days=30))

    def definition(self) -> dict[str, Any]:
        """What the variant does, without its weight: the experiment's version hashes it."""
        return self.model_dump(mode="json", exclude={"weight"}, exclude_none=True)


class Goal(Strict):
    event: Annotated[str, Field(min_length=1, max_length=512)] = "Order Completed"
    within: Duration = timedelta(days=7)  # counted from assignment
    value: Path | None = None  # revenue; else properties.total, else none

    @field_validator("within")
    @classmethod
    def _within_range(cls, value: timedelta) -> timedelta:
        return in_range(value, timedelta(minutes=1), MAX_GOAL_WINDOW)


class Experiment(Strict):
    variants: Annotated[list[Variant], Field(min_length=1)]
    holdout: Percent = 0.0
    goal: Goal = Goal()
    min_effect: Percent = 0.10  # the smallest relative uplift worth detecting

    @field_validator("holdout")
    @classmethod
    def _holdout_range(cls, value: float) -> float:
        if not 0 <= value < 1:
            raise ValueError(f"{value:.0%} is out of range (0% to under 100%)")
        return value

    @field_validator("min_effect")
    @classmethod
    def _effect_range(cls, value: float) -> float:
        if not 0 < value <= 10:
            raise ValueError(f"{value:.0%} is out of range (more than 0% to 1000%)")
        return value

    @model_validator(mode="after")
    def _ids_unique(self) -> "Experiment":
        ids = [variant.id for variant in self.variants]
        repeated = sorted({name for name in ids if ids.count(name) > 1})
        if repeated:
            raise ValueError(f"variant ids must be unique; repeated: {', '.join(repeated)}")
        return self

    @cached_property
    def version(self) -> str:
        """A digest of the variants' definitions (not their weights, nor the holdout)."""
        canonical = json.dumps([variant.definition() for variant in self.variants], sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]

    def variant(self, arm: str) -> Variant | None:
        return next((variant for variant in self.variants if variant.id == arm), None)


def assign(trigger_id: str, experiment: Experiment, person: PersonId) -> str:
    """The arm a person enters first: ``holdout`` or a variant id, by a stable hash."""
    digest = hashlib.sha256(f"{trigger_id}|{experiment.version}|{person}".encode()).digest()
    point = (int.from_bytes(digest[:8], "big") % _BUCKETS) / _BUCKETS  # uniform in [0, 1)
    if point < experiment.holdout:
        return HOLDOUT
    share = (point - experiment.holdout) / (1 - experiment.holdout)
    total = sum(variant.weight for variant in experiment.variants)
    edge = 0.0
    for variant in experiment.variants:
        edge += variant.weight / total
        if share < edge:
            return variant.id
    return experiment.variants[-1].id  # only float rounding at the very top lands here
