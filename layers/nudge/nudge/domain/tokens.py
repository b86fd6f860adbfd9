"""Signed tokens for the links in an email: open pixel, click redirect, unsubscribe.

A token is ``base64url(payload || HMAC-SHA256(key, payload))`` without padding, where the
payload is a version byte followed by the claims as compact JSON (sorted keys). It is
opaque to its holder in the sense that nothing may be read from it without verifying it
first; it is signed, not encrypted, so the recipient of an email can decode their own
claims (the person, the fire and, for unsubscribe, their own address).

Only one spelling of a token verifies: base64 lets the unused low bits of the last
character vary, and a token whose encoding is not the canonical one is refused, so any
changed character is tampering, never an alias.

The links' claims are typed (``OpenClaims``, ``ClickClaims``, ``UnsubscribeClaims``, with
readable names); on the wire they keep the one-letter keys of version 1: ``k`` (``o``,
``c`` or ``u``), ``f`` the fire id, ``p`` the person, ``t`` the trigger, ``url`` a click's
target, ``e`` the address to unsubscribe and ``s``, on an open pixel, when it was sent
(optional: a claim with a default may be absent). Keeping the wire as it was, rather than a
version 2 with long names, means every link already in an inbox verifies and reads as
before, one reader serves old and new links alike, and a click's URL, which must fit in
a URL itself, is not made longer by key names. The names are mapped in one place below.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields
from typing import Any, ClassVar, Literal, Self, TypeVar

from nudge.domain.person import InvalidPersonId, PersonId

__all__ = [
    "ClickClaims",
    "InvalidToken",
    "LinkClaims",
    "LinkKind",
    "OpenClaims",
    "UnsubscribeClaims",
    "read_link",
    "sign_link",
    "sign_token",
    "verify_token",
]

_VERSION = b"\x01"
_MAC_BYTES = hashlib.sha256().digest_size
_ALPHABET = re.compile(r"[A-Za-z0-9_-]+")
# Well above any real link (a click token carries its URL) and well below what a URL holds.
MAX_TOKEN_CHARS = 4096


class InvalidToken(Exception):
    """The token is malformed, altered, or signed with another key; or, for a link, signed
    for another kind of link or without a claim that kind needs."""


LinkKind = Literal["open", "click", "unsubscribe"]

# The wire's names (version 1): one letter where a link's token always had one.
_KIND_CLAIM = "k"
_WIRE_KINDS: dict[LinkKind, str] = {"open": "o", "click": "c", "unsubscribe": "u"}
_WIRE_NAMES = {
    "fire_id": "f",
    "person": "p",
    "trigger": "t",
    "url": "url",
    "email": "e",
    "sent_at": "s",
}


@dataclass(frozen=True)
class LinkClaims:
    """What every link in an email says: the fire it came from, the person it was sent to
    and the trigger that fired."""

    kind: ClassVar[LinkKind]
    fire_id: str
    person: PersonId
    trigger: str

    def to_wire(self) -> dict[str, str]:
        claims = {
            _WIRE_NAMES[field.name]: str(getattr(self, field.name))
            for field in fields(self)
            if getattr(self, field.name) != ""  # an optional claim left out is not on the wire
        }
        return {_KIND_CLAIM: _WIRE_KINDS[self.kind], **claims}

    @classmethod
    def from_wire(cls, claims: Mapping[str, str]) -> Self:
        """This kind of link's claims; InvalidToken if they are another kind's or lack one."""
        if claims.get(_KIND_CLAIM) != _WIRE_KINDS[cls.kind]:
            raise InvalidToken(f"not a token for {cls.kind} links")
        wanted = {field.name: _WIRE_NAMES[field.name] for field in fields(cls)}
        optional = {field.name for field in fields(cls) if field.default is not MISSING}
        missing = [
            wire for name, wire in wanted.items() if not claims.get(wire) and name not in optional
        ]
        if missing:
            raise InvalidToken(f"missing claims: {', '.join(missing)}")
        values: dict[str, Any] = {
            name: claims[wire] for name, wire in wanted.items() if claims.get(wire)
        }
        try:
            values["person"] = PersonId.parse(values["person"])
        except InvalidPersonId:
            raise InvalidToken("the person claim is neither u:<id> nor a:<id>") from None
        return cls(**values)


@dataclass(frozen=True)
class OpenClaims(LinkClaims):
    """The open pixel's, with when the email was sent (epoch seconds; pixels signed before
    it was added have none): an open seconds after sending is a mail proxy fetching images,
    not the person reading."""

    kind: ClassVar[LinkKind] = "open"
    sent_at: str = ""


@dataclass(frozen=True)
class ClickClaims(LinkClaims):
    """A tracked link's: where the click is redirected to."""

    kind: ClassVar[LinkKind] = "click"
    url: str


@dataclass(frozen=True)
class UnsubscribeClaims(LinkClaims):
    """The unsubscribe link's: the address the email went to, the one to suppress."""

    kind: ClassVar[LinkKind] = "unsubscribe"
    email: str


_Claims = TypeVar("_Claims", bound=LinkClaims)


def sign_link(claims: LinkClaims, key: bytes) -> str:
    return sign_token(claims.to_wire(), key)


def read_link(token: str, key: bytes, kind: type[_Claims]) -> _Claims:
    """The claims of a token signed for ``kind`` of link; InvalidToken if it does not
    verify, was signed for another kind of link, or lacks a claim."""
    return kind.from_wire(verify_token(token, key))


def sign_token(claims: dict[str, str], key: bytes) -> str:
    _check_key(key)
    if not all(isinstance(name, str) and isinstance(value, str) for name, value in claims.items()):
        raise TypeError("claims must map strings to strings")
    payload = _VERSION + json.dumps(
        claims, ensure_ascii=False, separators=(",", ":"), sort_keys=True
    ).encode("utf-8")
    return _encode(payload + _mac(payload, key))


def verify_token(token: str, key: bytes) -> dict[str, str]:
    _check_key(key)
    raw = _decode(token)
    if len(raw) <= _MAC_BYTES + len(_VERSION):
        raise InvalidToken("too short")
    payload, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
    if not hmac.compare_digest(mac, _mac(payload, key)):
        raise InvalidToken("signature does not match")
    # Past this point the payload is ours: a failure below means a signing bug, not tampering.
    if payload[:1] != _VERSION:
        raise InvalidToken("unknown token version")
    try:
        claims = json.loads(payload[1:].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidToken("claims are not JSON") from None
    if not isinstance(claims, dict) or not all(isinstance(value, str) for value in claims.values()):
        raise InvalidToken("claims are not a map of strings")
    return claims


def _check_key(key: bytes) -> None:
    if not key:
        raise ValueError("a signing key is required")


def _mac(payload: bytes, key: bytes) -> bytes:
    return hmac.new(key, payload, hashlib.sha256).digest()


def _encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _decode(token: str) -> bytes:
    if not isinstance(token, str) or not token:
        raise InvalidToken("empty token")
    if len(token) > MAX_TOKEN_CHARS or not _ALPHABET.fullmatch(token):
        raise InvalidToken("not base64url")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise InvalidToken("not base64url") from None
    if _encode(raw) != token:
        raise InvalidToken("not the canonical encoding")
    return raw
