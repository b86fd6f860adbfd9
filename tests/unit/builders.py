"""What the unit tests share: a fixed receive time, request bytes and ready-made events."""

from __future__ import annotations

import gzip
import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from nudge.domain.intake import Event, Intake, Limits, parse_request

__all__ = ["NOW", "encode", "event", "gzipped", "parse", "track"]

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def encode(payload: object) -> bytes:
    return json.dumps(payload).encode()


def gzipped(payload: object) -> bytes:
    return gzip.compress(payload if isinstance(payload, bytes) else encode(payload))


def track(**fields: Any) -> dict[str, Any]:
    """A minimal valid track message; keyword arguments add or replace fields."""
    return {"userId": "user-1", "event": "Product Viewed", **fields}


def parse(
    payload: object,
    *,
    route: str = "track",
    content_encoding: str | None = None,
    received_at: datetime = NOW,
    limits: Limits = Limits(),  # noqa: B008 - frozen, safe as a default
) -> Intake:
    """parse_request with bytes passed through and anything else sent as JSON."""
    raw = payload if isinstance(payload, bytes) else encode(payload)
    counter = itertools.count(1)
    return parse_request(
        raw,
        route=route,
        content_encoding=content_encoding,
        received_at=received_at,
        new_id=lambda: f"generated-{next(counter)}",
        limits=limits,
    )


def event(
    kind: str = "track",
    *,
    minutes: float = 0,
    name: str | None = None,
    user_id: str | None = "user-1",
    anonymous_id: str | None = None,
    **body: Any,
) -> Event:
    """An accepted event ``minutes`` after NOW, built directly, as intake would return it."""
    at = NOW + timedelta(minutes=minutes)
    fields: dict[str, Any] = {"type": kind, **body}
    if name is not None:
        fields["event" if kind == "track" else "name"] = name
    return Event(
        message_id=f"m-{kind}-{minutes}-{name}",
        type=kind,
        user_id=user_id,
        anonymous_id=anonymous_id,
        timestamp=at,
        received_at=at,
        body=fields,
    )
