"""sdk/nudge.js in a real browser (headless Chromium) against the local stack: delivery,
consent, bad arguments, attention, and in-app display against a WebSocket server that
speaks the contract (docs/sdk.md, "In-app messages")."""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
import rjsmin  # type: ignore[import-untyped]
from aiohttp import WSMsgType, web
from playwright.sync_api import Browser, BrowserContext, Page, Request, Route

from tests.e2e.browser import launch_chromium
from tests.e2e.conftest import FIXTURES, REPO, StackClient

pytestmark = pytest.mark.e2e

SDK = REPO / "sdk" / "nudge.js"
NODE_MODULES = REPO / "tests" / "e2e" / "npm" / "node_modules"
SIZE_BUDGET = 6144  # bytes, minified and gzipped
WAIT = 10.0  # seconds any eventual condition gets


# ---- the shop's origin: the fixture pages, the SDK and node_modules ---------------------


class _SiteHandler(SimpleHTTPRequestHandler):
    """Serves /sdk/nudge.js from the repository, /npm/... from tests/e2e/npm/node_modules
    and any other path by its file name from fixtures/browser (so /checkout/sdk.html is
    sdk.html on a checkout path)."""

    def translate_path(self, path: str) -> str:
        route = urlsplit(path).path
        if route == "/sdk/nudge.js":
            return str(SDK)
        if route.startswith("/npm/"):
            return str(NODE_MODULES / route.removeprefix("/npm/"))
        return str(FIXTURES / "browser" / Path(route).name)

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve_site() -> Iterator[str]:
    """A static site on its own port (another origin than the stack's), until closed."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SiteHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="shop-site", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    yield from serve_site()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from launch_chromium()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    opened = browser.new_context()
    opened.set_default_timeout(15_000)
    yield opened
    opened.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture
def user() -> str:
    return f"sdk-{uuid.uuid4().hex[:10]}"


def sdk_url(
    site: str,
    options: dict[str, Any] | None,
    *,
    path: str = "/sdk.html",
    tall: float | None = None,
    user: str | None = None,
) -> str:
    query = "o=" + quote(json.dumps(options)) if options is not None else ""
    if tall is not None:
        query += f"&tall={tall}"
    if user is not None:
        query += "&user=" + quote(user)
    return f"{site}{path}?{query}"


def options_for(stack: StackClient, **extra: Any) -> dict[str, Any]:
    return {"host": stack.base_url, "writeKey": stack.write_key, **extra}


def wait_until(check: Callable[[], Any], timeout: float = WAIT, message: str = "") -> Any:
    """Polls ``check`` until it returns something truthy (bounded); returns that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting: {message or check}")
        time.sleep(0.1)


def stored(stack: StackClient, user: str, count: int) -> list[dict[str, Any]]:
    """A user's stored events once at least ``count`` are there (bounded wait)."""
    found: list[dict[str, Any]] = []

    def enough() -> bool:
        found[:] = stack.events(user)
        return len(found) >= count

    wait_until(enough, message=f"{count} events stored for {user}")
    return found


def named(events: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [event for event in events if event.get("event") == name]


def batches(requests: list[Request]) -> list[list[dict[str, Any]]]:
    """The messages of each /v1/b request seen, in order."""
    return [list(json.loads(request.post_data or "{}")["batch"]) for request in requests]


def beacon_requests(page: Page, stack: StackClient) -> list[Request]:
    seen: list[Request] = []
    page.on("request", lambda r: seen.append(r) if r.url.startswith(stack.url("/v1/b")) else None)
    return seen


def hide(page: Page) -> None:
    """The tab goes to the background, as far as the page can tell."""
    page.evaluate(
        """() => {
            const hidden = (value) => ({configurable: true, get: () => value});
            Object.defineProperty(document, "visibilityState", hidden("hidden"));
            Object.defineProperty(document, "hidden", hidden(true));
            document.dispatchEvent(new Event("visibilitychange"));
        }"""
    )


def show(page: Page) -> None:
    page.evaluate(
        """() => {
            delete document.visibilityState;
            delete document.hidden;
            document.dispatchEvent(new Event("visibilitychange"));
        }"""
    )


def active_seconds(page: Page) -> int:
    return int(page.evaluate("() => { nudge.account(); return nudge.activeSeconds(); }"))


# ---- size -------------------------------------------------------------------------------


def test_the_sdk_is_at_most_6_kb_minified_and_gzipped():
    """sdk/nudge.js minified (rjsmin, no renaming) and gzipped fits the 6 KB budget."""
    # given
    source = SDK.read_text()

    # when
    size = len(gzip.compress(rjsmin.jsmin(source).encode(), compresslevel=9))

    # then
    assert size <= SIZE_BUDGET


# ---- delivery ---------------------------------------------------------------------------


def test_events_tracked_just_before_navigating_away_are_all_stored(
    stack: StackClient, site: str, page: Page, user: str
):
    """Events queued but not yet flushed go out with the page (sendBeacon on pagehide)."""
    # given
    page.goto(sdk_url(site, options_for(stack, flushInterval=60_000), user=user))

    # when
    ids = page.evaluate("() => [1, 2, 3, 4, 5].map((n) => nudge.track('Clicked ' + n))")
    page.goto(site + "/next.html")

    # then
    events = stored(stack, user, 6)
    assert {e["messageId"] for e in events} >= set(ids)
    assert [e["properties"]["mark"] for e in named(events, "Page Engaged")] == ["leave"]


def test_events_queued_while_the_api_is_unreachable_are_delivered_once_it_returns(
    stack: StackClient, site: str, page: Page, user: str
):
    """With the API unreachable, events wait in the queue; when it is back, each is stored."""
    # given
    page.route(stack.url("/v1/**"), lambda route: route.abort())
    page.goto(sdk_url(site, options_for(stack, flushInterval=100), user=user))
    ids = page.evaluate("() => [1, 2, 3].map((n) => nudge.track('Offline ' + n))")
    wait_until(lambda: page.evaluate("() => nudge.stats().retries") >= 2, message="retries")
    assert page.evaluate("() => nudge.stats().pending") == 3

    # when
    page.unroute(stack.url("/v1/**"))
    page.evaluate("() => nudge.flush()")

    # then
    events = stored(stack, user, 3)
    assert sorted(e["messageId"] for e in events) == sorted(ids)
    assert page.evaluate("() => nudge.stats().pending") == 0


def test_events_queued_offline_survive_a_reload(
    stack: StackClient, site: str, page: Page, user: str
):
    """The queue is kept in localStorage: events of a page left offline are sent by the next."""
    # given
    page.route(stack.url("/v1/**"), lambda route: route.abort())
    url = sdk_url(site, options_for(stack, flushInterval=100, marks=[]), user=user)
    page.goto(url)
    ids = page.evaluate("() => [1, 2].map((n) => nudge.track('Offline ' + n))")
    wait_until(lambda: page.evaluate("() => nudge.stats().retries") >= 1, message="a failure")
    page.goto(site + "/next.html")

    # when
    page.unroute(stack.url("/v1/**"))
    page.goto(url)

    # then
    events = stored(stack, user, 3)
    assert set(ids) <= {e["messageId"] for e in events}


def test_a_batch_answered_500_is_retried_with_the_same_message_ids(
    stack: StackClient, site: str, page: Page, user: str
):
    """A 5xx is retried (with backoff) and the retry carries the same messageIds."""
    # given
    answers = [503]

    def first_fails(route: Route) -> None:
        if answers:
            route.fulfill(
                status=answers.pop(), body="{}", headers={"Access-Control-Allow-Origin": "*"}
            )
        else:
            route.continue_()

    page.route(stack.url("/v1/b*"), first_fails)
    seen = beacon_requests(page, stack)
    page.goto(sdk_url(site, options_for(stack, flushInterval=100, marks=[]), user=user))

    # when
    ids = page.evaluate("() => [nudge.track('Retried 1'), nudge.track('Retried 2')]")
    # (route handlers run while playwright is called: poll the page, not only the stack)
    wait_until(lambda: page.evaluate("() => nudge.stats().delivered") == 2, message="delivered")

    # then
    events = stored(stack, user, 2)
    assert sorted(e["messageId"] for e in events) == sorted(ids)
    sent = batches(seen)
    assert len(sent) == 2
    assert [m["messageId"] for m in sent[0]] == [m["messageId"] for m in sent[1]]


def test_a_batch_answered_400_is_dropped_not_retried(stack: StackClient, site: str, page: Page):
    """A 4xx means the batch will never be accepted: one request, counted as rejected."""
    # given
    page.route(
        stack.url("/v1/b*"),
        lambda route: route.fulfill(
            status=400, body="{}", headers={"Access-Control-Allow-Origin": "*"}
        ),
    )
    seen = beacon_requests(page, stack)
    page.goto(sdk_url(site, options_for(stack, flushInterval=100, marks=[])))

    # when
    page.evaluate("() => { nudge.track('Refused 1'); nudge.track('Refused 2'); }")
    wait_until(lambda: page.evaluate("() => nudge.stats().rejected") == 2, message="rejected")
    page.wait_for_timeout(2_500)  # longer than the first retry's backoff

    # then
    assert len(seen) == 1
    assert page.evaluate("() => nudge.stats().pending") == 0


def test_a_full_offline_queue_drops_the_oldest_and_counts_them(
    stack: StackClient, site: str, page: Page, user: str
):
    """Past maxQueue the oldest messages go; stats() says how many; the newest are delivered."""
    # given
    page.route(stack.url("/v1/**"), lambda route: route.abort())
    page.goto(sdk_url(site, options_for(stack, maxQueue=3, marks=[]), user=user))

    # when
    ids = page.evaluate("() => [1, 2, 3, 4, 5].map((n) => nudge.track('Queued ' + n))")

    # then
    assert page.evaluate("() => nudge.stats()")["dropped"] == 2
    page.unroute(stack.url("/v1/**"))
    page.evaluate("() => nudge.flush()")
    events = stored(stack, user, 3)
    assert sorted(e["messageId"] for e in events) == sorted(ids[2:])


def test_consent_pending_sends_and_stores_nothing_until_granted(
    stack: StackClient, site: str, page: Page, user: str
):
    """With consent pending, calls are ignored and localStorage stays empty; after
    consent(true) the next calls are delivered."""
    # given
    seen = beacon_requests(page, stack)
    page.goto(sdk_url(site, options_for(stack, consent="pending", flushInterval=100, marks=[])))

    # when
    page.evaluate(f"() => {{ nudge.identify({json.dumps(user)}); nudge.track('Before'); }}")
    page.evaluate("() => nudge.flush()")
    page.wait_for_timeout(300)

    # then
    assert seen == []
    keys = page.evaluate("() => Object.keys(localStorage).filter((k) => k !== 'nudge.userId')")
    assert keys == []
    page.evaluate(f"() => {{ nudge.consent(true); nudge.identify({json.dumps(user)}); }}")
    page.evaluate("() => nudge.track('After')")
    page.evaluate("() => nudge.flush()")
    events = stored(stack, user, 2)
    assert sorted(str(e.get("event") or e["type"]) for e in events) == ["After", "identify"]


@pytest.mark.parametrize(
    "call",
    [
        "nudge.track(42)",
        "nudge.track('Ok', 'not an object')",
        "nudge.identify()",
        "nudge.productViewed('mug')",
        "nudge.productAdded({name: 'no id'})",
        "nudge.productViewed({product_id: 'p1', price: 'cheap'})",
        "nudge.orderCompleted({value: 3})",
        "nudge.consent('yes')",
    ],
)
def test_a_bad_argument_logs_a_warning_and_does_nothing(
    stack: StackClient, site: str, page: Page, call: str
):
    """A wrong call warns on the console, returns without throwing and queues nothing."""
    # given
    warnings: list[str] = []
    page.on("console", lambda m: warnings.append(m.text) if m.type == "warning" else None)
    page.goto(sdk_url(site, options_for(stack, flushInterval=60_000, marks=[])))

    # when
    outcome = page.evaluate(
        f"() => {{ try {{ {call}; return 'ok'; }} catch (e) {{ return 'threw'; }} }}"
    )

    # then
    assert outcome == "ok"
    assert page.evaluate("() => nudge.stats().queued") == 0
    wait_until(lambda: warnings, message="a console warning")
    assert warnings[0].startswith("nudge: ")


def test_missing_options_give_an_inert_instance_not_an_exception(site: str, page: Page):
    """new Nudge({}) warns and returns an object whose methods do nothing."""
    # given
    page.goto(sdk_url(site, None))

    # when
    outcome = page.evaluate(
        "() => { const n = new Nudge({}); n.track('x'); n.page(); return n.stats().queued; }"
    )

    # then
    assert outcome == 0


def test_blocked_local_storage_degrades_to_memory(
    stack: StackClient, site: str, context: BrowserContext, user: str
):
    """When reading localStorage throws, ids live in memory and events are still delivered."""
    # given
    context.add_init_script(
        """Object.defineProperty(window, "localStorage", {
            get() { throw new DOMException("blocked", "SecurityError"); } });"""
    )
    page = context.new_page()
    page.goto(sdk_url(site, options_for(stack, flushInterval=100, marks=[])))

    # when
    first, second = page.evaluate("() => [nudge.anonymousId(), nudge.anonymousId()]")
    page.evaluate(f"() => {{ nudge.identify({json.dumps(user)}); nudge.track('No storage'); }}")

    # then
    assert first == second
    events = stored(stack, user, 2)
    assert {e["anonymousId"] for e in events} == {first}


def test_the_ecommerce_helpers_send_segment_v2_events(
    stack: StackClient, site: str, page: Page, user: str
):
    """productViewed/Added/Removed, checkoutStarted and orderCompleted send v2 events."""
    # given
    page.goto(sdk_url(site, options_for(stack, flushInterval=60_000, marks=[]), user=user))
    mug = {"product_id": "mug-1", "sku": "MUG-1", "name": "Mug", "price": 12.5, "brand": "Clay"}
    order = {"order_id": "o-1", "cart_id": "c-1", "revenue": 25, "currency": "EUR"}

    # when
    page.evaluate(
        """([mug, order]) => {
            nudge.productViewed(mug);
            nudge.productAdded(mug, {cart_id: "c-1", quantity: 2});
            nudge.productRemoved(mug, {cart_id: "c-1", quantity: 1});
            nudge.checkoutStarted({...order, products: [mug]});
            nudge.orderCompleted({...order, products: [mug]});
            return nudge.flush();
        }""",
        [mug, order],
    )

    # then
    events = {e["event"]: e["properties"] for e in stored(stack, user, 5)}
    assert events["Product Viewed"] == mug
    assert events["Product Added"] == {**mug, "cart_id": "c-1", "quantity": 2}
    assert events["Product Removed"]["quantity"] == 1
    assert events["Checkout Started"]["products"] == [mug]
    assert events["Order Completed"] == {**order, "value": 25, "products": [mug]}


def test_reset_gives_a_new_anonymous_id_and_forgets_the_user(site: str, page: Page):
    """After reset() the person is a new anonymous visitor."""
    # given
    page.goto(sdk_url(site, {"host": "http://127.0.0.1:9", "writeKey": "k"}))
    before = page.evaluate("() => { nudge.identify('someone'); return nudge.anonymousId(); }")

    # when
    after = page.evaluate("() => { nudge.reset(); return [nudge.anonymousId(), nudge.userId]; }")

    # then
    assert after[0] != before
    assert after[1] is None


# ---- attention (playwright's clock drives Date and the SDK's timers) ----------------------


def test_active_seconds_accumulate_while_the_page_is_visible(
    stack: StackClient, site: str, page: Page
):
    """Visible, focused time with recent input counts as active."""
    # given
    page.clock.install()
    page.goto(sdk_url(site, options_for(stack, flushInterval=600_000)))

    # when
    page.clock.run_for(20_000)

    # then
    assert active_seconds(page) == 20


def test_time_in_a_hidden_tab_does_not_count(stack: StackClient, site: str, page: Page):
    """Active time pauses while the document is hidden and resumes when it is shown."""
    # given
    page.clock.install()
    page.goto(sdk_url(site, options_for(stack, flushInterval=600_000)))
    page.clock.run_for(5_000)

    # when
    hide(page)
    page.clock.run_for(60_000)
    show(page)
    page.mouse.move(10, 10)
    page.clock.run_for(5_000)

    # then
    assert active_seconds(page) == 10


def test_time_without_input_stops_counting_after_idle_seconds(
    stack: StackClient, site: str, page: Page
):
    """After idleSeconds without input the page is idle; input makes it active again."""
    # given
    page.clock.install()
    page.goto(sdk_url(site, options_for(stack, flushInterval=600_000, idleSeconds=10)))

    # when
    page.clock.run_for(60_000)
    page.keyboard.press("Shift")
    page.clock.run_for(3_000)

    # then
    assert active_seconds(page) == 13


def test_page_engaged_is_sent_at_each_mark(stack: StackClient, site: str, page: Page, user: str):
    """Page Engaged goes out when active time reaches each mark, with the mark and seconds."""
    # given
    page.clock.install()
    page.goto(sdk_url(site, options_for(stack, flushInterval=600_000, marks=[5, 12]), user=user))

    # when
    page.clock.run_for(13_000)
    page.evaluate("() => nudge.flush()")

    # then
    engaged = named(stored(stack, user, 2), "Page Engaged")
    marks = sorted((e["properties"]["mark"], e["properties"]["active_seconds"]) for e in engaged)
    assert marks == [(5, 5), (12, 12)]
    assert engaged[0]["properties"]["path"] == "/sdk.html"


def test_leaving_sends_scroll_depth_and_the_viewed_product(
    stack: StackClient, site: str, page: Page, user: str
):
    """On leave Page Engaged carries the max scroll depth and the productViewed product."""
    # given
    page.clock.install()
    page.goto(sdk_url(site, options_for(stack, flushInterval=600_000, marks=[]), tall=3, user=user))
    page.evaluate(
        "() => nudge.productViewed({product_id: 'p-9', name: 'Lamp', price: 40, brand: 'X'})"
    )
    page.clock.run_for(7_000)

    # when
    half_way = page.evaluate(
        """() => {
            const height = document.documentElement.scrollHeight;
            window.scrollTo(0, height / 2);
            return Math.round((height / 2 + innerHeight) / height * 100);
        }"""
    )
    page.wait_for_timeout(200)  # the scroll event comes with the next frame
    page.evaluate("() => window.scrollTo(0, 0)")
    page.goto(site + "/next.html")

    # then
    leave = named(stored(stack, user, 2), "Page Engaged")[0]["properties"]
    assert leave["mark"] == "leave"
    assert leave["active_seconds"] == 7
    assert abs(leave["scroll_depth"] - half_way) <= 1
    assert (leave["product_id"], leave["name"], leave["price"]) == ("p-9", "Lamp", 40)
    assert "brand" not in leave


# ---- in-app messages against a WebSocket server that speaks the contract ------------------


@dataclass
class Connection:
    query: dict[str, str]
    socket: web.WebSocketResponse
    received: list[dict[str, Any]] = field(default_factory=list)
    sent: list[dict[str, Any]] = field(default_factory=list)
    closed: bool = False


@dataclass
class FakeSocketApi:
    """The contract's WebSocket API in miniature: pending messages posted on sync, the
    first ack of a message answered "show", every other connection told "drop"."""

    url: str = ""
    pending: list[dict[str, Any]] = field(default_factory=list)
    connections: list[Connection] = field(default_factory=list)
    shown: set[str] = field(default_factory=set)
    loop: asyncio.AbstractEventLoop | None = None

    def reset(self) -> None:
        self.pending.clear()
        self.connections.clear()
        self.shown.clear()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        connection = Connection(dict(request.query), ws)
        self.connections.append(connection)
        async for frame in ws:
            if frame.type != WSMsgType.TEXT:
                break
            body = json.loads(frame.data)
            connection.received.append(body)
            if body.get("action") == "sync":
                for message in list(self.pending):
                    await self._send(connection, message)
            elif body.get("action") == "ack":
                await self._ack(connection, str(body["fireId"]))
        connection.closed = True
        return ws

    async def _ack(self, connection: Connection, fire_id: str) -> None:
        if fire_id in self.shown:
            await self._send(connection, {"type": "drop", "fireId": fire_id})
            return
        self.shown.add(fire_id)
        self.pending = [m for m in self.pending if m["fireId"] != fire_id]
        await self._send(connection, {"type": "show", "fireId": fire_id})
        for other in self.connections:
            if other is not connection and not other.closed:
                await self._send(other, {"type": "drop", "fireId": fire_id})

    async def _send(self, connection: Connection, frame: dict[str, Any]) -> None:
        if not connection.socket.closed:
            connection.sent.append(frame)
            await connection.socket.send_str(json.dumps(frame))

    def _run(self, coroutine: Any) -> Any:
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=5)

    def push(self, message: dict[str, Any]) -> None:
        """A trigger fired while the page is open: the message goes to every connection."""
        self.pending.append(message)

        async def send_all() -> None:
            for connection in self.connections:
                if not connection.closed:
                    await self._send(connection, message)

        self._run(send_all())

    def close_all(self) -> None:
        async def close() -> None:
            for connection in self.connections:
                await connection.socket.close()

        self._run(close())

    def acks(self) -> list[str]:
        return [
            str(body["fireId"])
            for connection in self.connections
            for body in connection.received
            if body.get("action") == "ack"
        ]

    def open_connections(self) -> list[Connection]:
        return [c for c in self.connections if not c.closed]


@pytest.fixture(scope="module")
def socket_api() -> Iterator[FakeSocketApi]:
    api = FakeSocketApi()
    ready = threading.Event()
    loop = asyncio.new_event_loop()
    api.loop = loop
    runner_box: list[web.AppRunner] = []

    async def start() -> None:
        app = web.Application()
        app.router.add_get("/live", api.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        await web.SockSite(runner, listener).start()
        api.url = f"ws://127.0.0.1:{listener.getsockname()[1]}/live"
        runner_box.append(runner)
        ready.set()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        loop.run_forever()

    thread = threading.Thread(target=serve, name="fake-socket-api", daemon=True)
    thread.start()
    assert ready.wait(10)
    yield api
    asyncio.run_coroutine_threadsafe(runner_box[0].cleanup(), loop).result(timeout=10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=5)


@pytest.fixture
def api(socket_api: FakeSocketApi) -> FakeSocketApi:
    socket_api.reset()
    return socket_api


def message(fire_id: str = "", **display: Any) -> dict[str, Any]:
    return {
        "type": "message",
        "fireId": fire_id or f"fire-{uuid.uuid4().hex[:8]}",
        "trigger": "product_offer",
        "html": '<div class="offer"><p>10 % off</p><a href="https://shop.example/d">See</a></div>',
        "display": display,
        "expiresAt": "2099-01-01T00:00:00Z",
    }


def in_app_page(
    page: Page, site: str, stack: StackClient, api: FakeSocketApi, user: str, **extra: Any
) -> None:
    extra.setdefault("flushInterval", 600_000)
    extra.setdefault("marks", [])
    path = extra.pop("path", "/sdk.html")
    tall = extra.pop("tall", None)
    page.goto(
        sdk_url(site, options_for(stack, socket=api.url, **extra), path=path, tall=tall, user=user)
    )
    wait_until(lambda: api.open_connections(), message="a socket connection")


def displayed(page: Page) -> list[str]:
    """The fireIds of the messages on the page."""
    found: list[str] = page.eval_on_selector_all(
        "[data-nudge-message]", "(nodes) => nodes.map((n) => n.dataset.nudgeMessage)"
    )
    return found


def test_the_socket_connects_as_the_person_and_syncs(
    stack: StackClient, site: str, page: Page, api: FakeSocketApi, user: str
):
    """The connection carries writeKey, anonymousId and userId, and sends sync once open."""
    # given / when
    in_app_page(page, site, stack, api, user)

    # then
    connection = api.open_connections()[0]
    anonymous_id = page.evaluate("() => nudge.anonymousId()")
    assert connection.query == {
        "writeKey": stack.write_key,
        "anonymousId": anonymous_id,
        "userId": user,
    }
    wait_until(lambda: connection.received, message="a frame")
    assert connection.received[0] == {"action": "sync"}


def test_a_message_without_rules_is_acked_shown_and_tracked(
    stack: StackClient, site: str, page: Page, api: FakeSocketApi, user: str
):
    """A pending message comes with sync, is acked at once and, on show, rendered in a
    shadow root with In-App Message Shown tracked."""
    # given
    offer = message("fire-1")
    api.pending.append(offer)

    # when
    in_app_page(page, site, stack, api, user)

    # then
    wait_until(lambda: displayed(page) == ["fire-1"], message="the message on the page")
    html = page.evaluate(
        "() => document.querySelector('[data-nudge-message]').shadowRoot.innerHTML"
    )
    assert "10 % off" in html
    assert "data-nudge-dismiss" in html  # the SDK added a close control
    page.evaluate("() => nudge.flush()")
    shown = named(stored(stack, user, 1), "In-App Message Shown")[0]["properties"]
    assert shown == {"fire_id": "fire-1", "trigger": "product_offer"}


def test_a_message_pushed_while_the_page_is_open_is_shown(
    stack: StackClient, site: str, page: Page, api: FakeSocketApi, user: str
):
    """A message that arrives after sync is displayed too."""
    # given
    in_app_page(page, site, stack, api, user)
    wait_until(lambda: api.open_connections()[0].received, message="sync")

    # when
    api.push(message("fire-push"))

    # then
    wait_until(lambda: displayed(page) == ["fire-push"], message="the pushed message")


def test_a_delay_rule_waits_that_many_seconds_since_load(
    stack: StackClient, site: str, page: Page, api: FakeSocketApi, user: str
):
    """With display.delay 5 the message is not acked before 5 s on the page."""
    # given
    page.clock.install()
    api.pending.append(message("fire-delay", delay=5))
    in_app_page(page, site, stack, api, user)
    page.clock.run_for(3_000)
    page.wait_for_timeout(200)
    assert api.acks() == []

    # when
    page.clock.run_for(3_000)

    # then
    wait_until(lambda: api.acks() == ["fire-delay"], message="the ack")


def test_a_scroll_rule_waits_for_that_scroll_depth(
    stack: StackClient, site: str, page: Page, api: FakeSocketApi, user: str
):
    """With display.scroll 50 the message is acked once the page is scrolled half-way."""
    # given
    api.pending.append(message("fire-scroll", scroll=50))
    in_app_page(page, site, stack, api, user, tall=4)
    page.wait_for_timeout(1_500)
    assert api.acks() == []

    # when
    page.mouse.wheel(0, int(page.evaluate("() => innerHeight * 2")))

    # then
    wait_until(lambda: api.acks() == ["fire-scroll"], message="the ack")


def test_match_any_needs_one_rule_and_match_all_needs_both(
    stack: StackClient, site: str, page: Page, api: FakeSocketApi, user: str
):
    """On a page too short to scroll (100 %), "any" holds at once; "all" also waits for delay."""
    # given
    page.clock.install()
    api.pending.append(message("fire-all", delay=30, scroll=50, match="all"))
    api.pending.append(message("fire-any", delay=30, scroll=50, match="any"))

    # when
    in_app_page(page, site, stack, api, user)

    # then
    wait_until(lambda: api.acks() == ["fire-any"], message="the any message acked")


def test_a_message_is_never_acked_on_an_excluded_path(
    stack: StackClient, site: str, page: Page, api: FakeSocketApi, user: str
):
    """On /checkout/... a message excluding /checkout* is kept but not acked."""
    # given
    api.pending.append(message("fire-excluded", exclude=["/checkout*"]))

    # when
    in_app_page(page, site, stack, api, user, path="/checkout/sdk.html")
    page.wait_for_timeout(1_500)

    # then
    assert api.acks() == []
    assert displayed(page) == []


def test_only_one_message_is_displayed_at_a_time(
    stack: StackClient, site: str, page: Page, api: FakeSocketApi, user: str
):
    """A second message waits until the first is dismissed."""
    # given
    api.pending.extend([message("fire-a"), message("fire-b")])
    in_app_page(page, site, stack, api, user)
    wait_until(lambda: displayed(page) == ["fire-a"], message="the first message")
    page.wait_for_timeout(1_200)
    assert api.acks() == ["fire-a"]

    # when
    page.locator("[data-nudge-message] [data-nudge-dismiss]").click()

    # then
    wait_until(lambda: displayed(page) == ["fire-b"], message="the second message")


def test_dismissing_removes_the_message_and_tracks_dismissed(
    stack: StackClient, site: str, page: Page, api: FakeSocketApi, user: str
):
    """The message's own data-nudge-dismiss control closes it and tracks Dismissed."""
    # given
    offer = message("fire-x")
    offer["html"] = '<p>Hi</p><span role="button" data-nudge-dismiss>close</span>'
    api.pending.append(offer)
    in_app_page(page, site, stack, api, user)
    wait_until(lambda: displayed(page), message="the message")

    # when
    page.locator("[data-nudge-message] span[data-nudge-dismiss]").click()

    # then
    assert displayed(page) == []
    page.evaluate("() => nudge.flush()")
    dismissed = named(stored(stack, user, 2), "In-App Message Dismissed")
    assert dismissed[0]["properties"] == {"fire_id": "fire-x", "trigger": "product_offer"}


def test_clicking_a_link_tracks_clicked_with_its_url(
    stack: StackClient, site: str, page: Page, api: FakeSocketApi, user: str
):
    """A link inside the message tracks In-App Message Clicked with the link's url."""
    # given
    offer = message("fire-link")
    offer["html"] = f'<a id="go" href="{site}/next.html">Deal</a>'
    api.pending.append(offer)
    in_app_page(page, site, stack, api, user)
    wait_until(lambda: displayed(page), message="the message")

    # when
    page.locator("[data-nudge-message] #go").click()
    page.wait_for_url("**/next.html")

    # then
    clicked = named(stored(stack, user, 2), "In-App Message Clicked")
    assert clicked[0]["properties"] == {
        "fire_id": "fire-link",
        "trigger": "product_offer",
        "url": f"{site}/next.html",
    }


def test_a_message_another_tab_showed_is_displayed_in_one_tab_only(
    stack: StackClient, site: str, context: BrowserContext, api: FakeSocketApi, user: str
):
    """Two tabs ack the same message; the server shows it in one and drops it in the other."""
    # given
    first, second = context.new_page(), context.new_page()
    in_app_page(first, site, stack, api, user)
    in_app_page(second, site, stack, api, user)
    wait_until(lambda: all(c.received for c in api.open_connections()), message="both synced")

    # when
    api.push(message("fire-both"))

    # then
    wait_until(lambda: displayed(first) + displayed(second) == ["fire-both"], message="one")
    first.wait_for_timeout(500)
    assert sorted(displayed(first) + displayed(second)) == ["fire-both"]


def test_a_dropped_message_is_forgotten(
    stack: StackClient, site: str, page: Page, api: FakeSocketApi, user: str
):
    """A drop frame for a message waiting on its rules removes it: it is never acked."""
    # given
    page.clock.install()
    api.pending.append(message("fire-drop", delay=10))
    in_app_page(page, site, stack, api, user)
    wait_until(lambda: api.open_connections()[0].sent, message="the message sent")

    # when
    api._run(api._send(api.open_connections()[0], {"type": "drop", "fireId": "fire-drop"}))
    page.wait_for_timeout(200)
    page.clock.run_for(15_000)
    page.wait_for_timeout(300)

    # then
    assert api.acks() == []


def test_the_socket_reconnects_and_syncs_after_it_closes(
    stack: StackClient, site: str, page: Page, api: FakeSocketApi, user: str
):
    """When the connection drops the SDK reconnects (after a jittered backoff) and syncs."""
    # given
    in_app_page(page, site, stack, api, user)
    wait_until(lambda: api.open_connections()[0].received, message="sync")

    # when
    api.close_all()

    # then
    wait_until(lambda: len(api.connections) == 2 and api.connections[1].received, message="again")
    assert api.connections[1].received[0] == {"action": "sync"}


def test_identify_reconnects_as_the_new_person(
    stack: StackClient, site: str, page: Page, api: FakeSocketApi
):
    """After identify the socket is reopened with the userId in its query."""
    # given
    page.goto(sdk_url(site, options_for(stack, socket=api.url, flushInterval=600_000)))
    wait_until(lambda: api.open_connections(), message="a connection")
    assert "userId" not in api.connections[0].query

    # when
    page.evaluate("() => nudge.identify('ada')")

    # then
    wait_until(lambda: [c.query.get("userId") for c in api.open_connections()] == ["ada"])


def test_reset_reconnects_as_a_new_anonymous_visitor(
    stack: StackClient, site: str, page: Page, api: FakeSocketApi, user: str
):
    """After reset the socket is reopened with the new anonymousId and no userId."""
    # given
    in_app_page(page, site, stack, api, user)

    # when
    anonymous_id = page.evaluate("() => { nudge.reset(); return nudge.anonymousId(); }")

    # then
    wait_until(
        lambda: (
            [c.query for c in api.open_connections()]
            == [{"writeKey": stack.write_key, "anonymousId": anonymous_id}]
        )
    )


def test_no_socket_is_opened_before_consent(
    stack: StackClient, site: str, page: Page, api: FakeSocketApi
):
    """With consent pending the socket waits for consent(true)."""
    # given
    page.goto(sdk_url(site, options_for(stack, socket=api.url, consent="pending")))
    page.wait_for_timeout(500)
    assert api.connections == []

    # when
    page.evaluate("() => nudge.consent(true)")

    # then
    wait_until(lambda: api.open_connections(), message="a connection after consent")
