"""API Gateway's HTTP API, locally: the template's HttpApi routes, each request turned
into the payload (format version 2.0) the function would get on AWS, CORS answered from the
template's CorsConfiguration, and each route throttled as its stage's route settings say."""

from __future__ import annotations

import base64
import logging
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from werkzeug.datastructures import Headers
from werkzeug.wrappers import Request, Response

from local.responses import json_response
from local.runtime import FunctionPool
from local.stack import LocalStack
from local.throttling import Throttles

__all__ = ["ApiGateway"]

log = logging.getLogger("nudge.local")

MAX_PAYLOAD = 10 * 1024 * 1024  # API Gateway HTTP API's own request limit
_TEXT_TYPES = (
    "text/",
    "application/json",
    "application/xml",
    "application/javascript",
    "application/x-www-form-urlencoded",
)


@dataclass(frozen=True)
class _Route:
    method: str
    path: str
    pattern: re.Pattern[str]
    function: str

    @property
    def route_key(self) -> str:
        return "$default" if self.path == "$default" else f"{self.method} {self.path}"


def _compile(path: str) -> re.Pattern[str]:
    if path == "$default":
        return re.compile(".*")
    regex = re.sub(r"\\\{([A-Za-z0-9_]+)\\\+\\\}", r"(?P<\1>.+)", re.escape(path))
    regex = re.sub(r"\\\{([A-Za-z0-9_]+)\\\}", r"(?P<\1>[^/]+)", regex)
    return re.compile(f"^{regex}$")


class ApiGateway:
    def __init__(self, stack: LocalStack, throttles: Throttles | None = None) -> None:
        self.stack = stack
        api = stack.template.api
        self.throttles = throttles or Throttles(api.default_throttle, api.route_throttles)
        self.routes = sorted(
            (
                _Route(method, path, _compile(path), spec.logical_id)
                for spec in stack.template.functions.values()
                for method, path in spec.http_routes
            ),
            # Exact paths before parameterised ones before $default, as API Gateway picks.
            key=lambda route: (route.path == "$default", "{" in route.path, -len(route.path)),
        )

    def answer(self, request: Request) -> Response:
        """A CORS preflight, or the function's answer for the route (404 when none matches)."""
        self.stack.meter.api_request()  # HTTP APIs bill every request, preflights included
        if request.method == "OPTIONS" and request.headers.get("Access-Control-Request-Method"):
            return self._preflight(request)
        return self._with_cors(request, self._invoke_route(request))

    def _invoke_route(self, request: Request) -> Response:
        for route in self.routes:
            match = route.pattern.match(request.path)
            if match and route.method in (request.method, "ANY"):
                if not self.throttles.admit(route.route_key):
                    # Before the body is read and before any function runs, as on AWS.
                    return json_response(429, {"message": "Too Many Requests"})
                body = request.get_data(cache=False)
                if len(body) > MAX_PAYLOAD:
                    return json_response(413, {"message": "Request Entity Too Large"})
                event = self._api_event(request, route, match.groupdict(), body)
                return self._respond(self.stack.functions[route.function], event)
        return json_response(404, {"message": "Not Found"})

    def _api_event(
        self, request: Request, route: _Route, params: dict[str, str], body: bytes
    ) -> dict[str, Any]:
        """The API Gateway HTTP API payload, format version 2.0."""
        headers: dict[str, str] = {}
        for name, value in request.headers.items():
            key = name.lower()
            if key != "cookie":
                headers[key] = f"{headers[key]},{value}" if key in headers else value
        query: dict[str, str] = {}
        for name, value in request.args.items(multi=True):
            query[name] = f"{query[name]},{value}" if name in query else value
        now_ms = self.stack.clock.epoch_ms()
        text_body, is_base64 = _encode_body(body, headers)
        event: dict[str, Any] = {
            "version": "2.0",
            "routeKey": route.route_key,
            "rawPath": request.path,
            "rawQueryString": request.query_string.decode("latin-1"),
            "headers": headers,
            "requestContext": _request_context(request, route, now_ms),
            "isBase64Encoded": is_base64,
        }
        if body:
            event["body"] = text_body
        if query:
            event["queryStringParameters"] = query
        if params:
            event["pathParameters"] = params
        if request.cookies:
            event["cookies"] = [f"{name}={value}" for name, value in request.cookies.items()]
        return event

    def _respond(self, function: FunctionPool, event: dict[str, Any]) -> Response:
        result = function.invoke(event)
        if result.failed:
            # Lambda writes the error to the function's log; API Gateway answers a bare 500.
            log.error("%s failed: %s", function.spec.logical_id, result.error)
            return json_response(500, {"message": "Internal Server Error"})
        payload = result.payload
        if not isinstance(payload, dict) or "statusCode" not in payload:
            # API Gateway's inference for v2: anything else is a 200 JSON body.
            return json_response(200, payload)
        raw = payload.get("body") or ""
        body = base64.b64decode(raw) if payload.get("isBase64Encoded") else raw.encode()
        headers = Headers(payload.get("headers") or {})
        for cookie in payload.get("cookies") or []:
            headers.add("Set-Cookie", cookie)
        return Response(body, status=int(payload["statusCode"]), headers=headers)

    # ---- CORS, as the template's CorsConfiguration declares ------------------------

    def _allowed_origin(self, origin: str | None) -> str | None:
        allowed = self.stack.template.api.allow_origins
        if not origin or not allowed:
            return None
        return "*" if "*" in allowed else (origin if origin in allowed else None)

    def _preflight(self, request: Request) -> Response:
        api = self.stack.template.api
        response = Response(status=204)
        origin = self._allowed_origin(request.headers.get("Origin"))
        if origin:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Methods"] = ",".join(api.allow_methods)
            response.headers["Access-Control-Allow-Headers"] = ",".join(api.allow_headers).lower()
            if api.max_age is not None:
                response.headers["Access-Control-Max-Age"] = str(api.max_age)
        return response

    def _with_cors(self, request: Request, response: Response) -> Response:
        origin = self._allowed_origin(request.headers.get("Origin"))
        if origin:
            response.headers["Access-Control-Allow-Origin"] = origin
        return response


def _request_context(request: Request, route: _Route, now_ms: int) -> dict[str, Any]:
    """The payload's requestContext; its time is the stack's virtual clock, as Ingest's
    receivedAt comes from timeEpoch."""
    return {
        "accountId": "123456789012",
        "apiId": "local",
        "domainName": request.host,
        "domainPrefix": request.host.split(".")[0],
        "http": {
            "method": request.method,
            "path": request.path,
            "protocol": request.environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
            "sourceIp": request.remote_addr or "127.0.0.1",
            "userAgent": request.headers.get("User-Agent", ""),
        },
        "requestId": str(uuid.uuid4()),
        "routeKey": route.route_key,
        "stage": "$default",
        "time": datetime.fromtimestamp(now_ms / 1000, tz=UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "timeEpoch": now_ms,
    }


def _encode_body(body: bytes, headers: dict[str, str]) -> tuple[str, bool]:
    """Text stays text; anything encoded, binary or not UTF-8 is base64, as API Gateway does."""
    content_type = headers.get("content-type", "").lower()
    textual = not content_type or content_type.startswith(_TEXT_TYPES)
    if textual and "content-encoding" not in headers:
        try:
            return body.decode("utf-8"), False
        except UnicodeDecodeError:
            pass
    return base64.b64encode(body).decode("ascii"), True
