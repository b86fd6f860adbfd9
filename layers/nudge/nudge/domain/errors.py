"""Errors the core raises; entrypoints turn them into HTTP responses."""

from __future__ import annotations

__all__ = ["InvalidRequest", "NotFound", "PayloadTooLarge", "TokenRefused", "Unauthorized"]


class InvalidRequest(Exception):
    """The request cannot be accepted as sent; ``field`` names the offending part."""

    status = 400
    code = "invalid_request"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.field = field
        self.reason = reason

    @property
    def message(self) -> str:
        return str(self)


class PayloadTooLarge(InvalidRequest):
    status = 413
    code = "payload_too_large"


class Unauthorized(InvalidRequest):
    status = 401
    code = "unauthorized"


class NotFound(InvalidRequest):
    status = 404
    code = "not_found"


class TokenRefused(InvalidRequest):
    """A tracking link's token is malformed, altered, or meant for another route."""

    code = "invalid_token"
