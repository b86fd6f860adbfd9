"""Accept a beacon request: authenticate, validate, resolve identity, store."""

from __future__ import annotations

import base64
import binascii
import hmac
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from nudge.config import Settings
from nudge.domain.errors import Unauthorized
from nudge.domain.intake import Event, Payload, StoredEvent, normalize, read_payload
from nudge.domain.person import PersonId
from nudge.service.ports import EventWriter

__all__ = ["Accepted", "BeaconRequest", "IngestService"]


@dataclass(frozen=True)
class BeaconRequest:
    route: str
    body: bytes
    headers: Mapping[str, str]  # lower-case names, as API Gateway v2 delivers them
    query: Mapping[str, str]
    received_at: datetime


@dataclass(frozen=True)
class Accepted:
    events: int
    write_requests: int


class IngestService:
    def __init__(
        self,
        store: EventWriter,
        settings: Settings,
        new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        self._store = store
        self._settings = settings
        self._new_id = new_id

    def accept(self, request: BeaconRequest) -> Accepted:
        # A bad Authorization header is refused before the body is even read.
        header_key = _key_from_authorization(request.headers.get("authorization"))
        if header_key is not None:
            self._check_key(header_key, "Authorization")
        limits = self._settings.limits
        payload = read_payload(
            request.body,
            route=request.route,
            content_encoding=request.headers.get("content-encoding"),
            limits=limits,
        )
        if payload.dropped:
            return Accepted(events=0, write_requests=0)
        if header_key is None:
            self._check_body_or_query_key(payload, request.query)
        events = normalize(
            payload, received_at=request.received_at, new_id=self._new_id, limits=limits
        )
        return self._store_events(events)

    def _check_body_or_query_key(self, payload: Payload, query: Mapping[str, str]) -> None:
        if payload.write_key is not None:
            self._check_key(payload.write_key, "writeKey")
        elif "writeKey" in query:
            self._check_key(query["writeKey"], "writeKey")
        else:
            raise Unauthorized(
                "Authorization",
                "missing write key: send HTTP Basic auth base64('<writeKey>:'), "
                "a writeKey field in the body, or a writeKey query parameter",
            )

    def _check_key(self, candidate: str, field: str) -> None:
        # Compare against every key in constant time so timing reveals nothing.
        matches = [
            hmac.compare_digest(candidate.encode(), key.encode())
            for key in self._settings.write_keys
        ]
        if not any(matches):
            raise Unauthorized(field, "write key not recognised")

    def _store_events(self, events: list[Event]) -> Accepted:
        anonymous_ids = {event.anonymous_id for event in events if event.anonymous_id}
        anonymous_ids |= {
            event.previous_id for event in events if event.type == "alias" and event.previous_id
        }
        known_links = self._store.linked_users(anonymous_ids) if anonymous_ids else {}
        new_links = _links_declared(events, known_links)
        links = {**known_links, **new_links}
        stored = [StoredEvent(person=_person(event, links), event=event) for event in events]
        requests = self._store.put_events(stored, new_links, self._settings.retention)
        return Accepted(events=len(stored), write_requests=requests)


def _key_from_authorization(header: str | None) -> str | None:
    """Segment's scheme: HTTP Basic with the write key as user name and no password."""
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic" or not token.strip():
        raise Unauthorized("Authorization", "must be 'Basic ' followed by base64('<writeKey>:')")
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthorized("Authorization", "the Basic credentials are not valid base64") from None
    return decoded.partition(":")[0]


def _links_declared(events: list[Event], known: Mapping[str, str]) -> dict[str, str]:
    """anonymousId -> userId pairs these events declare that the table does not know yet."""
    declared: dict[str, str] = {}
    for event in events:
        if event.user_id and event.anonymous_id:
            declared[event.anonymous_id] = event.user_id
        if event.type == "alias" and event.previous_id and event.user_id:
            declared[event.previous_id] = event.user_id
    return {anon: user for anon, user in declared.items() if known.get(anon) != user}


def _person(event: Event, links: Mapping[str, str]) -> PersonId:
    if event.user_id:
        return PersonId.user(event.user_id)
    linked_user = links.get(event.anonymous_id or "")
    return PersonId.of(linked_user, event.anonymous_id)
