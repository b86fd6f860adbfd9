"""The local WebSocket API (local/websocket.py) serving template.yaml's SocketApi over real
sockets, with a scripted function behind it: API Gateway's authorizer outcomes (401
without the identity source or on "Unauthorized", 403 on Deny), the authorizer's context
on every later route, route selection by the body's action, $disconnect on close, and
the Management API's answers (a post reaches the page, 410 for a closed one, 413 over
128 KB)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, cast

import aiohttp
import pytest
import requests

from local.runtime import FunctionPool, Invocation
from local.template import Template
from local.websocket import MAX_PAYLOAD, SocketApiServer
from tests.integration._harness import WRITE_KEY

EPOCH_MS = 1_795_860_000_000
CONTEXT = {"userId": "ada", "anonymousId": "anon-7"}


def allow(event: dict[str, Any]) -> Invocation:
    """The Socket function's answers: Allow with the identity for the authorizer, 200 else."""
    if event.get("type") == "REQUEST":
        statement = {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": "*"}
        policy = {
            "principalId": "u:ada",
            "policyDocument": {"Version": "2012-10-17", "Statement": [statement]},
            "context": CONTEXT,
        }
        return Invocation(payload=policy, error=None, duration_ms=1.0)
    return Invocation(payload={"statusCode": 200, "body": "ok"}, error=None, duration_ms=1.0)


@dataclass
class ScriptedFunction:
    """Stands in for the Socket function's pool: records each event, answers by script."""

    answer: Callable[[dict[str, Any]], Invocation] = allow
    events: list[dict[str, Any]] = field(default_factory=list)

    def invoke(self, event: dict[str, Any]) -> Invocation:
        self.events.append(event)
        return self.answer(event)

    def routes(self) -> list[str]:
        return [
            "authorizer" if e.get("type") == "REQUEST" else e["requestContext"]["routeKey"]
            for e in self.events
        ]

    def wait_for(self, route: str, timeout: float = 5.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in list(self.events):
                is_route = event.get("type") != "REQUEST"  # not the authorizer's
                if is_route and event["requestContext"]["routeKey"] == route:
                    return event
            time.sleep(0.01)
        raise AssertionError(f"no {route} event within {timeout} s: {self.routes()}")


@dataclass
class Api:
    server: SocketApiServer
    function: ScriptedFunction

    @property
    def url(self) -> str:
        return self.server.url

    def management(self, connection: str) -> str:
        return f"http://{self.server.host}:{self.server.port}/live/@connections/{connection}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def api(template: Template) -> Iterator[Api]:
    (spec,) = template.socket_apis
    function = ScriptedFunction()
    functions = cast(dict[str, FunctionPool], {"Socket": function})
    server = SocketApiServer(
        spec, functions, lambda: EPOCH_MS, "127.0.0.1", _free_port(), "us-east-1"
    )
    server.start()
    yield Api(server, function)
    server.stop()


def handshake_status(url: str) -> int:
    """The status a WebSocket handshake to ``url`` is answered with (101: opened)."""

    async def run() -> int:
        async with aiohttp.ClientSession() as session:
            try:
                async with session.ws_connect(url):
                    return 101
            except aiohttp.WSServerHandshakeError as refused:
                return refused.status

    return asyncio.run(run())


@asynccontextmanager
async def open_page(api: Api) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    """A page's WebSocket, opened with the write key as ada."""
    async with aiohttp.ClientSession() as session, session.ws_connect(page_url(api)) as ws:
        yield ws


def post(api: Api, frame: str) -> int:
    """The Management API's status for ``frame`` posted to the page that connected."""
    connect = api.function.wait_for("$connect")
    url = api.management(connect["requestContext"]["connectionId"])
    return requests.post(url, data=frame.encode(), timeout=5).status_code


def page_url(api: Api, **query: str) -> str:
    query = {"writeKey": WRITE_KEY, "userId": "ada", **query}
    return api.url + "?" + "&".join(f"{k}={v}" for k, v in query.items() if v)


# ---- opening a connection ------------------------------------------------------------------


def test_a_page_without_the_write_key_is_refused_401_without_the_authorizer(api: Api) -> None:
    """No writeKey (the authorizer's identity source): 401, and the function never runs."""
    # given
    url = page_url(api, writeKey="")

    # when
    status = handshake_status(url)

    # then
    assert status == 401
    assert api.function.events == []


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        (Invocation(None, {"errorMessage": "Unauthorized"}, 1.0), 401),
        (Invocation(None, {"errorMessage": "KeyError: 'x'"}, 1.0), 500),
        (
            Invocation(
                {
                    "principalId": "anonymous",
                    "policyDocument": {"Statement": [{"Effect": "Deny", "Resource": "*"}]},
                },
                None,
                1.0,
            ),
            403,
        ),
    ],
    ids=["raises Unauthorized", "fails otherwise", "denies"],
)
def test_the_authorizers_answer_decides_the_status(
    api: Api, answer: Invocation, status: int
) -> None:
    """The authorizer raising "Unauthorized" is 401, failing otherwise 500, a Deny 403;
    $connect's own route never runs."""
    # given
    api.function.answer = lambda event: answer

    # when
    refused = handshake_status(page_url(api))

    # then
    assert refused == status
    assert api.function.routes() == ["authorizer"]


def test_a_connect_route_answering_400_refuses_the_connection(api: Api) -> None:
    """$connect's integration answering outside 2xx refuses the handshake with its status."""
    # given
    api.function.answer = lambda event: (
        allow(event)
        if event.get("type") == "REQUEST"
        else Invocation({"statusCode": 400}, None, 1.0)
    )

    # when
    status = handshake_status(page_url(api))

    # then
    assert status == 400


def test_the_authorizer_sees_the_query_and_the_method_arn(api: Api) -> None:
    """The REQUEST authorizer gets the query string and the $connect method ARN."""
    # given
    url = page_url(api, anonymousId="anon-7")

    # when
    handshake_status(url)

    # then
    authorizer = api.function.events[0]
    assert authorizer["queryStringParameters"] == {
        "writeKey": WRITE_KEY,
        "userId": "ada",
        "anonymousId": "anon-7",
    }
    assert authorizer["methodArn"] == (
        "arn:aws:execute-api:us-east-1:123456789012:SocketApi/live/$connect"
    )


# ---- an open connection --------------------------------------------------------------------


def test_frames_run_their_route_with_the_authorizers_context(api: Api) -> None:
    """$connect and each frame's route (picked by action) get the authorizer's principal
    and context, the stack's clock as request time; closing runs $disconnect with it too."""

    # given
    async def page() -> None:
        async with open_page(api) as ws:
            await ws.send_str('{"action":"sync"}')
            await asyncio.to_thread(api.function.wait_for, "sync")

    # when
    asyncio.run(page())

    # then
    api.function.wait_for("$disconnect")
    assert api.function.routes() == ["authorizer", "$connect", "sync", "$disconnect"]
    for event in api.function.events[1:]:
        context = event["requestContext"]
        assert context["authorizer"] == {"principalId": "u:ada", **CONTEXT}
        assert context["requestTimeEpoch"] == EPOCH_MS
    assert api.function.events[2]["body"] == '{"action":"sync"}'


def test_a_frame_naming_no_route_is_answered_forbidden(api: Api) -> None:
    """A frame whose action is no route (and no $default) is answered Forbidden, and no
    function runs for it."""

    # given
    async def page() -> dict[str, Any]:
        async with open_page(api) as ws:
            await ws.send_str('{"action":"hello"}')
            answer: dict[str, Any] = await ws.receive_json(timeout=5)
            return answer

    # when
    answer = asyncio.run(page())

    # then
    assert answer["message"] == "Forbidden"
    assert "hello" not in api.function.routes()


def test_a_management_api_post_reaches_the_page(api: Api) -> None:
    """A POST to @connections/<id> is answered 200 and reaches that page as a text frame."""

    # given: a page open; when: a frame posted to it
    async def page() -> tuple[int, str]:
        async with open_page(api) as ws:
            status = await asyncio.to_thread(post, api, '{"type":"show"}')
            return status, await ws.receive_str(timeout=5)

    # when
    status, received = asyncio.run(page())

    # then
    assert (status, received) == (200, '{"type":"show"}')


def test_a_post_to_a_closed_connection_is_gone(api: Api) -> None:
    """A connection that is not open answers 410 GoneException, as boto3 reads it."""
    # given: no page open

    # when
    response = requests.post(api.management("nobody"), data=b"{}", timeout=5)

    # then
    assert response.status_code == 410
    assert response.headers["x-amzn-ErrorType"] == "GoneException"


def test_a_post_over_128_kb_is_refused_413(api: Api) -> None:
    """A payload over API Gateway's 128 KB is 413 PayloadTooLargeException."""

    # given: a page open; when: a frame over the limit posted to it
    async def page() -> int:
        async with open_page(api):
            return await asyncio.to_thread(post, api, "x" * (MAX_PAYLOAD + 1))

    # when
    status = asyncio.run(page())

    # then
    assert status == 413
