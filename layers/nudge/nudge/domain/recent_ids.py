"""The last messageIds folded into a profile, kept compact so a re-sent event folds once.

A request's events for one person are stored as one item keyed by its first messageId, so
a client that retries the same request overwrites that item (Streams says MODIFY, which no
one reads). analytics.js, though, re-queues a failed batch behind newer events, and the
retry is a new item holding events already stored. Those re-sent events are recent, so a
short memory of the person's latest messageIds catches them: 24 six-byte digests (144
bytes on the profile, which is written anyway). Two different ids share a digest with
odds of about 24 in 2**48 per event.
"""

from __future__ import annotations

import hashlib

__all__ = ["KEPT", "folded_recently", "remember"]

KEPT = 24
_DIGEST_BYTES = 6


def _digest(message_id: str) -> bytes:
    return hashlib.blake2b(message_id.encode(), digest_size=_DIGEST_BYTES).digest()


def folded_recently(recent: bytes, message_id: str) -> bool:
    digest = _digest(message_id)
    return any(
        recent[start : start + _DIGEST_BYTES] == digest
        for start in range(0, len(recent), _DIGEST_BYTES)
    )


def remember(recent: bytes, message_id: str) -> bytes:
    """The digests with this id's added, the oldest dropped past KEPT."""
    return (recent + _digest(message_id))[-KEPT * _DIGEST_BYTES :]
