"""The JSON answers the gateway's parts share (errors, control API bodies)."""

from __future__ import annotations

import json
from typing import Any

from werkzeug.wrappers import Response

__all__ = ["json_response"]


def json_response(status: int, body: Any) -> Response:
    return Response(
        json.dumps(body, ensure_ascii=False, default=str),
        status=status,
        content_type="application/json",
    )
