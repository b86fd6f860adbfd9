"""From the bytes of a beacon request to validated, normalised events.

Everything here is pure: the receive time and the id factory are passed in, so the
same code serves the Lambda, the backtest and the tests.
"""

from __future__ import annotations

import gzip
import json
import math
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from nudge.domain.errors import InvalidRequest, NotFound, PayloadTooLarge
from nudge.domain.person import PersonId
from nudge.domain.timefmt import iso

if TYPE_CHECKING:
    from pydantic import ValidationError

__all__ = [
    "ROUTE_TYPES",
    "Event",
    "Intake",
    "Limits",
    "Payload",
    "StoredEvent",
    "normalize",
    "parse_request",
    "read_payload",
]

# Segment's long routes, analytics.js's one-letter routes, and import (an alias of batch).
ROUTE_TYPES: dict[str, str] = {
    "track": "track", "t": "track",
    "identify": "identify", "i": "identify",
    "page": "page", "p": "page",
    "screen": "screen", "s": "screen",
    "group": "group", "g": "group",
    "alias": "alias", "a": "alias",
    "batch": "batch", "b": "batch", "import": "batch",
}  # fmt: skip
# analytics.js reports its own delivery metrics here; accepted so it stops retrying, not stored.
METRICS_ROUTE = "m"


@dataclass(frozen=True)
class Limits:
    """Segment's published limits, plus the bounds Segment leaves to the receiver."""

    max_message_bytes: int = 32 * 1024
    max_batch_bytes: int = 500 * 1024
    max_batch_items: int = 2500
    # DynamoDB nests at most 32 levels; a client never needs more than a handful.
    max_depth: int = 24
    max_past: timedelta = timedelta(days=30)
    max_future: timedelta = timedelta(hours=1)


@dataclass(frozen=True)
class Event:
    """One accepted message, with its time corrected and its id settled."""

    message_id: str
    type: str
    user_id: str | None
    anonymous_id: str | None
    timestamp: datetime
    received_at: datetime
    body: dict[str, Any]
    # The timestamp as timefmt.iso writes it, what the profile keeps: worked out once, by
    # intake (which writes it into the body too) or else here, not again on every fold. A
    # copy with another timestamp (dataclasses.replace) passes moment="" to have it redone.
    moment: str = field(default="", repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.moment:
            object.__setattr__(self, "moment", iso(self.timestamp))

    @property
    def name(self) -> str | None:
        """The track event's name, or the page or screen name."""
        value = self.body.get("event") if self.type == "track" else self.body.get("name")
        return value if isinstance(value, str) else None

    @property
    def previous_id(self) -> str | None:
        value = self.body.get("previousId")
        return value if isinstance(value, str) else None


@dataclass(frozen=True)
class StoredEvent:
    """An accepted event under the person whose partition holds it."""

    person: PersonId
    event: Event
    # The messageId of the item that holds it, when it shares one with the other events of
    # its request (None: its own).
    item_id: str | None = None


@dataclass(frozen=True)
class Intake:
    """A request's events, ready to store, and the write key its body carried."""

    events: list[Event]
    write_key: str | None = None
    dropped: bool = False  # client metrics (/v1/m): accepted and intentionally not stored


@dataclass(frozen=True)
class Payload:
    """A request body read and checked as JSON, its messages not yet validated.

    Reading and validating are two steps so that the write key in a body can be checked
    before anyone without it learns anything from validation errors.
    """

    route_type: str | None  # None: client metrics, accepted and dropped
    document: dict[str, Any] = field(default_factory=dict)
    write_key: str | None = None

    @property
    def dropped(self) -> bool:
        return self.route_type is None


def parse_request(
    raw: bytes,
    *,
    route: str,
    content_encoding: str | None,
    received_at: datetime,
    new_id: Callable[[], str],
    limits: Limits = Limits(),
) -> Intake:
    """Both steps at once; any invalid message rejects the request whole."""
    payload = read_payload(raw, route=route, content_encoding=content_encoding, limits=limits)
    if payload.dropped:
        return Intake(events=[], dropped=True)
    events = normalize(payload, received_at=received_at, new_id=new_id, limits=limits)
    return Intake(events=events, write_key=payload.write_key)


def read_payload(
    raw: bytes,
    *,
    route: str,
    content_encoding: str | None,
    limits: Limits = Limits(),
) -> Payload:
    if route == METRICS_ROUTE:
        return Payload(route_type=None)
    route_type = ROUTE_TYPES.get(route)
    if route_type is None:
        raise NotFound(
            "path", f"unknown route /v1/{route}; expected one of {', '.join(ROUTE_TYPES)}"
        )
    body = _decompress(raw, content_encoding, limits.max_batch_bytes)
    size_limit = limits.max_batch_bytes if route_type == "batch" else limits.max_message_bytes
    if len(body) > size_limit:
        raise PayloadTooLarge("body", f"{len(body)} bytes; at most {size_limit} accepted")
    document = _parse_object(body, limits.max_depth)
    write_key = document.pop("writeKey", None)
    if write_key is not None and not isinstance(write_key, str):
        raise InvalidRequest("writeKey", "must be a string")
    return Payload(route_type=route_type, document=document, write_key=write_key)


def normalize(
    payload: Payload,
    *,
    received_at: datetime,
    new_id: Callable[[], str],
    limits: Limits = Limits(),
) -> list[Event]:
    """Every message validated, timestamped and identified, or the first problem raised."""
    if payload.route_type is None:
        return []
    items, shared = _split(payload.document, payload.route_type, limits)
    return [_normalize(item, path, shared, received_at, new_id, limits) for path, item in items]


def _decompress(raw: bytes, content_encoding: str | None, max_bytes: int) -> bytes:
    encoding = (content_encoding or "").strip().lower()
    if encoding in ("", "identity"):
        return raw
    if encoding != "gzip":
        raise InvalidRequest("Content-Encoding", f"{encoding!r} is not supported; use gzip")
    # Read at most one byte past the limit, so a gzip bomb costs no more than the limit.
    try:
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        body = inflater.decompress(raw, max_bytes + 1)
        if not inflater.eof and len(body) <= max_bytes:
            raise InvalidRequest("body", "gzip stream is truncated")
    except (zlib.error, gzip.BadGzipFile, EOFError):
        raise InvalidRequest("body", "Content-Encoding is gzip but the body is not gzip") from None
    if len(body) > max_bytes:
        raise PayloadTooLarge("body", f"decompressed body over {max_bytes} bytes")
    return body


def _parse_object(body: bytes, max_depth: int) -> dict[str, Any]:
    if not body.strip():
        raise InvalidRequest("body", "empty body; send a JSON object")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidRequest(
            "body", f"not valid UTF-8 (byte 0x{body[error.start]:02x} at offset {error.start})"
        ) from None
    try:
        payload = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except _NonFiniteNumber as error:
        raise InvalidRequest(
            "body", f"{error} is not a JSON number (NaN and infinities are not)"
        ) from None
    except RecursionError:
        raise InvalidRequest("body", f"nested deeper than {max_depth} levels") from None
    except json.JSONDecodeError as error:
        raise InvalidRequest(
            "body", f"malformed JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    except ValueError as error:
        # json.loads raises a bare ValueError for an integer literal over 4,300 digits.
        raise InvalidRequest("body", f"malformed JSON: {error}") from None
    if not isinstance(payload, dict):
        raise InvalidRequest("body", f"must be a JSON object, not {_json_kind(payload)}")
    _check_values(payload, "", max_depth)
    return payload


class _NonFiniteNumber(ValueError):
    pass


def _refuse_constant(name: str) -> float:
    """Python's json accepts NaN and Infinity; JSON does not, and DynamoDB cannot store them."""
    raise _NonFiniteNumber(name)


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise _NonFiniteNumber(text[:40])
    return number


def _json_kind(value: object) -> str:
    kinds = {list: "an array", str: "a string", int: "a number", float: "a number"}
    return "null" if value is None else kinds.get(type(value), type(value).__name__)


def _check_values(root: dict[str, Any], root_path: str, max_depth: int) -> None:
    """Depth, NUL characters and lone surrogates, found without recursion."""
    stack: list[tuple[object, str, int]] = [(root, root_path, 1)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > max_depth:
                raise InvalidRequest(path or "body", f"nested deeper than {max_depth} levels")
            stack.extend(
                (child, child_path, depth + 1) for child_path, child in _children(value, path)
            )
        elif isinstance(value, str):
            _check_string(value, path)


def _children(value: dict[str, Any] | list[Any], path: str) -> Iterator[tuple[str, object]]:
    if isinstance(value, list):
        for index, child in enumerate(value):
            yield f"{path}[{index}]", child
        return
    for key, child in value.items():
        child_path = f"{path}.{key}" if path else key
        _check_string(key, child_path)
        yield child_path, child


def _check_string(text: str, path: str) -> None:
    if "\x00" in text:
        raise InvalidRequest(_printable(path), "contains a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRequest(
            _printable(path), "contains an unpaired UTF-16 surrogate (not valid Unicode)"
        ) from None


def _printable(path: str) -> str:
    """A field path that can be encoded in the error response even when a key is the problem."""
    return path.encode("utf-8", "backslashreplace").decode("utf-8")


def _split(
    payload: dict[str, Any], route_type: str, limits: Limits
) -> tuple[list[tuple[str, dict[str, Any]]], dict[str, Any]]:
    """The messages of the request with their error paths, and the batch-level fields."""
    if route_type != "batch":
        return [("", {**payload, "type": route_type})], {}
    batch = payload.get("batch")
    if not isinstance(batch, list):
        raise InvalidRequest("batch", "required, and must be an array of messages")
    if not batch:
        raise InvalidRequest("batch", "is empty; send at least one message")
    if len(batch) > limits.max_batch_items:
        raise PayloadTooLarge("batch", f"{len(batch)} items; at most {limits.max_batch_items}")
    shared: dict[str, Any] = {
        key: payload[key] for key in ("context", "integrations", "sentAt") if key in payload
    }
    items: list[tuple[str, dict[str, Any]]] = []
    for index, item in enumerate(batch):
        path = f"batch[{index}]"
        if not isinstance(item, dict):
            raise InvalidRequest(path, f"must be a JSON object, not {_json_kind(item)}")
        size = len(json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode())
        if size > limits.max_message_bytes:
            raise PayloadTooLarge(path, f"{size} bytes; at most {limits.max_message_bytes}")
        # A client that puts the key in each message must not have it stored with them.
        item.pop("writeKey", None)
        items.append((path, item))
    return items, shared


def _normalize(
    item: dict[str, Any],
    path: str,
    shared: dict[str, Any],
    received_at: datetime,
    new_id: Callable[[], str],
    limits: Limits,
) -> Event:
    # Segment's models (pydantic) load with the first message parsed: of the functions,
    # only Ingest parses messages; the others import this module for Event and Limits.
    from pydantic import ValidationError

    from nudge.domain.segment import MESSAGE_TYPES

    merged = _merge_batch_fields(item, shared)
    kind = merged.get("type")
    model = MESSAGE_TYPES.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise InvalidRequest(
            _join(path, "type"),
            f"unknown message type {kind!r}; expected one of {', '.join(MESSAGE_TYPES)}",
        )
    try:
        message = model.model_validate(merged)
    except ValidationError as error:
        raise _as_invalid(error, path) from None
    try:
        timestamp = _corrected_timestamp(message.client_timestamp, message.sentAt, received_at)
        original = iso(message.client_timestamp) if message.client_timestamp else None
        sent_at = iso(message.sentAt) if message.sentAt else None
    except OverflowError:
        # Dates near year 1 or 9999 leave datetime's range once corrected or moved to UTC.
        raise InvalidRequest(_join(path, "timestamp"), "out of the representable range") from None
    _check_skew(timestamp, received_at, _join(path, "timestamp"), limits)
    body = message.model_dump(mode="json", exclude_none=True)
    for optional in ("context", "integrations"):
        if not body.get(optional):
            body.pop(optional, None)  # stored bytes are billed; an empty map says nothing
    message_id = message.messageId or new_id()
    moment = iso(timestamp)
    body.update(messageId=message_id, timestamp=moment, receivedAt=iso(received_at))
    if original is not None:
        body["originalTimestamp"] = original
    if sent_at is not None:
        body["sentAt"] = sent_at
    return Event(
        message_id=message_id,
        type=message.type,
        user_id=message.userId,
        anonymous_id=message.anonymousId,
        timestamp=timestamp,
        received_at=received_at,
        body=body,
        moment=moment,
    )


def _merge_batch_fields(item: dict[str, Any], shared: dict[str, Any]) -> dict[str, Any]:
    """Batch-level context and integrations apply to every item; the item's own keys win."""
    merged = dict(item)
    for key in ("context", "integrations"):
        if isinstance(shared.get(key), dict):
            own_value = item.get(key)
            own: dict[str, Any] = own_value if isinstance(own_value, dict) else {}
            merged[key] = {**shared[key], **own}
    if "sentAt" not in merged and "sentAt" in shared:
        merged["sentAt"] = shared["sentAt"]
    return merged


def _corrected_timestamp(
    client_timestamp: datetime | None, sent_at: datetime | None, received_at: datetime
) -> datetime:
    """Segment's rule: the client's clock may be wrong, but its intervals are right."""
    if client_timestamp is None:
        return received_at
    if sent_at is None:
        return client_timestamp
    return received_at - (sent_at - client_timestamp)


def _check_skew(timestamp: datetime, received_at: datetime, path: str, limits: Limits) -> None:
    if timestamp < received_at - limits.max_past:
        too_old = _describe(received_at - timestamp)
        raise InvalidRequest(
            path, f"{too_old} in the past; at most {_describe(limits.max_past)} accepted"
        )
    if timestamp > received_at + limits.max_future:
        too_new = _describe(timestamp - received_at)
        raise InvalidRequest(
            path, f"{too_new} in the future; at most {_describe(limits.max_future)} accepted"
        )


def _describe(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds} seconds"


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


_FRIENDLY = {
    "missing": "is required",
    "string_type": "must be a string",
    "dict_type": "must be a JSON object",
    "string_too_short": "must not be empty",
    "too_short": "must not be empty",
    "string_too_long": "is too long",
}


def _as_invalid(error: ValidationError, path: str) -> InvalidRequest:
    from nudge.domain.segment import NO_IDENTITY  # loaded already: _normalize imported it

    first = error.errors()[0]
    location = ".".join(str(part) for part in first["loc"])
    reason = _FRIENDLY.get(first["type"]) or first["msg"].removeprefix("Value error, ")
    if first["type"] == NO_IDENTITY:
        location = "userId"
    if first["type"] == "missing" and location == "event":
        reason = "is required for track"
    return InvalidRequest(_join(path, location) if location else (path or "body"), reason)
