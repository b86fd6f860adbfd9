"""API Gateway's WebSocket APIs on one machine: the sockets pages open, the routes that
run the template's functions, and the Management API those functions post through.

What it follows (API Gateway developer guide, "WebSocket APIs"):
- a connection: the ``$connect`` route's authorizer runs first, if it has one. A request
  without every identity source is refused 401 without calling it; the function raising
  "Unauthorized" is 401, a Deny policy 403, any other failure 500. Then ``$connect``'s own
  integration runs; a status outside 2xx refuses the connection with that status. The
  authorizer's ``principalId`` and ``context`` reach every later route of the connection
  as ``requestContext.authorizer``;
- a frame: its route is the value the route selection expression
  (``$request.body.<field>``) picks from the JSON body; a frame that picks no route (and
  no ``$default``) is answered ``{"message": "Forbidden", ...}``, a failed integration
  ``{"message": "Internal server error", ...}``. Integrations' answers are not sent back
  (no route responses: the functions post what they have to say);
- a close runs ``$disconnect`` (API Gateway makes no promise that it does; here it does);
- the Management API is served on the API's own host and stage:
  ``POST/GET/DELETE /{stage}/@connections/{id}``. A connection that is not open is 410
  GoneException; a payload over 128 KB is 413 PayloadTooLargeException;
- limits: a connection idle for 10 minutes, or open for 2 hours, is closed (real time,
  since pages run on the real clock).
Times handed to the functions (``requestTimeEpoch``, ``connectedAt``) are the stack's
virtual clock, as every other event source's are.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSMsgType, web

from local.runtime import FunctionPool
from local.template import ACCOUNT, SocketApiSpec

__all__ = ["SocketApiServer"]

log = logging.getLogger("nudge.local.websocket")

MAX_PAYLOAD = 128 * 1024  # a message's payload, either way
IDLE_TIMEOUT = 600.0  # seconds without a frame either way
MAX_DURATION = 7200.0  # seconds a connection may stay open
_SWEEP_EVERY = 15.0


@dataclass
class _Connection:
    id: str
    socket: web.WebSocketResponse
    connected_at_ms: int
    source_ip: str
    user_agent: str
    authorizer: dict[str, Any] | None
    opened: float = field(default_factory=time.monotonic)
    last_active: float = field(default_factory=time.monotonic)


class SocketApiServer:
    """Serves one WebSocket API from the template on ``host:port``."""

    def __init__(
        self,
        spec: SocketApiSpec,
        functions: dict[str, FunctionPool],
        now_ms: Callable[[], int],
        host: str,
        port: int,
        region: str,
    ) -> None:
        self.spec = spec
        self._functions = functions
        self._now_ms = now_ms
        self.host, self.port = host, port
        self._region = region
        self._connections: dict[str, _Connection] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.posts = 0  # Management API posts answered, for the bench

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}/{self.spec.stage}"

    # ---- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._serve, args=(ready,), name="websocket", daemon=True
        )
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the local WebSocket API did not start")

    def stop(self) -> None:
        if self._loop is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread:
            self._thread.join(timeout=5)

    def _serve(self, ready: threading.Event) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        app = web.Application(client_max_size=MAX_PAYLOAD * 2)
        stage = self.spec.stage
        app.router.add_get(f"/{stage}", self._open)
        app.router.add_route("*", f"/{stage}/@connections/{{id}}", self._manage)
        self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, self.host, self.port)
        self._loop.run_until_complete(site.start())
        self._loop.create_task(self._sweep())
        ready.set()
        self._loop.run_forever()

    async def _shutdown(self) -> None:
        for connection in list(self._connections.values()):
            await connection.socket.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _sweep(self) -> None:
        """Closes connections past API Gateway's idle timeout or longest duration."""
        while True:
            await asyncio.sleep(_SWEEP_EVERY)
            moment = time.monotonic()
            for connection in list(self._connections.values()):
                idle = moment - connection.last_active > IDLE_TIMEOUT
                if idle or moment - connection.opened > MAX_DURATION:
                    await connection.socket.close(code=1001, message=b"Going away")

    # ---- a page's connection ----------------------------------------------------------

    async def _open(self, request: web.Request) -> web.StreamResponse:
        connection_id = secrets.token_urlsafe(12)
        connected_at = self._now_ms()
        query = dict(request.query)
        headers = dict(request.headers)
        base = self._context(connection_id, "$connect", "CONNECT", connected_at, request)
        authorizer: dict[str, Any] | None = None
        if "$connect" in self.spec.authorizers:
            verdict = await self._authorize(base, query, headers)
            if isinstance(verdict, web.Response):
                return verdict
            authorizer = verdict
        event = {
            "headers": headers,
            "multiValueHeaders": {name: [value] for name, value in headers.items()},
            "queryStringParameters": query or None,
            "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} or None,
            "requestContext": {**base, **({"authorizer": authorizer} if authorizer else {})},
            "isBase64Encoded": False,
        }
        status = await self._run_route("$connect", event)
        if not 200 <= status < 300:
            return _refusal(status)
        socket = web.WebSocketResponse(max_msg_size=MAX_PAYLOAD)
        await socket.prepare(request)
        connection = _Connection(
            id=connection_id,
            socket=socket,
            connected_at_ms=connected_at,
            source_ip=base["identity"]["sourceIp"],
            user_agent=base["identity"]["userAgent"],
            authorizer=authorizer,
        )
        self._connections[connection_id] = connection
        try:
            async for frame in socket:
                connection.last_active = time.monotonic()
                if frame.type == WSMsgType.TEXT:
                    await self._on_frame(connection, frame.data)
                elif frame.type == WSMsgType.ERROR:
                    break
        finally:
            self._connections.pop(connection_id, None)
            await self._disconnected(connection, socket.close_code or 1005)
        return socket

    async def _authorize(
        self, base: dict[str, Any], query: dict[str, str], headers: dict[str, str]
    ) -> dict[str, Any] | web.Response:
        """The authorizer's context, or the refusal API Gateway would answer with."""
        authorizer = self.spec.authorizers["$connect"]
        if not all(_source_present(s, query, headers) for s in authorizer.identity_sources):
            return _refusal(401)
        method_arn = (
            f"arn:aws:execute-api:{self._region}:{ACCOUNT}:{self.spec.logical_id}"
            f"/{self.spec.stage}/$connect"
        )
        event = {
            "type": "REQUEST",
            "methodArn": method_arn,
            "headers": headers,
            "multiValueHeaders": {name: [value] for name, value in headers.items()},
            "queryStringParameters": query,
            "multiValueQueryStringParameters": {k: [v] for k, v in query.items()},
            "stageVariables": {},
            "requestContext": base,
        }
        invocation = await self._invoke(authorizer.function, event)
        if invocation.failed:
            message = str((invocation.error or {}).get("errorMessage", ""))
            return _refusal(401 if message == "Unauthorized" else 500)
        policy = invocation.payload or {}
        statements = policy.get("policyDocument", {}).get("Statement", [])
        allowed = any(
            s.get("Effect") == "Allow" and _covers(s.get("Resource"), method_arn)
            for s in statements
        ) and not any(s.get("Effect") == "Deny" for s in statements)
        if not allowed:
            return _refusal(403)
        return {"principalId": policy.get("principalId"), **(policy.get("context") or {})}

    async def _on_frame(self, connection: _Connection, data: str) -> None:
        route = self._route_of(data)
        request_id = uuid.uuid4().hex
        if route is None:
            await self._answer(connection, "Forbidden", request_id)
            return
        context = self._context(connection.id, route, "MESSAGE", connection.connected_at_ms)
        context.update(messageId=uuid.uuid4().hex, requestId=request_id)
        if connection.authorizer:
            context["authorizer"] = connection.authorizer
        event = {"requestContext": context, "body": data, "isBase64Encoded": False}
        status = await self._run_route(route, event)
        if status >= 500:
            await self._answer(connection, "Internal server error", request_id)

    def _route_of(self, data: str) -> str | None:
        """The route the selection expression picks: ``$request.body.<field>``'s value
        when it names a route, else ``$default`` if there is one."""
        field_name = self.spec.route_selection.removeprefix("$request.body.")
        try:
            body = json.loads(data)
        except json.JSONDecodeError:
            body = None
        picked = body.get(field_name) if isinstance(body, dict) else None
        if isinstance(picked, str) and picked in self.spec.routes:
            return picked
        return "$default" if "$default" in self.spec.routes else None

    async def _disconnected(self, connection: _Connection, code: int) -> None:
        context = self._context(
            connection.id, "$disconnect", "DISCONNECT", connection.connected_at_ms
        )
        context.update(disconnectStatusCode=code, disconnectReason="")
        if connection.authorizer:
            context["authorizer"] = connection.authorizer
        if "$disconnect" in self.spec.routes:
            await self._run_route(
                "$disconnect", {"requestContext": context, "isBase64Encoded": False}
            )

    async def _answer(self, connection: _Connection, message: str, request_id: str) -> None:
        body = {"message": message, "connectionId": connection.id, "requestId": request_id}
        await connection.socket.send_str(json.dumps(body))

    async def _run_route(self, route: str, event: dict[str, Any]) -> int:
        """The integration's status: a Lambda proxy's ``statusCode`` (200 when the function
        returns none), 500 when it failed."""
        function = self.spec.routes.get(route)
        if function is None:
            return 200
        invocation = await self._invoke(function, event)
        if invocation.failed:
            log.warning("%s route failed: %s", route, invocation.error)
            return 500
        payload = invocation.payload
        return int(payload.get("statusCode", 200)) if isinstance(payload, dict) else 200

    async def _invoke(self, function: str, event: dict[str, Any]) -> Any:
        # In a thread: the function may post back through the Management API meanwhile.
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self._functions[function].invoke, event)

    def _context(
        self,
        connection_id: str,
        route: str,
        kind: str,
        connected_at_ms: int,
        request: web.Request | None = None,
    ) -> dict[str, Any]:
        now_ms = self._now_ms()
        moment = datetime.fromtimestamp(now_ms / 1000, tz=UTC)
        return {
            "routeKey": route,
            "eventType": kind,
            "messageDirection": "IN",
            "stage": self.spec.stage,
            "connectedAt": connected_at_ms,
            "requestTimeEpoch": now_ms,
            "requestTime": moment.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestId": uuid.uuid4().hex,
            "extendedRequestId": uuid.uuid4().hex,
            "domainName": f"{self.host}:{self.port}",
            "connectionId": connection_id,
            "apiId": self.spec.logical_id,
            "identity": {
                "sourceIp": request.remote if request is not None else "127.0.0.1",
                "userAgent": request.headers.get("User-Agent", "") if request else "",
            },
        }

    # ---- the Management API -----------------------------------------------------------

    async def _manage(self, request: web.Request) -> web.Response:
        connection = self._connections.get(request.match_info["id"])
        if connection is None or connection.socket.closed:
            return _error(410, "GoneException")
        if request.method == "POST":
            data = await request.read()
            if len(data) > MAX_PAYLOAD:
                return _error(413, "PayloadTooLargeException")
            await connection.socket.send_str(data.decode("utf-8"))
            connection.last_active = time.monotonic()
            self.posts += 1
            return web.Response(status=200)
        if request.method == "GET":
            return web.json_response(
                {
                    "ConnectedAt": _iso_ms(connection.connected_at_ms),
                    "LastActiveAt": _iso_ms(self._now_ms()),
                    "Identity": {
                        "SourceIp": connection.source_ip,
                        "UserAgent": connection.user_agent,
                    },
                }
            )
        if request.method == "DELETE":
            await connection.socket.close(code=1000)
            return web.Response(status=204)
        return _error(405, "MethodNotAllowed")


def _source_present(source: str, query: dict[str, str], headers: dict[str, str]) -> bool:
    """Whether a request carries an identity source (``route.request.querystring.x`` or
    ``route.request.header.x``); an empty value counts as absent, as on AWS."""
    for prefix, values in (
        ("route.request.querystring.", query),
        ("route.request.header.", {k.lower(): v for k, v in headers.items()}),
    ):
        if source.startswith(prefix):
            name = source.removeprefix(prefix)
            return bool(values.get(name if values is query else name.lower()))
    return True


def _covers(resource: object, arn: str) -> bool:
    resources = resource if isinstance(resource, list) else [resource]
    for pattern in resources:
        if isinstance(pattern, str) and (
            pattern == arn or (pattern.endswith("*") and arn.startswith(pattern[:-1]))
        ):
            return True
    return False


def _refusal(status: int) -> web.Response:
    reasons = {401: "Unauthorized", 403: "Forbidden", 500: "Internal server error"}
    return web.json_response({"message": reasons.get(status, "Refused")}, status=status)


def _error(status: int, code: str) -> web.Response:
    return web.json_response(
        {"message": None, "__type": code}, status=status, headers={"x-amzn-ErrorType": code}
    )


def _iso_ms(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")
