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
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from nudge.adapters.store import EventStore, StoredEvent, StoreUnavailable
from nudge.adapters.suppression import SuppressionStore
from nudge.config import Settings
from nudge.domain.errors import TokenRefused
from nudge.domain.intake import Payload, normalize
from nudge.domain.person import InvalidPersonId, PersonId
from nudge.domain.tokens import InvalidToken, verify_token

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

OPENED = "Email Opened"
CLICKED = "Email Link Clicked"
UNSUBSCRIBED = "Unsubscribed"
EMAIL_CHANNEL = "email"
SUPPRESSION_REASON = "unsubscribe"

_EVENTS = {"o": OPENED, "c": CLICKED, "u": UNSUBSCRIBED}
_SLUGS = {"o": "open", "c": "click", "u": "unsubscribe"}
# Claims each kind of token must carry beyond k, f, p and t.
_EXTRA_CLAIMS = {"o": (), "c": ("url",), "u": ("e",)}


@dataclass(frozen=True)
class Click:
    url: str
    recorded: bool


@dataclass(frozen=True)
class Unsubscribe:
    email: str
    newly_suppressed: bool = False


def message_id_for(token: str, kind: str) -> str:
    """The same link followed twice is one event: its id comes from the token itself."""
    digest = hashlib.sha256(f"{kind}:{token}".encode()).hexdigest()[:32]
    return f"email-{_SLUGS[kind]}-{digest}"


class TrackService:
    def __init__(
        self,
        events: EventStore,
        suppressions: SuppressionStore,
        settings: Settings,
        secret: bytes,
    ) -> None:
        self._events = events
        self._suppressions = suppressions
        self._settings = settings
        self._secret = secret

    def open(self, token: str, at: datetime, user_agent: str | None = None) -> bool:
        """Records the open; False when storage refused it (the pixel is served anyway)."""
        claims = self._verify(token, "o")
        return self._record_best_effort(token, claims, at, {}, user_agent)

    def click(self, token: str, at: datetime, user_agent: str | None = None) -> Click:
        claims = self._verify(token, "c")
        url = claims["url"]
        recorded = self._record_best_effort(token, claims, at, {"url": url}, user_agent)
        return Click(url=url, recorded=recorded)

    def unsubscribe_page(self, token: str) -> Unsubscribe:
        """Checks the token and names the address; changes nothing (link scanners GET it)."""
        claims = self._verify(token, "u")
        return Unsubscribe(email=claims["e"])

    def unsubscribe(self, token: str, at: datetime, user_agent: str | None = None) -> Unsubscribe:
        """Suppresses the address, then records the event; StoreUnavailable if either fails.

        Both writes are idempotent, so the caller's retry completes a half-done unsubscribe.
        """
        claims = self._verify(token, "u")
        newly = self._suppressions.suppress(EMAIL_CHANNEL, claims["e"], SUPPRESSION_REASON, at)
        self._record(token, claims, at, {}, user_agent)
        return Unsubscribe(email=claims["e"], newly_suppressed=newly)

    # ---- internals -------------------------------------------------------------------

    def _verify(self, token: str, kind: str) -> dict[str, str]:
        try:
            claims = verify_token(token, self._secret)
        except InvalidToken as error:
            raise TokenRefused("token", f"not a valid link ({error})") from None
        if claims.get("k") != kind:
            raise TokenRefused("token", "this link is not meant for this address")
        missing = [name for name in ("f", "p", "t", *_EXTRA_CLAIMS[kind]) if not claims.get(name)]
        if missing:
            raise TokenRefused("token", f"missing claims: {', '.join(missing)}")
        try:
            PersonId.parse(claims["p"])
        except InvalidPersonId:
            raise TokenRefused("token", "the person claim is neither u:<id> nor a:<id>") from None
        if kind == "c" and not _is_web_url(claims["url"]):
            raise TokenRefused("token", "the link target is not an http(s) URL")
        return claims

    def _record_best_effort(
        self,
        token: str,
        claims: Mapping[str, str],
        at: datetime,
        extra: Mapping[str, Any],
        user_agent: str | None,
    ) -> bool:
        try:
            self._record(token, claims, at, extra, user_agent)
        except StoreUnavailable:
            return False
        return True

    def _record(
        self,
        token: str,
        claims: Mapping[str, str],
        at: datetime,
        extra: Mapping[str, Any],
        user_agent: str | None,
    ) -> None:
        kind = claims["k"]
        addressed = PersonId.parse(claims["p"])
        message: dict[str, Any] = {
            "type": "track",
            "event": _EVENTS[kind],
            "messageId": message_id_for(token, kind),
            "userId" if addressed.is_user else "anonymousId": addressed.value,
            "properties": {
                "channel": EMAIL_CHANNEL,
                "fireId": claims["f"],
                "trigger": claims["t"],
                **extra,
            },
        }
        if user_agent:
            message["context"] = {"userAgent": user_agent}
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


def _is_web_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc)
