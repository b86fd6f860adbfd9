"""In-app messages over the local WebSocket API, spoken by a plain WebSocket client: the
protocol in docs/delivery.md, without a browser (tests/e2e/test_browser_in_app.py has one)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlencode

import aiohttp
import boto3
import pytest
from botocore.exceptions import ClientError

from tests.e2e.conftest import StackClient

pytestmark = pytest.mark.e2e

T = TypeVar("T")
FRAME_WAIT = 10.0  # seconds a frame may take to arrive
QUIET_WAIT = 1.0  # seconds of silence that mean "nothing more is coming"


def _run(work: Callable[[aiohttp.ClientSession], Awaitable[T]]) -> T:
    async def main() -> T:
        async with aiohttp.ClientSession() as session:
            return await work(session)

    return asyncio.run(main())


def _url(stack: StackClient, **query: str) -> str:
    assert stack.websocket_url, "the stack's health names no websocketUrl"
    return f"{stack.websocket_url}?{urlencode(query)}"


def _page_url(stack: StackClient, user: str) -> str:
    return _url(stack, writeKey=stack.write_key, userId=user, anonymousId=f"anon-{user}")


async def _next_frame(socket: aiohttp.ClientWebSocketResponse, wait: float) -> dict[str, Any]:
    message = await socket.receive(timeout=wait)
    assert message.type == aiohttp.WSMsgType.TEXT, message
    frame: dict[str, Any] = json.loads(message.data)
    return frame


async def _silent(socket: aiohttp.ClientWebSocketResponse) -> bool:
    try:
        await socket.receive(timeout=QUIET_WAIT)
    except TimeoutError:
        return True
    return False


def _engaged(stack: StackClient, user: str, **properties: Any) -> None:
    """Two minutes of attention on a product page: what fires product_offer."""
    body = {
        "userId": user,
        "type": "track",
        "event": "Page Engaged",
        "properties": {
            "product_id": "sku-1",
            "name": "Trail Runner",
            "active_seconds": 120,
            "path": "/products/sku-1",
            **properties,
        },
    }
    assert stack.post("/v1/track", body).status_code == 200


async def _fire_while_open(
    stack: StackClient, socket: aiohttp.ClientWebSocketResponse, user: str, **properties: Any
) -> dict[str, Any]:
    await asyncio.to_thread(_engaged, stack, user, **properties)
    await asyncio.to_thread(stack.drain)
    return await _next_frame(socket, FRAME_WAIT)


def _user() -> str:
    return f"inapp-{uuid.uuid4().hex[:10]}"


def _handshake_status(url: str) -> int:
    """The status a WebSocket handshake to ``url`` is answered with (101: accepted)."""

    async def connect(session: aiohttp.ClientSession) -> int:
        try:
            async with session.ws_connect(url):
                return 101
        except aiohttp.WSServerHandshakeError as refused:
            return refused.status

    return _run(connect)


def test_a_wrong_write_key_is_refused_401(stack: StackClient):
    """A page connecting with an unknown write key is refused 401, before any route runs."""

    # when
    status = _handshake_status(_url(stack, writeKey="wrong", userId=_user()))

    # then
    assert status == 401


def test_no_write_key_is_refused_401(stack: StackClient):
    """Without the write key (the authorizer's identity source) the answer is 401."""

    # when
    status = _handshake_status(_url(stack, userId=_user()))

    # then
    assert status == 401


def test_no_identity_is_refused_403(stack: StackClient):
    """The right write key but neither userId nor anonymousId: 403 (the authorizer denies)."""

    # when
    status = _handshake_status(_url(stack, writeKey=stack.write_key))

    # then
    assert status == 403


def test_a_refused_page_stores_no_connection(stack: StackClient):
    """A refused connection leaves nothing in the table: a later fire finds no page."""
    # given
    user = _user()

    async def refused_then_fire(session: aiohttp.ClientSession) -> dict[str, Any]:
        with pytest.raises(aiohttp.WSServerHandshakeError):
            await session.ws_connect(_url(stack, writeKey="wrong", userId=user))
        await asyncio.to_thread(_engaged, stack, user)
        await asyncio.to_thread(stack.drain)
        return await asyncio.to_thread(lambda: stack.get(f"/_local/explain/{user}").json())

    # when
    explained = _run(refused_then_fire)

    # then
    sent = [d for d in explained["decisions"] if d["outcome"] == "sent"]
    assert sent
    assert "no page open" in sent[0]["reason"]


def test_a_fire_reaches_the_open_page_with_its_display_rules(stack: StackClient):
    """A product_offer decided while the page is open is pushed to it at once, with the
    trigger's display rules and expiry."""
    # given
    user = _user()

    async def scenario(session: aiohttp.ClientSession) -> dict[str, Any]:
        async with session.ws_connect(_page_url(stack, user)) as socket:
            await socket.send_json({"action": "sync"})
            # when
            return await _fire_while_open(stack, socket, user)

    frame = _run(scenario)

    # then
    assert frame["type"] == "message"
    assert frame["trigger"] == "product_offer"
    assert frame["display"] == {
        "delay": 5.0,
        "scroll": 50.0,
        "match": "any",
        "exclude": ["/checkout*"],
    }
    assert "Trail Runner" in frame["html"]


def test_event_data_is_escaped_in_the_message(stack: StackClient):
    """A product name holding markup arrives as text, never as an element."""
    # given
    user = _user()
    hostile = '<img src=x onerror="alert(1)">'

    async def scenario(session: aiohttp.ClientSession) -> dict[str, Any]:
        async with session.ws_connect(_page_url(stack, user)) as socket:
            await socket.send_json({"action": "sync"})
            # when
            return await _fire_while_open(stack, socket, user, name=hostile)

    frame = _run(scenario)

    # then
    assert "&lt;img src=x onerror=" in frame["html"]
    assert "<img" not in frame["html"]


def test_the_first_page_to_ack_shows_it_and_the_other_drops_it(stack: StackClient):
    """Two tabs of one person get the message; the one that acks first hears "show",
    the other "drop"."""
    # given
    user = _user()

    async def scenario(session: aiohttp.ClientSession) -> tuple[dict[str, Any], ...]:
        async with (
            session.ws_connect(_page_url(stack, user)) as first,
            session.ws_connect(_page_url(stack, user)) as second,
        ):
            message = await _fire_while_open(stack, first, user)
            await _next_frame(second, FRAME_WAIT)  # the same message, in the other tab
            # when
            await first.send_json({"action": "ack", "fireId": message["fireId"]})
            return (
                message,
                await _next_frame(first, FRAME_WAIT),
                await _next_frame(second, FRAME_WAIT),
            )

    message, to_first, to_second = _run(scenario)

    # then
    assert to_first == {"type": "show", "fireId": message["fireId"]}
    assert to_second == {"type": "drop", "fireId": message["fireId"]}


def test_a_second_ack_of_a_shown_message_is_dropped(stack: StackClient):
    """Once one tab showed a message, another tab asking for it hears "drop"."""
    # given
    user = _user()

    async def scenario(session: aiohttp.ClientSession) -> dict[str, Any]:
        async with session.ws_connect(_page_url(stack, user)) as socket:
            message = await _fire_while_open(stack, socket, user)
            await socket.send_json({"action": "ack", "fireId": message["fireId"]})
            await _next_frame(socket, FRAME_WAIT)  # show
            # when
            await socket.send_json({"action": "ack", "fireId": message["fireId"]})
            return await _next_frame(socket, FRAME_WAIT)

    # then
    assert _run(scenario)["type"] == "drop"


def test_a_message_fired_with_no_page_open_arrives_at_the_next_page(stack: StackClient):
    """Fired while the person had no page open, the message is kept and the next page's
    sync brings it."""
    # given
    user = _user()
    _engaged(stack, user)
    stack.drain()

    async def scenario(session: aiohttp.ClientSession) -> dict[str, Any]:
        async with session.ws_connect(_page_url(stack, user)) as socket:
            # when
            await socket.send_json({"action": "sync"})
            return await _next_frame(socket, FRAME_WAIT)

    frame = _run(scenario)

    # then
    assert frame["type"] == "message"
    assert frame["trigger"] == "product_offer"


def test_a_kept_message_is_not_delivered_after_it_expires(stack: StackClient):
    """A message nobody saw within its trigger's expires (1 d) is not delivered later."""
    # given
    user = _user()
    _engaged(stack, user)
    stack.drain()
    stack.post("/_local/clock/advance", {"seconds": 86_400 + 60}, auth=False)

    async def scenario(session: aiohttp.ClientSession) -> bool:
        async with session.ws_connect(_page_url(stack, user)) as socket:
            # when
            await socket.send_json({"action": "sync"})
            return await _silent(socket)

    # then
    assert _run(scenario)


def test_an_unknown_action_is_answered_forbidden(stack: StackClient):
    """A frame that picks no route gets API Gateway's answer, and the socket stays open."""
    # given
    user = _user()

    async def scenario(session: aiohttp.ClientSession) -> tuple[dict[str, Any], bool]:
        async with session.ws_connect(_page_url(stack, user)) as socket:
            # when
            await socket.send_str('{"action": "launch"}')
            answer = await _next_frame(socket, FRAME_WAIT)
            return answer, not socket.closed

    answer, still_open = _run(scenario)

    # then
    assert answer["message"] == "Forbidden"
    assert still_open


def test_the_demo_offers_after_30_seconds_of_attention(demo_stack: StackClient):
    """`make run` loads the demo's triggers: 30 s of attention on a product page is enough
    for the offer there, where the shipped trigger waits for 120 s."""
    # given
    user = _user()

    async def scenario(session: aiohttp.ClientSession) -> dict[str, Any]:
        async with session.ws_connect(_page_url(demo_stack, user)) as socket:
            await socket.send_json({"action": "sync"})
            # when
            return await _fire_while_open(demo_stack, socket, user, active_seconds=30)

    frame = _run(scenario)

    # then
    assert frame["type"] == "message"
    assert frame["trigger"] == "product_offer"


def test_the_shipped_offer_waits_for_120_seconds(stack: StackClient):
    """With the shipped triggers, 30 s of attention is not enough for the offer."""
    # given
    user = _user()
    _engaged(stack, user, active_seconds=30)

    # when
    stack.drain()

    # then
    decisions = stack.get(f"/_local/explain/{user}").json()["decisions"]
    offers = [d["outcome"] for d in decisions if d["trigger"] == "product_offer"]
    assert offers == ["not_matched"]


def _management(stack: StackClient) -> Any:
    """boto3's Management API client, pointed where the functions' is: the API's own host."""
    assert stack.websocket_url
    endpoint = stack.websocket_url.replace("ws://", "http://", 1)
    return boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def test_posting_to_a_closed_connection_is_gone(stack: StackClient):
    """PostToConnection for a connection that is not open answers 410 GoneException."""
    # given
    client = _management(stack)

    # when
    with pytest.raises(ClientError) as refused:
        client.post_to_connection(ConnectionId="no-such-connection", Data=b"{}")

    # then
    assert refused.value.response["Error"]["Code"] == "GoneException"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 410


def test_posting_more_than_128_kb_is_refused(stack: StackClient):
    """A payload over 128 KB to an open connection is 413 PayloadTooLargeException, and the
    connection stays open."""
    # given
    user = _user()
    client = _management(stack)

    async def scenario(session: aiohttp.ClientSession) -> tuple[str, bool]:
        async with session.ws_connect(_page_url(stack, user)) as socket:
            connection = await asyncio.to_thread(_only_connection, stack, user)
            # when
            try:
                await asyncio.to_thread(
                    client.post_to_connection,
                    ConnectionId=connection,
                    Data=b"x" * (128 * 1024 + 1),
                )
            except ClientError as refused:
                return refused.response["Error"]["Code"], not socket.closed
            return "accepted", not socket.closed

    code, still_open = _run(scenario)

    # then
    assert code == "PayloadTooLargeException"
    assert still_open


def _only_connection(stack: StackClient, user: str) -> str:
    """The connection id the stack recorded for the user's one open page."""
    (connection,) = stack.connections(user)
    return connection
