"""How the HTTP functions answer errors: one table from error to status and code, so
Ingest and Track answer alike and the core never chooses a status."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import Response

from nudge.domain.errors import (
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    TokenRefused,
    Unauthorized,
)

__all__ = ["RETRY_AFTER_SECONDS", "error_body", "json_response", "status_of", "unavailable"]

# Most specific first: the first class an error is an instance of decides.
_STATUS: tuple[tuple[type[InvalidRequest], int, str], ...] = (
    (PayloadTooLarge, 413, "payload_too_large"),
    (Unauthorized, 401, "unauthorized"),
    (NotFound, 404, "not_found"),
    (TokenRefused, 400, "invalid_token"),
    (InvalidRequest, 400, "invalid_request"),
)
# A throttled table is usually writable again within a second or two (on-demand capacity
# adapts); clients that honour Retry-After back off at least this long.
RETRY_AFTER_SECONDS = 1


def _entry(error: InvalidRequest) -> tuple[int, str]:
    return next((status, code) for kind, status, code in _STATUS if isinstance(error, kind))


def status_of(error: InvalidRequest) -> int:
    return _entry(error)[0]


def error_body(error: InvalidRequest, message: str | None = None) -> dict[str, Any]:
    """``{"code", "message", "field"}``; ``message`` replaces the error's own words."""
    return {"code": _entry(error)[1], "message": message or error.message, "field": error.field}


def json_response(
    status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> Response[str]:
    return Response(
        status, "application/json", json.dumps(body, ensure_ascii=False), headers=headers
    )


def unavailable() -> Response[str]:
    """503 with Retry-After: storage kept refusing, so nothing is promised; retry later."""
    return json_response(
        503,
        {"code": "unavailable", "message": "storage is busy; retry with backoff"},
        {"Retry-After": str(RETRY_AFTER_SECONDS)},
    )
