"""What the trigger language's models share: strict models, durations, windows, paths."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

# pydantic's names from the modules that define them: ``from pydantic import`` loads
# them through importlib, which -X importtime bills to this module (bench/imports.py).
from pydantic.config import ConfigDict
from pydantic.functional_validators import AfterValidator, BeforeValidator
from pydantic.json_schema import WithJsonSchema
from pydantic.main import BaseModel

from nudge.domain.durations import parse_duration

__all__ = [
    "ID_PATTERN",
    "MAX_WINDOW",
    "PATH_ROOTS",
    "ClockTime",
    "Duration",
    "Path",
    "SendTime",
    "Strict",
    "Window",
    "in_range",
    "words",
]

PATH_ROOTS = (
    "properties",
    "traits",
    "profile",
    "context",
    "event",
    "type",
    "userId",
    "anonymousId",
)
_PATH = re.compile(r"^[A-Za-z_$][\w$-]*(\.([\w$ -]+|\d+))*$")
ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"
_ID = re.compile(ID_PATTERN)
MAX_WINDOW = timedelta(days=90)  # events older than the default retention are gone


def _duration(value: object) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str | int) and not isinstance(value, bool):
        return parse_duration(value)
    raise ValueError("must be a duration such as 30m, 24h or 7d")


_DURATION_SCHEMA = {
    "anyOf": [{"type": "string", "pattern": "^\\s*[0-9]+\\s*[smhdw]?\\s*$"}, {"type": "integer"}],
    "description": "A duration: 30s, 30m, 24h, 7d, 2w, or a number of seconds",
    "examples": ["30m", "24h", "7d"],
}
Duration = Annotated[timedelta, BeforeValidator(_duration), WithJsonSchema(_DURATION_SCHEMA)]

_CLOCK_TIME = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")


def _clock_time(value: object) -> str:
    if not isinstance(value, str) or not _CLOCK_TIME.match(value):
        raise ValueError(f"{value!r} is not a time of day: HH:MM, from 00:00 to 23:59")
    return value


_CLOCK_TIME_SCHEMA = {
    "type": "string",
    "pattern": _CLOCK_TIME.pattern,
    "description": "A time of day in the person's own zone, HH:MM (24-hour)",
    "examples": ["09:30", "18:00"],
}
# A local time of day, kept as its text ("09:30"): delivery reads it in each person's zone.
ClockTime = Annotated[str, BeforeValidator(_clock_time), WithJsonSchema(_CLOCK_TIME_SCHEMA)]


def _send_time(value: object) -> str:
    if value == "best":
        return value
    if not isinstance(value, str) or not _CLOCK_TIME.match(value):
        raise ValueError(
            f"{value!r} is neither a time of day (HH:MM, from 00:00 to 23:59) nor best"
        )
    return value


_SEND_TIME_SCHEMA = {
    "anyOf": [_CLOCK_TIME_SCHEMA, {"const": "best"}],
    "description": "When on the person's clock: a time of day (HH:MM), or best: the hour"
    " they most often engage, within `within`",
    "examples": ["09:30", "best"],
}
# `send.at`: a time of day, or "best" (the person's own best hour).
SendTime = Annotated[str, BeforeValidator(_send_time), WithJsonSchema(_SEND_TIME_SCHEMA)]


class Strict(BaseModel):
    # Built when first used (the loader's first Trigger.model_validate builds every model it
    # nests), not at import: Send and Feedback import the models without validating any.
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True, defer_build=True)


def _check_path(path: str) -> str:
    if not _PATH.match(path) or path.split(".")[0] not in PATH_ROOTS:
        raise ValueError(
            f"{path!r} is not a path; start with one of {', '.join(PATH_ROOTS)} "
            "and join names with dots (properties.cart_id, traits.tier, properties.items.0.sku)"
        )
    return path


Path = Annotated[str, AfterValidator(_check_path)]
# A window over stored events: at least a minute, at most the default retention.
Window = Annotated[
    Duration, AfterValidator(lambda value: in_range(value, timedelta(minutes=1), MAX_WINDOW))
]


def in_range(value: timedelta, low: timedelta, high: timedelta) -> timedelta:
    if not low <= value <= high:
        raise ValueError(f"{words(value)} is out of range ({words(low)} to {words(high)})")
    return value


def words(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
