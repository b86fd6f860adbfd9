"""In-app messages as the page receives them, and who an open page is.

The WebSocket protocol (docs/delivery.md, "In-app messages") in three frames the server
sends: ``message`` (a message the page may show when its display rules hold), ``show``
(this tab won it: render it now) and ``drop`` (another tab showed it, or it is gone).
The page sends ``{"action": "sync"}`` once open and ``{"action": "ack", "fireId": ...}``
when it is ready to show one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from nudge.domain.messages import InAppDisplay
from nudge.domain.person import PersonId
from nudge.domain.timefmt import iso

__all__ = [
    "MAX_FRAME_BYTES",
    "InAppMessage",
    "SocketIdentity",
    "drop_frame",
    "frame_size_problem",
    "show_frame",
]

# API Gateway's WebSocket message payload limit (PostToConnection refuses more):
# https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html
MAX_FRAME_BYTES = 128 * 1024


@dataclass(frozen=True)
class InAppMessage:
    fire_id: str
    trigger: str
    html: str
    display: InAppDisplay
    expires_at: datetime

    def frame(self) -> str:
        return _frame(
            type="message",
            fireId=self.fire_id,
            trigger=self.trigger,
            html=self.html,
            display=self.display.model_dump(mode="json"),
            expiresAt=iso(self.expires_at),
        )


def show_frame(fire_id: str) -> str:
    return _frame(type="show", fireId=fire_id)


def drop_frame(fire_id: str) -> str:
    return _frame(type="drop", fireId=fire_id)


def frame_size_problem(frame: str) -> str | None:
    """Why API Gateway would refuse to post this frame, if it would."""
    size = len(frame.encode("utf-8"))
    if size <= MAX_FRAME_BYTES:
        return None
    return (
        f"the rendered in-app message is {size:,} bytes; a WebSocket message carries at most"
        f" {MAX_FRAME_BYTES:,} (API Gateway's limit)"
    )


def _frame(**fields: Any) -> str:
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class SocketIdentity:
    """Who an open page says it is: the SDK's userId and anonymousId, as beacons carry them.

    The person is the user when known (as for events); a message kept for the anonymous
    visitor they were is still theirs, so both identities are looked at for pending ones.
    """

    user_id: str | None
    anonymous_id: str | None

    @property
    def person(self) -> PersonId:
        return PersonId.of(self.user_id, self.anonymous_id)

    @property
    def persons(self) -> list[PersonId]:
        found = []
        if self.user_id:
            found.append(PersonId.user(self.user_id))
        if self.anonymous_id:
            found.append(PersonId.anonymous(self.anonymous_id))
        return found
