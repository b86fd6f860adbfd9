"""The admin key check the operator APIs share (reports, privacy requests).

``Authorization: Bearer <admin key>``, compared in constant time; never the write key,
which every visitor's browser holds.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from nudge.domain.errors import Unauthorized

__all__ = ["require_admin"]


def require_admin(headers: Mapping[str, str], admin_key: str) -> None:
    """Returns when the request carries the admin key; Unauthorized (401) otherwise."""
    header = headers.get("authorization") or ""
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthorized("Authorization", "send the admin key: Authorization: Bearer <key>")
    if not hmac.compare_digest(key.strip().encode(), admin_key.encode()):
        raise Unauthorized("Authorization", "not the admin key (the write key does not open this)")
