"""An HTTP API Gateway for the local stack: the template's routes, turned into API Gateway
v2 payloads for the functions, CORS answered from the template's CorsConfiguration, and
the /_local control API that tests and demos drive."""

from __future__ import annotations

import base64
import json
import math
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aws_lambda_powertools.event_handler.openapi.swagger_ui as swagger_assets
from nudge.adapters.contacts import ContactStore
from nudge.adapters.engine_store import EngineStore
from nudge.adapters.store import EventStore
from nudge.config import bundled_triggers
from nudge.domain.triggers.engine import TriggerIndex
from nudge.domain.triggers.loader import load_triggers
from nudge.service.explain import explain, partitions
from werkzeug.datastructures import Headers
from werkzeug.wrappers import Request, Response

from local.faults import FAULT_KINDS
from local.runtime import FunctionPool
from local.stack import REPO, LocalStack

__all__ = ["Gateway"]

MAX_PAYLOAD = 10 * 1024 * 1024  # API Gateway HTTP API's own request limit
MAX_ADVANCE_SECONDS = 400 * 86_400  # far past any retention or schedule the template uses
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


def _trigger_index() -> TriggerIndex:
    """The triggers the functions run (the layer's bundled ones), for explain."""
    return TriggerIndex.of(load_triggers(bundled_triggers()).triggers)


def _json(status: int, body: Any) -> Response:
    return Response(
        json.dumps(body, ensure_ascii=False, default=str),
        status=status,
        content_type="application/json",
    )


class Gateway:
    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.routes = sorted(
            (
                _Route(method, path, _compile(path), spec.logical_id)
                for spec in stack.template.functions.values()
                for method, path in spec.http_routes
            ),
            # Exact paths before parameterised ones before $default, as API Gateway picks.
            key=lambda route: (route.path == "$default", "{" in route.path, -len(route.path)),
        )
        table = next(iter(stack.template.tables))
        table_name = stack.template.names.physical(table)
        self.store = EventStore(stack.dynamodb, table_name)
        self.engine = EngineStore(stack.dynamodb, table_name, timedelta(days=30))
        self.contacts = ContactStore(stack.dynamodb, table_name)
        self.triggers = _trigger_index()
        self.control: dict[tuple[str, str], Callable[..., Response]] = {
            ("GET", "/_local/health"): self._health,
            ("POST", "/_local/drain"): self._drain,
            ("GET", "/_local/clock"): self._clock,
            ("POST", "/_local/clock/advance"): self._advance,
            ("GET", "/_local/outbox"): self._outbox,
            ("POST", "/_local/reset"): self._reset,
            ("POST", "/_local/faults"): self._faults,
            ("GET", "/_local/faults"): self._pending_faults,
            ("GET", "/docs"): self._docs,
            ("GET", "/demo"): self._demo,
            ("GET", "/sdk/nudge.js"): self._sdk,
        }

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        try:
            response = self._dispatch(request)
        except Exception as error:  # the gateway keeps serving whatever one request did
            response = _json(500, {"message": "Internal Server Error", "detail": str(error)})
        return response(environ, start_response)

    # ---- dispatch ------------------------------------------------------------------

    def _dispatch(self, request: Request) -> Response:
        path, method = request.path, request.method
        if (method, path) in self.control:
            return self.control[(method, path)](request)
        if method == "GET" and path.startswith("/_local/users/"):
            return self._user(path.removeprefix("/_local/users/"))
        if method == "GET" and path.startswith("/_local/explain/"):
            return self._explain(path.removeprefix("/_local/explain/"))
        if method == "GET" and path.startswith("/_local/outbox/"):
            return self._outbox_page(path.removeprefix("/_local/outbox/"))
        if method == "GET" and path == "/_local/fires":
            return self._fires(request.args.get("userId"))
        if method == "GET" and path.startswith("/docs/"):
            return self._asset(path.removeprefix("/docs/"))
        if path.startswith("/_local/"):
            return _json(404, {"message": f"no control route {method} {path}"})
        if method == "OPTIONS" and request.headers.get("Access-Control-Request-Method"):
            return self._preflight(request)
        return self._with_cors(request, self._invoke_route(request))

    def _invoke_route(self, request: Request) -> Response:
        for route in self.routes:
            match = route.pattern.match(request.path)
            if match and route.method in (request.method, "ANY"):
                body = request.get_data(cache=False)
                if len(body) > MAX_PAYLOAD:
                    return _json(413, {"message": "Request Entity Too Large"})
                event = self._api_event(request, route, match.groupdict(), body)
                return self._respond(self.stack.functions[route.function], event)
        return _json(404, {"message": "Not Found"})

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
            "requestContext": {
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
                "time": datetime.fromtimestamp(now_ms / 1000, tz=UTC).strftime(
                    "%d/%b/%Y:%H:%M:%S +0000"
                ),
                "timeEpoch": now_ms,
            },
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
            return _json(500, {"message": "Internal Server Error"})
        payload = result.payload
        if not isinstance(payload, dict) or "statusCode" not in payload:
            # API Gateway's inference for v2: anything else is a 200 JSON body.
            return _json(200, payload)
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

    # ---- control API ---------------------------------------------------------------

    def _health(self, _: Request) -> Response:
        return _json(
            200,
            {
                "status": "ok",
                "now": self.stack.clock.now().isoformat(),
                "functions": sorted(self.stack.functions),
                "awsEndpoint": self.stack.endpoint,
            },
        )

    def _drain(self, _: Request) -> Response:
        work = self.stack.drain()
        return _json(
            200, {"drained": True, "processed": work, "now": self.stack.clock.now().isoformat()}
        )

    def _clock(self, _: Request) -> Response:
        clock = self.stack.clock
        return _json(200, {"now": clock.now().isoformat(), "offsetSeconds": clock.offset_seconds})

    def _advance(self, request: Request) -> Response:
        try:
            seconds = json.loads(request.get_data() or b"{}").get("seconds")
        except (json.JSONDecodeError, AttributeError):
            return _invalid("body", "body must be a JSON object")
        if (
            isinstance(seconds, bool)
            or not isinstance(seconds, int | float)
            or not math.isfinite(seconds)
            or not 0 <= seconds <= MAX_ADVANCE_SECONDS
        ):
            limit = f"{MAX_ADVANCE_SECONDS} (400 days)"
            return _invalid("seconds", f"seconds: a number from 0 to {limit} is required")
        advanced = self.stack.advance(float(seconds))
        body = {
            "now": advanced.now.isoformat(),
            "offsetSeconds": self.stack.clock.offset_seconds,
            "target": advanced.target.isoformat(),
            "complete": advanced.complete,
            "moments": advanced.moments,
        }
        if not advanced.complete:
            body["message"] = (
                f"stopped at {body['now']} after {self.stack.config.advance_budget:g} s of work,"
                f" short of {body['target']}: every moment up to it is done; advance again to go on"
            )
        return _json(200, body)

    def _outbox(self, _: Request) -> Response:
        """Every email SES accepted, then every fire not (yet) delivered, with its state."""
        emails = self.stack.outbox()
        waiting = []
        for fire in self._all_fires():
            mark = self.contacts.load(str(fire.get("person"))).fires.get(
                str(fire.get("fireId")), ""
            )
            if fire.get("channel") == "email" and mark.startswith("sent@"):
                continue  # listed above, as the email SES accepted
            waiting.append(
                {
                    "channel": fire.get("channel"),
                    "trigger": fire.get("trigger"),
                    "to": fire.get("userId") or fire.get("person"),
                    "time": fire.get("firedAt"),
                    "delivered": mark.startswith("sent@"),
                    "state": mark.split("@", 1)[0] or "queued",
                    "fire": fire,
                }
            )
        return _json(200, [*emails, *waiting])

    def _outbox_page(self, number: str) -> Response:
        """The n-th email as the recipient would see it (HTML part), 0-based."""
        emails = self.stack.outbox()
        if not number.isdigit() or int(number) >= len(emails):
            return _json(
                404, {"code": "not_found", "message": f"no email {number!r}", "field": "n"}
            )
        html = emails[int(number)].get("html") or "<pre>(no HTML part)</pre>"
        return Response(html, content_type="text/html; charset=utf-8")

    def _faults(self, request: Request) -> Response:
        """{"ses": {"throttle": N, "serverError": N, "acceptThenCrash": N},
        "sqs": {"duplicate": N}}: each count given replaces that fault's pending count."""
        try:
            body = json.loads(request.get_data() or b"{}")
        except json.JSONDecodeError:
            body = None
        parsed = _fault_counts(body)
        if isinstance(parsed, Response):
            return parsed
        faults = {"ses": self.stack.ses_faults, "sqs": self.stack.queue_faults}
        for (service, kind), count in parsed.items():
            faults[service].set(kind, count)
        return self._pending_faults(request)

    def _pending_faults(self, _: Request) -> Response:
        """The faults still to be injected, every kind of each service."""
        faults = {"ses": self.stack.ses_faults, "sqs": self.stack.queue_faults}
        return _json(200, {service: fault.pending() for service, fault in faults.items()})

    def _reset(self, _: Request) -> Response:
        self.stack.reset()
        return _json(200, {"reset": True})

    def _user(self, user_id: str) -> Response:
        view = self.store.read_person(user_id)
        if view.profile is None and not view.events:
            return _json(
                404,
                {
                    "code": "not_found",
                    "message": f"no events or profile for {user_id!r}",
                    "field": "userId",
                },
            )
        return _json(
            200,
            {
                "userId": user_id,
                "profile": view.profile.to_json() if view.profile else None,
                "linkedProfiles": [profile.to_json() for profile in view.linked_profiles],
                "events": view.events,
            },
        )

    def _persons(self, user_id: str) -> list[str]:
        return partitions(user_id, self.store.read_person(user_id))

    def _explain(self, user_id: str) -> Response:
        decisions = explain(self.store, self.engine, self.triggers, user_id, self.stack.clock.now())
        return _json(200, {"userId": user_id, "decisions": decisions})

    def _fires(self, user_id: str | None) -> Response:
        if user_id:
            return _json(200, self.engine.fires(self._persons(user_id)))
        return _json(200, self._all_fires())

    def _all_fires(self) -> list[dict[str, Any]]:
        fires = []
        paginator = self.stack.dynamodb.get_paginator("scan")
        for page in paginator.paginate(
            TableName=self.store.table_name,
            FilterExpression="kind = :fire",
            ExpressionAttributeValues={":fire": {"S": "fire"}},
        ):
            fires += [json.loads(item["fire"]["S"]) for item in page.get("Items", [])]
        return sorted(fires, key=lambda fire: str(fire.get("firedAt")))

    # ---- the demo shop and the browser SDK it uses ----------------------------------

    def _demo(self, _: Request) -> Response:
        page = (REPO / "local" / "demo" / "index.html").read_text()
        page = page.replace("__WRITE_KEY__", self.stack.config.write_key)
        return Response(page, content_type="text/html; charset=utf-8")

    def _sdk(self, _: Request) -> Response:
        script = (REPO / "sdk" / "nudge.js").read_bytes()
        return Response(script, content_type="application/javascript; charset=utf-8")

    # ---- the docs page: Swagger UI from the assets Powertools ships (works offline) --

    def _docs(self, _: Request) -> Response:
        page = _DOCS_PAGE.replace("{spec_url}", "/openapi.json")
        return Response(page, content_type="text/html; charset=utf-8")

    def _asset(self, name: str) -> Response:
        assets = Path(swagger_assets.__file__).parent
        # URL name -> (file Powertools ships, content type); its stylesheet is the .min.css.
        files = {
            "swagger-ui.css": ("swagger-ui.min.css", "text/css"),
            "swagger-ui-bundle.min.js": ("swagger-ui-bundle.min.js", "application/javascript"),
        }
        if name not in files:
            return _json(404, {"message": "Not Found"})
        file_name, content_type = files[name]
        return Response((assets / file_name).read_bytes(), content_type=content_type)


def _fault_counts(body: Any) -> dict[tuple[str, str], int] | Response:
    """The (service, kind) -> count pairs a faults request asks for, or a 400 naming the field."""
    if not isinstance(body, dict) or not body:
        return _invalid("body", 'name a fault: {"ses": {"throttle": N}}, {"sqs": {...}}, ...')
    counts: dict[tuple[str, str], int] = {}
    for service, kinds in body.items():
        if service not in FAULT_KINDS:
            return _invalid(service, f"{service}: not a service with faults ({_services()})")
        if not isinstance(kinds, dict) or not kinds:
            return _invalid(service, f"{service}: an object of fault counts is required")
        for kind, count in kinds.items():
            field = f"{service}.{kind}"
            if kind not in FAULT_KINDS[service]:
                known = ", ".join(FAULT_KINDS[service])
                return _invalid(field, f"{field}: not a fault of {service} ({known})")
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                return _invalid(field, f"{field}: a count >= 0 is required")
            counts[(service, kind)] = count
    return counts


def _services() -> str:
    return ", ".join(FAULT_KINDS)


def _invalid(field: str, message: str) -> Response:
    return _json(400, {"code": "invalid_request", "message": message, "field": field})


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


_DOCS_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Nudge beacon API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.min.js"></script>
<script>window.ui = SwaggerUIBundle({url: "{spec_url}", dom_id: "#swagger-ui"});</script>
</body></html>
"""
