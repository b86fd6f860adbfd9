"""What can be wrong with what a caller sent. Each error says what and where; which HTTP
status that becomes is the entrypoint's choice (``nudge.entrypoints.http_errors``)."""

from __future__ import annotations

__all__ = ["InvalidRequest", "NotFound", "PayloadTooLarge", "TokenRefused", "Unauthorized"]


class InvalidRequest(Exception):
    """The request cannot be accepted as sent; ``field`` names the offending part."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}" if field else reason)
        self.field = field
        self.reason = reason

    @property
    def message(self) -> str:
        return str(self)


class PayloadTooLarge(InvalidRequest):
    """The body, or one message in it, is over a size limit."""


class Unauthorized(InvalidRequest):
    """No write key, or one that is not accepted."""


class NotFound(InvalidRequest):
    """The route names nothing the API serves."""


class TokenRefused(InvalidRequest):
    """A tracking link's token is malformed, altered, or meant for another route."""
