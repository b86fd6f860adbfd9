"""Prediction definitions as users write them in ``predictions/*.yaml``.

A prediction says what happens in the horizon after a cut-off (the label: the person goes
quiet, or does an event), who is scored (the audience, in the trigger language), and from
what (features: profile facts and counts of events in a window, as of the cut-off).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

# pydantic's names from the modules that define them: ``from pydantic import`` loads
# them through importlib, which -X importtime bills to this module (bench/imports.py).
from pydantic.fields import Field
from pydantic.functional_validators import AfterValidator, field_validator
from pydantic.types import Discriminator, Tag

from nudge.domain.triggers.common import (
    ID_PATTERN,
    MAX_WINDOW,
    Duration,
    Strict,
    in_range,
    words,
)
from nudge.domain.triggers.condition_model import Condition

__all__ = [
    "DEFAULT_FEATURES",
    "MAX_HORIZON",
    "PROFILE_FEATURES",
    "CountFeature",
    "EventLabel",
    "Feature",
    "InactiveLabel",
    "Prediction",
    "feature_name",
]

MIN_HORIZON = timedelta(hours=1)
MAX_HORIZON = MAX_WINDOW  # a label needs the events of its horizon, and they are kept 90 days
# Profile facts a feature may name: numbers, or moments (first_seen, last_seen) read as the
# days between them and the cut-off. ``event_counts.<name>`` is the lifetime count of an event.
PROFILE_FEATURES = (
    "days_inactive",
    "sessions",
    "events",
    "pages",
    "session_pages",
    "session_events",
    "last_session_pages",
    "first_seen",
    "last_seen",
)
COUNTS_PREFIX = "profile.event_counts."


def _horizon(value: timedelta) -> timedelta:
    return in_range(value, MIN_HORIZON, MAX_HORIZON)


Horizon = Annotated[Duration, AfterValidator(_horizon)]


class InactiveLabel(Strict):
    """Positive when the person sends no event at all in the horizon (churn)."""

    inactive: Horizon

    @property
    def horizon(self) -> timedelta:
        return self.inactive


class EventLabel(Strict):
    """Positive when the person does this event within the horizon (a purchase)."""

    event: Annotated[str, Field(min_length=1, max_length=512)]
    within: Horizon

    @property
    def horizon(self) -> timedelta:
        return self.within


def _label_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "inactive" if "inactive" in value else "event"
    return "inactive" if isinstance(value, InactiveLabel) else "event"


Label = Annotated[
    Annotated[InactiveLabel, Tag("inactive")] | Annotated[EventLabel, Tag("event")],
    Discriminator(_label_kind),
]


def _profile_feature(path: str) -> str:
    if path.startswith(COUNTS_PREFIX) and len(path) > len(COUNTS_PREFIX):
        return path
    root, _, name = path.partition(".")
    if root != "profile" or name not in PROFILE_FEATURES:
        raise ValueError(
            f"{path!r} is not a feature; use profile.<{'|'.join(PROFILE_FEATURES)}>, "
            "profile.event_counts.<event> or {count: <event>, within: <duration>}"
        )
    return path


ProfileFeature = Annotated[str, AfterValidator(_profile_feature)]


class CountFeature(Strict):
    """How many times the person did an event in the window before the cut-off."""

    count: Annotated[str, Field(min_length=1, max_length=512)]
    within: Duration

    @field_validator("within")
    @classmethod
    def _in_range(cls, value: timedelta) -> timedelta:
        return in_range(value, timedelta(minutes=1), MAX_WINDOW)


def _feature_kind(value: Any) -> str:
    return "count_feature" if isinstance(value, dict | CountFeature) else "profile_feature"


# Tagged, so that a bad feature gets the one message of the kind it was written as.
Feature = Annotated[
    Annotated[ProfileFeature, Tag("profile_feature")]
    | Annotated[CountFeature, Tag("count_feature")],
    Discriminator(_feature_kind),
]
Features = Annotated[
    Annotated[Literal["default"], Tag("default")]
    | Annotated[list[Feature], Field(min_length=1), Tag("list")],
    Discriminator(lambda value: "list" if isinstance(value, list) else "default"),
]

# The built-in set: recency, frequency, depth and what happened to carts, as the profile
# and the recent event history tell them (docs/predictions.md explains each).
DEFAULT_FEATURES: tuple[Feature, ...] = (
    "profile.days_inactive",
    "profile.first_seen",
    "profile.sessions",
    "profile.events",
    "profile.pages",
    "profile.last_session_pages",
    "profile.session_pages",
    "profile.event_counts.Product Added",
    "profile.event_counts.Order Completed",
    CountFeature(count="page", within=timedelta(days=7)),
    CountFeature(count="page", within=timedelta(days=28)),
    CountFeature(count="Product Added", within=timedelta(days=7)),
    CountFeature(count="Checkout Started", within=timedelta(days=7)),
    CountFeature(count="Order Completed", within=timedelta(days=28)),
)


def feature_name(feature: Feature) -> str:
    """The name a feature goes by in the artefact and the reports."""
    if isinstance(feature, CountFeature):
        return f"count({feature.count}, {words(feature.within)})"
    return feature


class Prediction(Strict):
    id: Annotated[str, Field(pattern=ID_PATTERN)]
    description: str | None = None
    label: Label
    audience: Condition | None = None
    features: Features = "default"

    @property
    def horizon(self) -> timedelta:
        return self.label.horizon

    @property
    def feature_list(self) -> tuple[Feature, ...]:
        return DEFAULT_FEATURES if self.features == "default" else tuple(self.features)
