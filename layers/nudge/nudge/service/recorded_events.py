"""Recorded events read back as the live path stored them: Segment messages (a file, one a
line, or ``{"batch": [...]}``) or items of the events table, its export or ``every_event``.

The backtest replays what this reads, and training (``nudge train``, the Train function)
learns from it. Its own module so that Train, which needs the reading and not the replay,
does not load the trigger engine at cold start (bench/README.md, issue #13).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any

from nudge.adapters import keys
from nudge.domain.errors import InvalidRequest
from nudge.domain.intake import Event, Limits, Payload, normalize
from nudge.domain.person import PersonId
from nudge.domain.predictions.sample import PeopleSample
from nudge.domain.segment import parse_iso_timestamp

__all__ = ["read_events", "read_items"]

# Recorded events are read whatever their age: the live path's bounds on a message's
# timestamp apply when it arrives, not when it is read back.
_OPEN_LIMITS = Limits(max_past=timedelta(days=365 * 100), max_future=timedelta(days=365 * 100))


def read_events(
    lines: Iterable[str], sample: PeopleSample | None = None
) -> tuple[list[Event], list[str]]:
    """Segment messages (one per line, or {"batch": [...]}) or items exported from the table.
    With ``sample``, only the events of the people it keeps (``nudge train --people``)."""
    numbered = ((f"line {number}", line) for number, line in enumerate(lines, start=1))
    return _read(((place, line) for place, line in numbered if line.strip()), sample)


def read_items(
    items: Iterable[Mapping[str, Any]], sample: PeopleSample | None = None
) -> tuple[list[Event], list[str]]:
    """Items read from the table (``EventStore.every_event``), as ``read_events`` reads the
    same items exported to a file, line by line: so training from the table and from its
    export see the same events."""
    return _read(((f"item {number}", item) for number, item in enumerate(items, start=1)), sample)


def _read(
    entries: Iterable[tuple[str, str | Mapping[str, Any]]], sample: PeopleSample | None = None
) -> tuple[list[Event], list[str]]:
    # By the person they are stored under, so that one pushed out of the sample leaves with
    # every event kept for them. A person is chosen before their message is normalized:
    # that is most of reading's time, and most people are not in a sample.
    kept: dict[str, list[tuple[int, Event]]] = defaultdict(list)
    skipped: list[str] = []
    count = 0
    for place, entry in entries:
        try:
            document = json.loads(entry) if isinstance(entry, str) else dict(entry)
            messages = _messages(document)
            users = _users_of(document, messages)
            for message in messages:
                person = _stored_under(message, users)
                if sample is not None:
                    admitted, out = sample.admit(person)
                    kept.pop(out or "", None)
                    if not admitted:
                        continue
                kept[person].append((count, _stored_as(_event(message, count), users)))
                count += 1
        except (ValueError, InvalidRequest) as error:
            skipped.append(f"{place}: {error}")
    # In time order, ties in the order read (as a sort of the whole stream would leave them).
    read = sorted(
        (pair for person_events in kept.values() for pair in person_events),
        key=lambda pair: (pair[1].timestamp, pair[0]),
    )
    return [event for _, event in read], skipped


def _stored_under(message: Mapping[str, Any], users: Mapping[str, str]) -> str:
    """The id of the person Ingest stores the message under (as ``_stored_as`` resolves it)."""
    anonymous = str(message.get("anonymousId") or "")
    return str(message.get("userId") or users.get(anonymous) or anonymous)


def _messages(document: Any) -> list[dict[str, Any]]:
    if isinstance(document, dict) and isinstance(document.get("body"), str):
        return [json.loads(document["body"])]  # an item exported from the table
    if isinstance(document, dict) and isinstance(document.get("batch"), list):
        return list(document["batch"])
    if isinstance(document, dict):
        return [document]
    raise ValueError("not a JSON object")


def _users_of(document: Any, messages: Sequence[dict[str, Any]]) -> dict[str, str]:
    """anonymousId -> userId as Ingest resolves a request's messages: the links the request
    declares apply to all of its messages, also to those sent before the one declaring it
    (a page viewed, then a login, in one batch: both stored under the user). An item
    exported from the table says where Ingest stored it: its partition's user."""
    users = {
        str(message["anonymousId"]): str(message["userId"])
        for message in messages
        if message.get("userId") and message.get("anonymousId")
    }
    stored_under = _partition(document)
    if stored_under is not None and not stored_under.is_anonymous:
        users.update(
            {str(m["anonymousId"]): stored_under.value for m in messages if m.get("anonymousId")}
        )
    return users


def _partition(document: Any) -> PersonId | None:
    """The person whose partition an exported item came from; None for a Segment message."""
    partition = document.get("pk") if isinstance(document, dict) else None
    if not isinstance(partition, str):
        return None
    try:
        return keys.person_from_pk(partition)
    except ValueError:
        return None


def _stored_as(event: Event, users: dict[str, str]) -> Event:
    """The event as the person Ingest stored it under: an anonymous message of a linked
    visitor is the user's (its body stays as sent)."""
    user = users.get(event.anonymous_id or "") if event.user_id is None else None
    return replace(event, user_id=user) if user else event


def _event(message: dict[str, Any], number: int) -> Event:
    moment = (
        message.get("timestamp") or message.get("originalTimestamp") or message.get("receivedAt")
    )
    if moment is None:
        raise ValueError("no timestamp")
    received = parse_iso_timestamp(moment)
    message = {key: value for key, value in message.items() if key != "sentAt"}
    payload = Payload(route_type=str(message.get("type", "track")), document=message)
    return normalize(
        payload, received_at=received, new_id=lambda: f"replay-{number}", limits=_OPEN_LIMITS
    )[0]
