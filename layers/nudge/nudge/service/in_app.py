"""In-app messages: kept for the person until one open page shows it, pushed to every
page open when it is decided.

Exactly once per fire and person. The kept message is the token: a page whose display
rules hold asks for it (``ack``), and the conditional write behind ``take`` (it marks the
message shown) lets one page win. That page hears ``show``; every other open page of the
person hears ``drop``.
A message no page took waits until its expiry, and the next page load's ``sync`` brings
it (reads skip expired messages, since DynamoDB's TTL may delete them days late).

A connection whose post answers "gone" is forgotten there and then: a closed tab whose
``$disconnect`` never ran (API Gateway does not promise it) costs one failed post.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from nudge.domain.errors import InvalidRequest, Unauthorized
from nudge.domain.in_app import InAppMessage, SocketIdentity, drop_frame, show_frame
from nudge.domain.person import PersonId
from nudge.domain.timefmt import iso
from nudge.service.ports import InAppInbox, SocketPoster

__all__ = ["CONNECTION_LIFETIME", "InAppService", "page_identity"]

# API Gateway closes a WebSocket after two hours whatever happens; a connection record
# outliving that is certainly stale (its TTL).
# https://docs.aws.amazon.com/apigateway/latest/developerguide/limits.html
CONNECTION_LIFETIME = timedelta(hours=2)


class InAppService:
    def __init__(self, *, inbox: InAppInbox, sockets: SocketPoster) -> None:
        self._inbox = inbox
        self._sockets = sockets

    # ---- from Send: a fire decided for the person ------------------------------------

    def deliver(self, person: PersonId, message: InAppMessage, now: datetime) -> str:
        """Keeps the message and pushes it to each open page; what happened, in words."""
        if not self._inbox.keep(person, message):
            # A redelivered fire: the first attempt kept it (and pushed it, or the next page
            # load's sync will). Pushing again could put a message already shown back up.
            return "kept already by an earlier attempt: not pushed again"
        frame = message.frame()
        pushed = sum(
            self._post(person, connection, frame)
            for connection in self._inbox.connections(person, now)
        )
        until = iso(message.expires_at)
        if pushed:
            return f"pushed to {pushed} open page(s); kept until one shows it or {until}"
        return f"no page open: kept for the next page until {until}"

    # ---- from the WebSocket API: a page's routes -------------------------------------

    def connect(self, connection_id: str, identity: SocketIdentity, now: datetime) -> None:
        self._inbox.connect(identity.person, connection_id, now, now + CONNECTION_LIFETIME)

    def disconnect(self, connection_id: str, identity: SocketIdentity) -> None:
        self._inbox.disconnect(identity.person, connection_id)

    def sync(self, connection_id: str, identity: SocketIdentity, now: datetime) -> int:
        """Posts the page every message waiting for it; how many."""
        waiting = self._inbox.pending(identity.persons, now)
        for message in waiting:
            if not self._post(identity.person, connection_id, message.frame()):
                return 0  # the page left while being served: nothing more to post
        return len(waiting)

    def ack(
        self, connection_id: str, identity: SocketIdentity, fire_id: str, now: datetime
    ) -> bool:
        """The page is ready to show ``fire_id``: True when it won the message (it hears
        ``show``, the person's other pages ``drop``); False when another page had it."""
        person = identity.person
        if not self._inbox.take(identity.persons, fire_id, now):
            self._post(person, connection_id, drop_frame(fire_id))
            return False
        self._post(person, connection_id, show_frame(fire_id))
        for other in self._inbox.connections(person, now):
            if other != connection_id:
                self._post(person, other, drop_frame(fire_id))
        return True

    def _post(self, person: PersonId, connection_id: str, frame: str) -> bool:
        if self._sockets.post(connection_id, frame):
            return True
        self._inbox.disconnect(person, connection_id)
        return False


_MAX_ID = 512  # as for the ids beacons carry


def page_identity(query: Mapping[str, str], write_keys: Iterable[str]) -> SocketIdentity:
    """Who a page opening a WebSocket is, from its query string (``writeKey``, ``userId``,
    ``anonymousId``): Unauthorized for a missing or unknown write key, InvalidRequest for
    no usable identity. The write key is compared in constant time, as Ingest does."""
    candidate = query.get("writeKey") or ""
    if not candidate:
        raise Unauthorized("writeKey", "missing write key: ?writeKey=<write key>")
    if not any(hmac.compare_digest(candidate.encode(), key.encode()) for key in write_keys):
        raise Unauthorized("writeKey", "write key not recognised")
    user_id, anonymous_id = query.get("userId") or None, query.get("anonymousId") or None
    if user_id is None and anonymous_id is None:
        raise InvalidRequest("userId", "a page connects as a userId or an anonymousId")
    for name, value in (("userId", user_id), ("anonymousId", anonymous_id)):
        if value is not None and len(value) > _MAX_ID:
            raise InvalidRequest(name, f"longer than {_MAX_ID} characters")
    return SocketIdentity(user_id, anonymous_id)
