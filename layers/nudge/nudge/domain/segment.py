"""Segment's message types, as its HTTP Tracking API accepts them.

Field names stay in Segment's camelCase so that analytics.js, analytics-python and
RudderStack clients work unchanged. Unknown top-level fields are kept, not rejected:
clients add their own (``_metadata``, ``version``) and Segment tolerates them too.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

# pydantic's names from the modules that define them: ``from pydantic import`` loads
# them through importlib, which -X importtime bills to this module (bench/imports.py).
from pydantic.config import ConfigDict
from pydantic.fields import Field
from pydantic.functional_validators import BeforeValidator, model_validator
from pydantic.main import BaseModel
from pydantic_core import PydanticCustomError

__all__ = [
    "MESSAGE_TYPES",
    "NO_IDENTITY",
    "Alias",
    "Group",
    "Identify",
    "Message",
    "Page",
    "Screen",
    "Track",
    "parse_iso_timestamp",
]


def parse_iso_timestamp(value: object) -> datetime:
    """ISO 8601 only (Segment's rule); a timestamp without an offset is taken as UTC."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError("must be an ISO 8601 date-time such as 2026-11-28T12:00:00Z") from None
    else:
        raise ValueError("must be an ISO 8601 date-time string")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _id_string(value: object) -> object:
    """Some clients send numeric ids; Segment stores them as strings."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return str(value)
    return value


Timestamp = Annotated[datetime, BeforeValidator(parse_iso_timestamp)]
IdString = Annotated[str, BeforeValidator(_id_string), Field(min_length=1, max_length=512)]
JsonObject = dict[str, Any]


# The error type (not its text) by which intake names userId as the field to blame.
NO_IDENTITY = "identity_missing"


# Building a model's validator is most of what importing this module costs, so a model is
# built when it first validates (defer_build), except those nearly every request carries:
# Track, Identify and Page are built at import, for Ingest's and Track's cold start.
_BUILT_AT_IMPORT = ConfigDict(defer_build=False)


class _Common(BaseModel):
    model_config = ConfigDict(
        extra="allow", populate_by_name=True, str_strip_whitespace=False, defer_build=True
    )

    type: str
    messageId: IdString | None = None  # noqa: N815 - Segment's wire name
    userId: IdString | None = None  # noqa: N815
    anonymousId: IdString | None = None  # noqa: N815
    timestamp: Timestamp | None = None
    originalTimestamp: Timestamp | None = None  # noqa: N815
    sentAt: Timestamp | None = None  # noqa: N815
    context: JsonObject = Field(default_factory=dict)
    integrations: JsonObject = Field(default_factory=dict)

    @model_validator(mode="after")
    def _someone_did_it(self) -> _Common:
        if not self.userId and not self.anonymousId:
            raise PydanticCustomError(NO_IDENTITY, "either userId or anonymousId is required")
        return self

    @property
    def client_timestamp(self) -> datetime | None:
        """When the client says it happened; analytics.js names it originalTimestamp."""
        return self.timestamp or self.originalTimestamp


class Track(_Common):
    model_config = _BUILT_AT_IMPORT

    type: Literal["track"] = "track"
    event: Annotated[str, Field(min_length=1, max_length=512)]
    properties: JsonObject = Field(default_factory=dict)


class Identify(_Common):
    model_config = _BUILT_AT_IMPORT

    type: Literal["identify"] = "identify"
    traits: JsonObject = Field(default_factory=dict)


class Page(_Common):
    model_config = _BUILT_AT_IMPORT

    type: Literal["page"] = "page"
    name: str | None = None
    category: str | None = None
    properties: JsonObject = Field(default_factory=dict)


class Screen(_Common):
    type: Literal["screen"] = "screen"
    name: str | None = None
    category: str | None = None
    properties: JsonObject = Field(default_factory=dict)


class Group(_Common):
    type: Literal["group"] = "group"
    groupId: IdString  # noqa: N815
    traits: JsonObject = Field(default_factory=dict)


class Alias(_Common):
    type: Literal["alias"] = "alias"
    previousId: IdString  # noqa: N815
    userId: IdString  # noqa: N815 - alias requires the new id


Message = Track | Identify | Page | Screen | Group | Alias

MESSAGE_TYPES: dict[str, type[_Common]] = {
    "track": Track,
    "identify": Identify,
    "page": Page,
    "screen": Screen,
    "group": Group,
    "alias": Alias,
}
