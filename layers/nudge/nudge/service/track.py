"""What a recipient's email links do: record opens and clicks, unsubscribe on request.

Every link carries a signed token (nudge.domain.tokens) naming the fire, person and
trigger it came from; nothing is recorded for a token that does not verify, or that was
signed for another kind of link. Opens and clicks become Segment track events in the
event table, so triggers and reports read them like any other event.

Opens and clicks are best effort: a reader's image or redirect is never held hostage to
a storage hiccup. An unsubscribe is not: it reports success only once it is stored.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

from nudge.config import Settings
from nudge.domain.engagement import CLICKED, OPENED
from nudge.domain.errors import TokenRefused
from nudge.domain.intake import Payload, StoredEvent, normalize
from nudge.domain.person import PersonId
from nudge.domain.timefmt import iso
from nudge.domain.tokens import (
    ClickClaims,
    InvalidToken,
    LinkClaims,
    LinkKind,
    OpenClaims,
    UnsubscribeClaims,
    read_link,
)
from nudge.service.ports import EventWriter, LinkEventRetries, SuppressionList, Unavailable

__all__ = [
    "CLICKED",
    "EMAIL_CHANNEL",
    "OPENED",
    "UNSUBSCRIBED",
    "Click",
    "TrackService",
    "Unsubscribe",
    "message_id_for",
]

UNSUBSCRIBED = "Unsubscribed"
EMAIL_CHANNEL = "email"
SUPPRESSION_REASON = "unsubscribe"

_EVENTS: dict[LinkKind, str] = {"open": OPENED, "click": CLICKED, "unsubscribe": UNSUBSCRIBED}
_Claims = TypeVar("_Claims", bound=LinkClaims)


@dataclass(frozen=True)
class Click:
    url: str
    recorded: bool


@dataclass(frozen=True)
class Unsubscribe:
    email: str
    newly_suppressed: bool = False


def message_id_for(token: str, kind: LinkKind) -> str:
    """The same link followed twice is one event: its id comes from the token itself."""
    # Hashed with the kind's initial (o, c, u), as ids always were: a link followed before
    # and after an upgrade is still one event.
    digest = hashlib.sha256(f"{kind[0]}:{token}".encode()).hexdigest()[:32]
    return f"email-{kind}-{digest}"


class TrackService:
    def __init__(
        self,
        events: EventWriter,
        suppressions: SuppressionList,
        settings: Settings,
        secret: bytes,
        retired: Sequence[bytes] = (),
        retries: LinkEventRetries | None = None,
    ) -> None:
        self._events = events
        self._suppressions = suppressions
        self._settings = settings
        self._retries = retries
        # The current key first: links signed before a rotation verify with a retired one.
        self._keys = (secret, *retired)

    def open(self, token: str, at: datetime, user_agent: str | None = None) -> bool:
        """Records the open; False when storage refused it (the pixel is served anyway)."""
        claims = self._verify(token, OpenClaims)
        return self._record_best_effort(token, claims, at, _sent(claims), user_agent)

    def click(self, token: str, at: datetime, user_agent: str | None = None) -> Click:
        claims = self._verify(token, ClickClaims)
        if not _is_web_url(claims.url):
            raise TokenRefused("token", "the link target is not an http(s) URL")
        recorded = self._record_best_effort(token, claims, at, {"url": claims.url}, user_agent)
        return Click(url=claims.url, recorded=recorded)

    def unsubscribe_page(self, token: str) -> Unsubscribe:
        """Checks the token and names the address; changes nothing (link scanners GET it)."""
        claims = self._verify(token, UnsubscribeClaims)
        return Unsubscribe(email=claims.email)

    def unsubscribe(self, token: str, at: datetime, user_agent: str | None = None) -> Unsubscribe:
        """Suppresses the address, then records the event; Unavailable if either fails.

        Both writes are idempotent, so the caller's retry completes a half-done unsubscribe.
        """
        claims = self._verify(token, UnsubscribeClaims)
        newly = self._suppressions.suppress(EMAIL_CHANNEL, claims.email, SUPPRESSION_REASON, at)
        self.store(self._message(token, claims, {}, user_agent), at, claims.person)
        return Unsubscribe(email=claims.email, newly_suppressed=newly)

    # ---- internals -------------------------------------------------------------------

    def _verify(self, token: str, kind: type[_Claims]) -> _Claims:
        """The token's claims, if it was signed by us for this kind of link (the pixel's
        token does not unsubscribe); TokenRefused if not."""
        errors: list[InvalidToken] = []
        for key in self._keys:
            try:
                return read_link(token, key, kind)
            except InvalidToken as error:
                errors.append(error)
        # The key that did sign it says best what is wrong (a pixel's token at /u, say).
        signed = [error for error in errors if str(error) != "signature does not match"]
        raise TokenRefused("token", f"not a valid link ({(signed or errors)[0]})") from None

    def _record_best_effort(
        self,
        token: str,
        claims: LinkClaims,
        at: datetime,
        extra: Mapping[str, Any],
        user_agent: str | None,
    ) -> bool:
        message = self._message(token, claims, extra, user_agent)
        try:
            self.store(message, at, claims.person)
        except Unavailable:
            return self._store_later(message, at, claims.person)
        return True

    def _store_later(self, message: dict[str, Any], at: datetime, addressed: PersonId) -> bool:
        """The table refused the event: queue it for Track's consumer to store; False only
        if the queue refuses it too (or there is none), when it is lost and counted."""
        if self._retries is None:
            return False
        body = {"message": message, "receivedAt": iso(at), "person": str(addressed)}
        try:
            self._retries.send(json.dumps(body, separators=(",", ":"), ensure_ascii=False))
        except Unavailable:
            return False
        return True

    def store_queued(self, body: str) -> None:
        """Stores a link event Track queued when the table refused it (idempotent: its
        messageId comes from the link's token); Unavailable leaves it on the queue."""
        queued = json.loads(body)
        received = datetime.fromisoformat(queued["receivedAt"])
        self.store(queued["message"], received, PersonId.parse(queued["person"]))

    def _message(
        self,
        token: str,
        claims: LinkClaims,
        extra: Mapping[str, Any],
        user_agent: str | None,
    ) -> dict[str, Any]:
        addressed = claims.person
        message: dict[str, Any] = {
            "type": "track",
            "event": _EVENTS[claims.kind],
            "messageId": message_id_for(token, claims.kind),
            "userId" if addressed.is_user else "anonymousId": addressed.value,
            "properties": {
                "channel": EMAIL_CHANNEL,
                "fireId": claims.fire_id,
                "trigger": claims.trigger,
                **extra,
            },
        }
        if user_agent:
            message["context"] = {"userAgent": user_agent}
        return message

    def store(self, message: dict[str, Any], at: datetime, addressed: PersonId) -> None:
        message_id = message["messageId"]
        (event,) = normalize(
            Payload(route_type="track", document=message),
            received_at=at,
            new_id=lambda: message_id,
            limits=self._settings.limits,
        )
        person = self._person_now(addressed)
        self._events.put_events(
            [StoredEvent(person=person, event=event)], {}, self._settings.retention
        )

    def _person_now(self, addressed: PersonId) -> PersonId:
        """An anonymous visitor linked to a user since the email went out is that user."""
        if addressed.is_user:
            return addressed
        linked = self._events.linked_users([addressed.value]).get(addressed.value)
        return PersonId.of(linked, addressed.value)


def _sent(claims: OpenClaims) -> dict[str, str]:
    """The open's ``sentAt`` property, from the pixel's signed send time (none on pixels
    signed before it was added): how the profile tells a proxy's prefetch from a reader."""
    if not claims.sent_at.isdigit():
        return {}
    return {"sentAt": iso(datetime.fromtimestamp(int(claims.sent_at), UTC))}


def _is_web_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)
