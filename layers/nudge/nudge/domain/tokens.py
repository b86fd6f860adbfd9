"""Signed tokens for the links in an email: open pixel, click redirect, unsubscribe.

A token is ``base64url(payload || HMAC-SHA256(key, payload))`` without padding, where the
payload is a version byte followed by the claims as compact JSON (sorted keys). It is
opaque to its holder in the sense that nothing may be read from it without verifying it
first; it is signed, not encrypted, so the recipient of an email can decode their own
claims (the person, the fire and, for unsubscribe, their own address).

Only one spelling of a token verifies: base64 lets the unused low bits of the last
character vary, and a token whose encoding is not the canonical one is refused, so any
changed character is tampering, never an alias.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re

__all__ = ["InvalidToken", "sign_token", "verify_token"]

_VERSION = b"\x01"
_MAC_BYTES = hashlib.sha256().digest_size
_ALPHABET = re.compile(r"[A-Za-z0-9_-]+")
# Well above any real link (a click token carries its URL) and well below what a URL holds.
MAX_TOKEN_CHARS = 4096


class InvalidToken(Exception):
    """The token is malformed, altered, or signed with another key."""


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
