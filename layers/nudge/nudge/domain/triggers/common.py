"""What the trigger language's models share: strict models, durations, windows, paths."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, WithJsonSchema

from nudge.domain.durations import parse_duration

__all__ = [
    "ID_PATTERN",
    "MAX_WINDOW",
    "PATH_ROOTS",
    "Duration",
    "Path",
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
