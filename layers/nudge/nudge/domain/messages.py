"""The fire message: what Evaluate records and puts on the send queue, and what Send,
the email links and the previews read. One typed value, one schema, checked on read.

The wire form is the JSON it always was (camelCase keys: ``fireId``, ``firedAt`` ...),
plus ``version``. A message written before the field existed has none and reads as
version 1, so fires in flight during a deploy are delivered. A version newer than this
code knows is refused rather than half-read.
"""

# No ``from __future__ import annotations`` here: pydantic would then evaluate every field's
# annotation from its text (a compile each) when FireMessage is built, at cold start.

import json
from typing import Annotated, Any, Literal

# pydantic's names from the modules that define them: ``from pydantic import`` loads
# them through importlib, which -X importtime bills to this module (bench/imports.py).
from pydantic.config import ConfigDict
from pydantic.fields import Field
from pydantic.functional_serializers import PlainSerializer
from pydantic.functional_validators import BeforeValidator
from pydantic.main import BaseModel
from pydantic_core import ValidationError

from nudge.domain.fire_marks import FIRE_HEADER, FIRE_TAG
from nudge.domain.person import PersonId

__all__ = [
    "FIRE_HEADER",
    "FIRE_MESSAGE_VERSION",
    "FIRE_TAG",
    "Channel",
    "FireMessage",
    "InAppDisplay",
    "InvalidFireMessage",
]

FIRE_MESSAGE_VERSION = 1
Channel = Literal["email", "webhook", "in_app"]


# Left out of a fire's record when unset, so fires that do not use them keep their shape.
_CLOCK = "([01][0-9]|2[0-3]):[0-5][0-9]"  # HH:MM, as the trigger language writes it
_OPTIONAL_FIELDS = (
    "display",
    "expires",
    "sendAt",
    "sendWithin",
    "sendFallback",
    "deliverAt",
    "step",
)


class InvalidFireMessage(ValueError):
    """Text that is not a fire message this code can deliver."""


def _person(value: object) -> PersonId:
    return value if isinstance(value, PersonId) else PersonId.parse(str(value))


Person = Annotated[PersonId, BeforeValidator(_person), PlainSerializer(str, return_type=str)]


class InAppDisplay(BaseModel):
    """The trigger's display rules as the browser SDK reads them: seconds and percent."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    delay: float | None = None  # seconds after the page loaded
    scroll: float | None = None  # percent of the page scrolled, 0-100
    match: Literal["any", "all"] = "any"
    exclude: tuple[str, ...] = ()  # globs on location.pathname


class FireMessage(BaseModel):
    model_config = ConfigDict(
        frozen=True, populate_by_name=True, extra="ignore", arbitrary_types_allowed=True
    )

    version: Literal[1] = 1  # FIRE_MESSAGE_VERSION
    fire_id: str = Field(alias="fireId", min_length=1)
    trigger: str = Field(min_length=1)
    person: Person
    user_id: str | None = Field(default=None, alias="userId")
    anonymous_id: str | None = Field(default=None, alias="anonymousId")
    occurrence: str | None = None
    fired_at: str = Field(alias="firedAt")
    channel: Channel
    template: str = Field(min_length=1)
    event: dict[str, Any] = Field(default_factory=dict)  # the entry event, as stored
    context: dict[str, Any] = Field(default_factory=dict)  # what the trigger collected
    attempt: int = Field(default=0, ge=0)  # deliveries tried and re-queued so far
    variant: str | None = None  # the experiment arm, when the trigger runs one
    experiment: str | None = None  # the experiment's version, with the arm
    display: InAppDisplay | None = None  # in_app: when the page may show it
    expires: int | None = Field(default=None, ge=1)  # in_app: seconds it may wait for a page
    # The trigger's `send.at` ("09:30", or "best" with how long it may wait and the time
    # of day without history): delivery waits for the person's next 09:30 ...
    send_at: str | None = Field(default=None, alias="sendAt", pattern=f"^(best|{_CLOCK})$")
    send_within: int | None = Field(default=None, alias="sendWithin", ge=1)  # seconds
    send_fallback: str | None = Field(default=None, alias="sendFallback", pattern=f"^{_CLOCK}$")
    # ... which Send works out on the first delivery and keeps here while the fire waits.
    deliver_at: str | None = Field(default=None, alias="deliverAt")
    step: str | None = Field(default=None, pattern=r"^\d+(\.(then|else)\.\d+)*$")  # a journey's

    @property
    def cap_key(self) -> str:
        """What the contact policy's per-trigger cap and cooldown count: the trigger, or a
        journey's step (``cart_recovery_series/1``), so a journey's planned messages do not
        cap each other; the channel caps count them all."""
        return self.trigger if self.step is None else f"{self.trigger}/{self.step}"

    @classmethod
    def from_json(cls, text: str) -> "FireMessage":
        try:
            return cls.model_validate_json(text)
        except ValidationError as error:
            raise InvalidFireMessage(_first_problem(error)) from None

    def to_record(self) -> dict[str, Any]:
        """The JSON-ready form: queue bodies, the table's fire items, schedule inputs.
        The in-app fields appear only on in-app fires, so other fires keep their shape."""
        record = self.model_dump(mode="json", by_alias=True)
        for name in _OPTIONAL_FIELDS:
            if record.get(name) is None:
                record.pop(name, None)
        return record

    def to_json(self) -> str:
        return json.dumps(self.to_record(), separators=(",", ":"), ensure_ascii=False)

    def retried(self) -> "FireMessage":
        """The same fire, one more attempt along (re-queued after a failed delivery)."""
        return self.model_copy(update={"attempt": self.attempt + 1})

    def waiting_until(self, moment: str) -> "FireMessage":
        """The same fire, waiting for its `send.at` moment: not an attempt (no delivery was
        tried), so the retries a failure may need later are all still there."""
        return self.model_copy(update={"deliver_at": moment})

    @property
    def timezone(self) -> object:
        """The zone the entry event's context names, if any (the SDK sends it)."""
        return (self.event.get("context") or {}).get("timezone")


def _first_problem(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "body"
    if first["type"] == "json_invalid":
        return f"the body is not JSON ({first['msg']})"
    if first["type"] == "missing":
        return f"{where} missing"
    if where == "version":
        return f"version {first.get('input')!r} is not one this code reads ({FIRE_MESSAGE_VERSION})"
    return f"{where}: {first['msg']}"
