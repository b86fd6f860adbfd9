"""In-app messages: how fast a fire reaches the page, and what one costs in requests.

The local stack runs in this process (``LocalStack`` plus the werkzeug gateway, as
``python -m local`` does), on free ports, so its pieces can be counted where they are:
DynamoDB requests at moto's WSGI app (the ``X-Amz-Target`` of each request, outside the
stack's own wrappers), Lambda invocations at each ``FunctionPool.invoke``, and Management API
posts at ``SocketApiServer.posts``.

1. Latency, in headless Chromium with ``sdk/nudge.js`` connected (the ``socket`` option):
   a page on its own origin, short enough that it cannot scroll (the SDK counts that as
   100 % read, so product_offer's display rule ``scroll: 50%`` holds from the start and the
   5 s ``delay`` is not waited for; checked on the page before each fire). Timed from just
   before ``POST /v1/track`` of a Page Engaged (product_id, active_seconds 120) that fires
   product_offer, to the SDK appending ``[data-nudge-message]`` (a MutationObserver on the
   page stamps it with ``performance.timeOrigin + performance.now()``; the same machine's
   clock as the bench's ``time.time()``). So it measures delivery: Ingest, the stream, Evaluate,
   the queue, Send's post, the page's ack, Socket's ``show`` and the render. Each run is a new
   user in a new browser context, its socket open (``sync`` done) and the page idle for
   ``SETTLE`` seconds before the fire.
   Baseline: the same event through the same pipeline to the email channel, timed to SES
   accepting the message (moto's SES backend, read in process): product_interest (email)
   fires on the same Page Engaged with active_seconds 121, for a user identified with an
   email and a daytime timezone. Everything before Send is shared, so the difference is
   what the socket, the ack round trip and the browser add over handing an email to SES.
   The two kinds of run alternate (the browser up for both), and the tables are emptied
   every ``RESET_EVERY`` pairs: moto's TransactWriteItems deep-copies every table.
2. Requests per message, with a plain WebSocket client speaking the protocol the SDK
   speaks (``sync`` on open, ``ack`` of the message), so nothing else the SDK does (its
   In-App Message Shown event) is mixed in. The stack's pump is held (its lock) while the
   event is ingested and Evaluate runs, then Send is pumped alone, so each phase's requests
   are its own. Write units are priced on the larger of the old and new item (old items read
   with an unmetered client), a write refused by its condition is billed as if written
   (DynamoDB bills failed conditional writes), a strongly consistent read 1 unit per started
   4 KB of what it returns (the Query's filter drops only expired items, none here).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import math
import os
import statistics
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlencode

import aiohttp
import boto3
import requests
from rich.console import Console
from werkzeug.serving import make_server

if TYPE_CHECKING:
    from playwright.sync_api import Browser

from bench.common import Figures, free_port, median, percentile, side_by_side
from local.gateway import Gateway
from local.meter import PUMP_HEADER, item_size
from local.runtime import FunctionPool, Invocation
from local.stack import LocalStack, StackConfig
from local.template import ACCOUNT

__all__ = ["run"]

T = TypeVar("T")

WRITE_KEY = "bench-write-key"
RUNS = int(os.environ.get("NUDGE_BENCH_IN_APP_RUNS", "50"))  # latency runs, each side
COUNT_RUNS = 10  # people per counted scenario
# moto's TransactWriteItems deep-copies every table (to roll back), so Send slows as the
# table grows; emptied every this many latency pairs.
RESET_EVERY = 10
# Seconds a page idles after its sync before the fire: product_offer comes 120 s into a
# visit, not while the page loads. Fired at once, the shared part (fire to Send invoked)
# took about 70 ms longer here: Chromium finishing the load on the same 2 cores.
SETTLE = 0.5
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT = 15.0  # seconds any one thing may take
OFFER_RULES = {"delay": 5, "scroll": 50, "match": "any", "exclude": ["/checkout*"]}

# us-east-1 list prices
WRITE_UNIT = 1.25e-6  # DynamoDB on-demand, per write request unit
READ_UNIT = 0.25e-6  # per read request unit
SOCKET_MESSAGE = 1.00e-6  # API Gateway WebSocket, per message (32 KB each) sent or received
CONNECTION_MINUTE = 0.25e-6  # per connection minute
LAMBDA_REQUEST = 0.20e-6
LAMBDA_GB_SECOND = 0.0000133334  # arm64
LAMBDA_GB = 0.5  # MemorySize 512 in the template's Globals
PAGE_EVENTS = 3.5  # a page view's events with the SDK's Page Engaged marks (3 to 4)
PAGE_MINUTES = 1.0  # assumed time a page view keeps its socket open (billed per minute)

DYNAMODB_TARGET = "DynamoDB_20120810."
SIZER_HEADER = "x-nudge-bench-sizer"  # the meter's own lookups: never counted
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
READS = {"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"}

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Nudge in-app bench</title></head>
<body><p>A product page short enough not to scroll.</p>
<script src="%(stack)s/sdk/nudge.js"></script>
<script>
  var params = new URLSearchParams(location.search);
  localStorage.setItem("nudge.userId", params.get("user"));
  window.shownAt = null;
  new MutationObserver(function () {
    if (window.shownAt === null && document.querySelector("[data-nudge-message]")) {
      window.shownAt = performance.timeOrigin + performance.now();
    }
  }).observe(document.body, {childList: true});
  window.nudge = new Nudge(%(options)s);
</script></body></html>
"""


# ---- counting: DynamoDB at moto's WSGI app, Lambda at each pool ---------------------------


@dataclass
class Tally:
    by_operation: dict[str, float] = field(default_factory=dict)
    write_units: float = 0.0
    read_units: float = 0.0
    refused: int = 0  # conditional writes refused (billed all the same)
    invocations: dict[str, float] = field(default_factory=dict)  # "Socket:ack", "Send", ...
    lambda_ms: dict[str, float] = field(default_factory=dict)  # summed durations, same keys
    posts: int = 0
    units_by_operation: dict[str, float] = field(default_factory=dict)  # write + read units

    def minus(self, earlier: Tally) -> Tally:
        def diff(a: Mapping[str, float], b: Mapping[str, float]) -> dict[str, Any]:
            keys = set(a) | set(b)
            return {k: a.get(k, 0) - b.get(k, 0) for k in keys if a.get(k, 0) != b.get(k, 0)}

        return Tally(
            diff(self.by_operation, earlier.by_operation),
            self.write_units - earlier.write_units,
            self.read_units - earlier.read_units,
            self.refused - earlier.refused,
            diff(self.invocations, earlier.invocations),
            diff(self.lambda_ms, earlier.lambda_ms),
            self.posts - earlier.posts,
            diff(self.units_by_operation, earlier.units_by_operation),
        )

    def plus(self, other: Tally) -> Tally:
        def add(a: Mapping[str, float], b: Mapping[str, float]) -> dict[str, Any]:
            return {k: a.get(k, 0) + b.get(k, 0) for k in set(a) | set(b)}

        return Tally(
            add(self.by_operation, other.by_operation),
            self.write_units + other.write_units,
            self.read_units + other.read_units,
            self.refused + other.refused,
            add(self.invocations, other.invocations),
            add(self.lambda_ms, other.lambda_ms),
            self.posts + other.posts,
            add(self.units_by_operation, other.units_by_operation),
        )

    def scaled(self, factor: float) -> Tally:
        return Tally(
            {k: v * factor for k, v in self.by_operation.items()},
            self.write_units * factor,
            self.read_units * factor,
            round(self.refused * factor),
            {k: v * factor for k, v in self.invocations.items()},
            {k: v * factor for k, v in self.lambda_ms.items()},
            round(self.posts * factor),
            {k: v * factor for k, v in self.units_by_operation.items()},
        )

    @property
    def requests(self) -> float:
        return float(sum(self.by_operation.values()))

    @property
    def lambda_invocations(self) -> float:
        return float(sum(self.invocations.values()))


class Meter:
    """DynamoDB requests seen at moto's WSGI app, Lambda invocations seen at the pools."""

    def __init__(self, stack: LocalStack) -> None:
        self._stack = stack
        self._lock = threading.Lock()
        self.tally = Tally()
        self.failures: list[tuple[str, str]] = []  # (function, errorType)
        self.began: list[tuple[str, float]] = []  # (function, time.time() at the start)
        self.finished: list[tuple[str, float, float]] = []  # (label, began, returned)
        self._sizer = boto3.client(
            "dynamodb",
            endpoint_url=stack.endpoint,
            region_name=stack.template.names.region,
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
        self._sizer.meta.events.register("before-sign", _mark_sizer)
        server = stack._moto._server
        assert server is not None
        server.app = self._wrap(server.app)
        for logical_id, pool in stack.functions.items():
            setattr(pool, "invoke", self._counted(logical_id, pool))  # noqa: B010

    def snapshot(self) -> Tally:
        with self._lock:
            return self.tally.plus(Tally())

    # ---- Lambda ----

    def _counted(self, logical_id: str, pool: FunctionPool) -> Callable[[Any], Invocation]:
        inner = pool.invoke

        def invoke(event: Any) -> Invocation:
            began = time.time()
            with self._lock:
                self.began.append((logical_id, began))
            result = inner(event)
            if result.failed:
                with self._lock:
                    self.failures.append((logical_id, str((result.error or {}).get("errorType"))))
            label = logical_id
            if logical_id == "Socket":
                if isinstance(event, dict) and event.get("type") == "REQUEST":
                    label = "Socket:authorizer"
                else:
                    label = "Socket:" + str(event["requestContext"]["routeKey"])
            with self._lock:
                counts, durations = self.tally.invocations, self.tally.lambda_ms
                counts[label] = counts.get(label, 0) + 1
                durations[label] = durations.get(label, 0.0) + result.duration_ms
                self.finished.append((label, began, time.time()))
            return result

        return invoke

    def count(self, label: str) -> int:
        with self._lock:
            return int(self.tally.invocations.get(label, 0))

    def posts(self) -> int:
        return sum(server.posts for server in self._stack.sockets)

    # ---- DynamoDB ----

    def _wrap(self, app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
        pump = "HTTP_" + PUMP_HEADER.upper().replace("-", "_")
        sizer = "HTTP_" + SIZER_HEADER.upper().replace("-", "_")

        def metered(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
            if not target.startswith(DYNAMODB_TARGET) or pump in environ or sizer in environ:
                return app(environ, start_response)
            operation = target.removeprefix(DYNAMODB_TARGET)
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = io.BytesIO(body)
            request = json.loads(body or b"{}")
            old = self._old_sizes(operation, request)
            status: list[str] = []

            def starting(code: str, headers: Any, *rest: Any) -> Any:
                status.append(code)
                return start_response(code, headers, *rest)

            result = app(environ, starting)
            try:
                answer = b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
            self._charge(operation, request, answer, status[0] if status else "500", old)
            return [answer]

        return metered

    def _existing(self, table: str, key: Mapping[str, Any]) -> dict[str, Any] | None:
        found = self._sizer.get_item(TableName=table, Key=dict(key), ConsistentRead=True)
        item: dict[str, Any] | None = found.get("Item")
        return item

    @staticmethod
    def _key_of(item: Mapping[str, Any]) -> dict[str, Any]:
        return {name: item[name] for name in ("pk", "sk") if name in item}

    def _old_sizes(self, operation: str, request: Mapping[str, Any]) -> list[int]:
        if operation == "PutItem":
            return [item_size(self._existing(request["TableName"], self._key_of(request["Item"])))]
        if operation in ("UpdateItem", "DeleteItem"):
            return [item_size(self._existing(request["TableName"], request["Key"]))]
        if operation == "BatchWriteItem":
            return [
                item_size(
                    self._existing(
                        table,
                        self._key_of(
                            write["PutRequest"]["Item"]
                            if "PutRequest" in write
                            else write["DeleteRequest"]["Key"]
                        ),
                    )
                )
                for table, writes in request["RequestItems"].items()
                for write in writes
            ]
        if operation == "TransactWriteItems":
            sizes = []
            for entry in request["TransactItems"]:
                ((kind, action),) = entry.items()
                key = action["Item"] if kind == "Put" else action["Key"]
                sizes.append(item_size(self._existing(action["TableName"], self._key_of(key))))
            return sizes
        return []

    def _charge(
        self,
        operation: str,
        request: Mapping[str, Any],
        answer: bytes,
        status: str,
        old: list[int],
    ) -> None:
        parsed: dict[str, Any] = json.loads(answer or b"{}")
        ok = status.startswith("200")
        refused = not ok and "ConditionalCheckFailed" in str(parsed.get("__type", ""))
        units = 0.0
        if operation in WRITES and (ok or refused):
            new = self._new_items(operation, request, refused)
            factor = 2 if operation == "TransactWriteItems" else 1
            units = factor * sum(
                _write_units(max(item_size(item), size))
                for item, size in zip(new, old, strict=False)
            )
        read = _read_units(operation, request, parsed) if ok and operation in READS else 0.0
        with self._lock:
            counts = self.tally.by_operation
            counts[operation] = counts.get(operation, 0) + 1
            spent = self.tally.units_by_operation
            spent[operation] = spent.get(operation, 0.0) + units + read
            self.tally.write_units += units
            self.tally.read_units += read
            self.tally.refused += int(refused)

    def _new_items(
        self, operation: str, request: Mapping[str, Any], refused: bool
    ) -> list[dict[str, Any] | None]:
        if operation == "PutItem":
            return [request["Item"]]
        if operation == "UpdateItem":  # the new item exists only after the call
            return [None if refused else self._existing(request["TableName"], request["Key"])]
        if operation == "DeleteItem":
            return [None]
        if operation == "BatchWriteItem":
            return [
                write["PutRequest"]["Item"] if "PutRequest" in write else None
                for writes in request["RequestItems"].values()
                for write in writes
            ]
        if operation == "TransactWriteItems":
            return [entry.get("Put", {}).get("Item") for entry in request["TransactItems"]]
        return []


def _mark_sizer(request: Any, **_: Any) -> None:
    request.headers[SIZER_HEADER] = "1"
    request.headers[PUMP_HEADER] = "1"  # and it wakes nothing


def _write_units(size: int) -> int:
    return max(1, math.ceil(size / 1024))


def _read_units(operation: str, request: Mapping[str, Any], parsed: Mapping[str, Any]) -> float:
    def units(size: int) -> int:
        return max(1, math.ceil(size / 4096))

    if operation == "GetItem":
        factor = 1.0 if request.get("ConsistentRead") else 0.5
        return factor * units(item_size(parsed.get("Item")))
    if operation == "BatchGetItem":
        total = 0.0
        for table, wanted in request["RequestItems"].items():
            factor = 1.0 if wanted.get("ConsistentRead") else 0.5
            found = parsed.get("Responses", {}).get(table, [])
            missing = len(wanted["Keys"]) - len(found)
            total += factor * (sum(units(item_size(item)) for item in found) + max(0, missing))
        return total
    if operation in ("Query", "Scan"):
        factor = 1.0 if request.get("ConsistentRead") else 0.5
        return factor * units(sum(item_size(item) for item in parsed.get("Items", [])))
    return 0.0


# ---- the stack, in this process ---------------------------------------------------------


@dataclass
class Stack:
    local: LocalStack
    base: str
    socket_url: str
    meter: Meter
    session: requests.Session
    errors: MotoErrors

    def track(self, body: dict[str, Any]) -> None:
        response = self.session.post(f"{self.base}/v1/track", json=body, timeout=WAIT)
        response.raise_for_status()

    def identify(self, user: str, traits: dict[str, Any]) -> None:
        body = {"userId": user, "traits": traits}
        response = self.session.post(f"{self.base}/v1/identify", json=body, timeout=WAIT)
        response.raise_for_status()

    def page_url(self, user: str) -> str:
        query = {"writeKey": WRITE_KEY, "userId": user, "anonymousId": f"anon-{user}"}
        return f"{self.socket_url}?{urlencode(query)}"


class MotoErrors(logging.Filter):
    """Counts (and keeps off the report) the tracebacks werkzeug logs for moto's 500s."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage().startswith("Error on request"):
            self.count += 1
            return False
        return True


@contextlib.contextmanager
def _quiet_stdout() -> Iterator[None]:
    """The function workers inherit file descriptor 1 when they start; their Powertools
    logs must not land in the bench's stdout (``--json`` writes its report there)."""
    saved = os.dup(1)
    with open(os.devnull, "wb") as sink:
        os.dup2(sink.fileno(), 1)
        try:
            yield
        finally:
            os.dup2(saved, 1)
            os.close(saved)


@contextlib.contextmanager
def running_stack() -> Iterator[Stack]:
    werkzeug = logging.getLogger("werkzeug")
    werkzeug.setLevel(logging.WARNING)  # moto's and the gateway's access logs
    errors = MotoErrors()
    werkzeug.addFilter(errors)
    port = free_port()
    config = StackConfig(port=port, socket_port=0, write_key=WRITE_KEY)
    local = LocalStack(config)
    with _quiet_stdout():
        local.start()
    server = make_server(config.host, port, Gateway(local), threaded=True)
    serving = threading.Thread(target=server.serve_forever, name="gateway", daemon=True)
    serving.start()
    try:
        assert local.websocket_url is not None
        session = requests.Session()
        session.auth = (WRITE_KEY, "")
        yield Stack(
            local,
            f"http://{config.host}:{port}",
            local.websocket_url,
            Meter(local),
            session,
            errors,
        )
    finally:
        server.shutdown()
        serving.join(timeout=5)
        local.stop()
        werkzeug.removeFilter(errors)


def _wait(check: Callable[[], T], what: str, timeout: float = WAIT) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.002)


def _beyond(meter: Meter, label: str, count: int) -> bool:
    return meter.count(label) > count


def _longer(items: list[Any], length: int) -> bool:
    return len(items) > length


def _engaged(user: str, active_seconds: int) -> dict[str, Any]:
    """What the SDK reports after two minutes on a product page."""
    return {
        "userId": user,
        "type": "track",
        "event": "Page Engaged",
        "properties": {
            "product_id": "sku-1",
            "name": "Trail Runner",
            "price": 89.0,
            "url": "https://shop.example.com/products/sku-1",
            "active_seconds": active_seconds,
            "path": "/products/sku-1",
            "mark": 120,
        },
    }


# ---- 1. latency -------------------------------------------------------------------------


@contextlib.contextmanager
def _site(stack: Stack) -> Iterator[str]:
    options = json.dumps({"host": stack.base, "writeKey": WRITE_KEY, "socket": stack.socket_url})
    page = (PAGE % {"stack": stack.base, "options": options}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="site", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/products/sku-1"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Timing:
    total: float  # seconds, the fire to the element in the DOM (or to SES)
    evaluated: float  # the fire to Evaluate's return
    sent: float  # the fire to Send's start


def _stage_times(meter: Meter, since: float) -> tuple[float, float]:
    """Seconds from ``since`` to the first Evaluate return and the first Send start after it
    (Send goes on after its post: the decision, the contact record, the counters)."""
    with meter._lock:
        finished, began = list(meter.finished), list(meter.began)
    evaluate = min(
        (end for label, _, end in finished if label == "Evaluate" and end > since),
        default=math.nan,
    )
    send = min((at for name, at in began if name == "Send" and at > since), default=math.nan)
    return evaluate - since, send - since


def _in_app_run(stack: Stack, browser: Browser, site: str) -> tuple[Timing, bool]:
    """One product_offer fired at a new user's open page; whether the rules held first."""
    user = f"inapp-{uuid.uuid4().hex[:10]}"
    context = browser.new_context()
    try:
        page = context.new_page()
        syncs = stack.meter.count("Socket:sync")
        page.goto(f"{site}?user={user}")
        _wait(partial(_beyond, stack.meter, "Socket:sync", syncs), "the page's sync")
        held = bool(page.evaluate("(r) => nudge.rulesHold(r)", OFFER_RULES))
        stack.local.drain()
        time.sleep(SETTLE)  # the page 120 s into a visit is idle, not still loading
        started = time.time()
        stack.track(_engaged(user, 120))
        page.wait_for_function("() => window.shownAt !== null", timeout=WAIT * 1000)
        shown = float(page.evaluate("() => window.shownAt")) / 1000
        evaluated, sent = _stage_times(stack.meter, started)
    finally:
        context.close()
    stack.local.drain()  # Send's bookkeeping, the page's In-App Message Shown
    return Timing(shown - started, evaluated, sent), held


def _daytime_zone(now: datetime) -> str:
    """A whole-hour zone where it is about 13:00 now, so no email meets quiet hours."""
    offset = (13 - now.hour) % 24
    offset = offset - 24 if offset > 14 else offset  # Etc/GMT-14 .. Etc/GMT+9
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"  # Etc's signs are inverted


def _email_run(stack: Stack, sent: list[Any]) -> Timing:
    """One product_interest email fired for a new user with no page open."""
    user = f"email-{uuid.uuid4().hex[:10]}"
    zone = _daytime_zone(stack.local.clock.now())
    stack.identify(user, {"email": f"{user}@example.com", "timezone": zone})
    stack.local.drain()
    before = len(sent)
    started = time.time()
    stack.track(_engaged(user, 121))  # > 120: product_interest (email) fires too
    _wait(partial(_longer, sent, before), "the email at SES")
    accepted = time.time()
    evaluated, send = _stage_times(stack.meter, started)
    stack.local.drain()
    return Timing(accepted - started, evaluated, send)


def _latency(stack: Stack, runs: int) -> tuple[list[Timing], list[Timing], bool]:
    """In-app and email runs taken in turns, with the browser up for both, so both see the
    same machine; the tables are emptied every RESET_EVERY pairs."""
    from moto.ses.models import ses_backends
    from playwright.sync_api import sync_playwright

    sent = ses_backends[ACCOUNT][stack.local.template.names.region].sent_messages
    in_app: list[Timing] = []
    email: list[Timing] = []
    held = True
    with _site(stack) as site, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for index in range(runs + 1):  # the first pair is a warm-up
                if index and index % RESET_EVERY == 0:
                    stack.local.reset()
                timing, rules = _in_app_run(stack, browser, site)
                in_app.append(timing)
                held &= rules
                email.append(_email_run(stack, sent))
        finally:
            browser.close()
    return in_app[1:], email[1:], held


# ---- 2. requests per message and per page view --------------------------------------------


class Sockets:
    """aiohttp WebSocket clients on an event loop of their own, driven synchronously."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._session: aiohttp.ClientSession = self.call(self._open_session())

    async def _open_session(self) -> aiohttp.ClientSession:
        return aiohttp.ClientSession()

    def call(self, work: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(work, self._loop)
        return future.result(timeout=WAIT)

    def connect(self, url: str) -> aiohttp.ClientWebSocketResponse:
        return self.call(self._session.ws_connect(url))  # type: ignore[no-any-return]

    def send(self, socket: aiohttp.ClientWebSocketResponse, frame: dict[str, Any]) -> None:
        self.call(socket.send_json(frame))

    def receive(self, socket: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
        message = self.call(socket.receive(timeout=WAIT))
        if message.type != aiohttp.WSMsgType.TEXT:
            raise RuntimeError(f"expected a text frame, got {message.type}")
        frame: dict[str, Any] = json.loads(message.data)
        return frame

    def close(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self.call(socket.close())

    def stop(self) -> None:
        self.call(self._session.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)


@dataclass
class Phases:
    """Each phase's tally, summed over the people counted."""

    runs: int = 0
    parts: dict[str, Tally] = field(default_factory=dict)

    def add(self, name: str, tally: Tally) -> None:
        self.parts[name] = self.parts.get(name, Tally()).plus(tally)

    def per_run(self, name: str) -> Tally:
        return self.parts.get(name, Tally()).scaled(1 / max(1, self.runs))


class Counter:
    def __init__(self, stack: Stack, sockets: Sockets) -> None:
        self.stack, self.sockets = stack, sockets

    def mark(self) -> Tally:
        tally = self.stack.meter.snapshot()
        tally.posts = self.stack.meter.posts()
        return tally

    def _after(self, label: str, count: int) -> None:
        _wait(partial(_beyond, self.stack.meter, label, count), label)

    def open_page(self, user: str, phases: Phases, sync_phase: str) -> Any:
        meter = self.stack.meter
        before = self.mark()
        connects = meter.count("Socket:$connect")
        socket = self.sockets.connect(self.stack.page_url(user))
        self._after("Socket:$connect", connects)
        opened = self.mark()
        phases.add("open: authorizer + $connect", opened.minus(before))
        syncs = meter.count("Socket:sync")
        self.sockets.send(socket, {"action": "sync"})
        self._after("Socket:sync", syncs)
        phases.add(sync_phase, self.mark().minus(opened))
        return socket

    def fire(self, user: str, phases: Phases) -> None:
        """The event, ingested and evaluated with the pump held, then Send pumped alone."""
        local = self.stack.local
        with local._pump_lock:
            before = self.mark()
            self.stack.track(_engaged(user, 120))
            while sum(poller.poll() for poller in local.stream_pollers):
                pass
            evaluated = self.mark()
            phases.add("event: Ingest + Evaluate (not the message's)", evaluated.minus(before))
            _wait(local.pump, "Send's batch")
            local.drain()
            phases.add("Send: keep + push", self.mark().minus(evaluated))

    def ack(self, socket: Any, fire_id: str, phases: Phases) -> None:
        before = self.mark()
        acks = self.stack.meter.count("Socket:ack")
        self.sockets.send(socket, {"action": "ack", "fireId": fire_id})
        shown = self.sockets.receive(socket)
        if shown != {"type": "show", "fireId": fire_id}:
            raise RuntimeError(f"expected show for {fire_id}, got {shown}")
        self._after("Socket:ack", acks)
        phases.add("ack: take + show", self.mark().minus(before))

    def close(self, socket: Any, phases: Phases) -> None:
        before = self.mark()
        gone = self.stack.meter.count("Socket:$disconnect")
        self.sockets.close(socket)
        self._after("Socket:$disconnect", gone)
        phases.add("close: $disconnect", self.mark().minus(before))


def _expect_message(frame: dict[str, Any]) -> str:
    if frame.get("type") != "message" or frame.get("trigger") != "product_offer":
        raise RuntimeError(f"expected the product_offer message, got {frame}")
    return str(frame["fireId"])


def _count(stack: Stack, runs: int) -> tuple[Phases, Phases]:
    """(a) pushed to an open page that acks it; (b) fired with no page open, delivered at
    the next page's sync."""
    sockets = Sockets()
    counter = Counter(stack, sockets)
    pushed, kept = Phases(), Phases()
    try:
        for index in range(runs + 1):  # the first warms the workers up and is not counted
            phases = Phases() if index == 0 else pushed
            user = f"count-a-{uuid.uuid4().hex[:10]}"
            socket = counter.open_page(user, phases, "sync: nothing waiting")
            counter.fire(user, phases)
            fire_id = _expect_message(sockets.receive(socket))
            counter.ack(socket, fire_id, phases)
            counter.close(socket, phases)
            phases.runs += 1
        for _ in range(runs):
            user = f"count-b-{uuid.uuid4().hex[:10]}"
            counter.fire(user, kept)
            socket = counter.open_page(user, kept, "sync: the kept message")
            fire_id = _expect_message(sockets.receive(socket))
            counter.ack(socket, fire_id, kept)
            counter.close(socket, kept)
            kept.runs += 1
    finally:
        sockets.stop()
    return pushed, kept


# ---- pricing ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Price:
    dynamodb: float
    messages: float
    minutes: float
    lambda_requests: float
    lambda_duration: float

    @property
    def total(self) -> float:
        return (
            self.dynamodb
            + self.messages
            + self.minutes
            + self.lambda_requests
            + self.lambda_duration
        )


def _price(tally: Tally, inbound_frames: float, minutes: float = 0.0) -> Price:
    """Dollars for one occurrence; Lambda at the summed local durations."""
    duration = sum(tally.lambda_ms.values()) / 1000
    return Price(
        dynamodb=tally.write_units * WRITE_UNIT + tally.read_units * READ_UNIT,
        messages=(tally.posts + inbound_frames) * SOCKET_MESSAGE,
        minutes=minutes * CONNECTION_MINUTE,
        lambda_requests=tally.lambda_invocations * LAMBDA_REQUEST,
        lambda_duration=duration * LAMBDA_GB * LAMBDA_GB_SECOND,
    )


# ---- the report -------------------------------------------------------------------------


def _ms(values: list[float]) -> str:
    return f"{median(values) * 1000:.0f} / {percentile(values, 0.95) * 1000:.0f}"


def _operations(tally: Tally) -> str:
    return ", ".join(
        f"{name} {count:g} ({tally.units_by_operation.get(name, 0):g} u)"
        for name, count in sorted(tally.by_operation.items())
    )


def _invocations(tally: Tally) -> str:
    return ", ".join(
        f"{name} {count:g} ({tally.lambda_ms[name] / count:.1f} ms)"
        for name, count in sorted(tally.invocations.items())
        if count
    )


def _tally_row(name: str, tally: Tally) -> list[str]:
    return [
        name,
        f"{tally.requests:g}",
        f"{tally.write_units:g}",
        f"{tally.read_units:g}",
        f"{tally.posts:g}",
        f"{tally.lambda_invocations:g}",
    ]


def _tally_json(tally: Tally) -> dict[str, Any]:
    return {
        "dynamodb_requests": tally.requests,
        "by_operation": tally.by_operation,
        "units_by_operation": tally.units_by_operation,
        "write_units": tally.write_units,
        "read_units": tally.read_units,
        "refused_conditional_writes": tally.refused,
        "posts": tally.posts,
        "lambda_invocations": tally.invocations,
        "lambda_ms": tally.lambda_ms,
    }


def _print_latency(
    console: Console, in_app: list[Timing], email: list[Timing], rules_held: bool
) -> None:
    rows = [
        ["fire to delivered", _ms([t.total for t in in_app]), _ms([t.total for t in email])],
        [
            "  fire to Evaluate's return",
            _ms([t.evaluated for t in in_app]),
            _ms([t.evaluated for t in email]),
        ],
        ["  fire to Send invoked", _ms([t.sent for t in in_app]), _ms([t.sent for t in email])],
        [
            "  Send invoked to delivered",
            _ms([t.total - t.sent for t in in_app]),
            _ms([t.total - t.sent for t in email]),
        ],
    ]
    console.print(
        side_by_side(
            f"Fire to delivered, ms, median / p95 of {len(in_app)} runs each",
            ["", "in-app: in the page's DOM", "baseline: email at SES"],
            rows,
        )
    )
    console.print(
        "  Timed from POST /v1/track of the Page Engaged that fires the trigger (local stack in"
        " process, a new user each run). In-app: product_offer until the SDK appends"
        " \\[data-nudge-message], in headless Chromium with the socket open; the page is too short"
        " to scroll, which the SDK counts as 100 % read, so display rule scroll: 50% holds and"
        f" this is delivery, not the 5 s delay; fired {SETTLE:g} s after the page's sync"
        + ("" if rules_held else " [red](but the rules did not hold on some page)[/red]")
        + ". Baseline: product_interest (email) on the same event (active_seconds 121), for a"
        " user identified with an email, until SES accepted it; the runs alternate. The"
        " pipeline up to Send is shared: the difference is the push, the page's ack, Socket's"
        " show and the render, against one SES call."
    )


def _print_counts(console: Console, a: dict[str, Tally], b: dict[str, Tally]) -> None:
    named = [(f"(a) {name}", tally) for name, tally in a.items()]
    named += [(f"(b) {name}", tally) for name, tally in b.items()]
    console.print(
        side_by_side(
            f"Requests per phase, mean of {COUNT_RUNS} people each (below: each phase's"
            " operations with their capacity units, u; Lambda with its mean local duration)",
            ["phase", "DynamoDB requests", "WRU", "RRU", "posts", "Lambda"],
            [_tally_row(name, tally) for name, tally in named],
        )
    )
    for name, tally in named:
        if tally.requests or tally.lambda_invocations:
            console.print(f"  {name}: {_operations(tally) or '-'}; {_invocations(tally) or '-'}")


def _print_costs(console: Console, totals: dict[str, tuple[Tally, Price]]) -> None:
    rows = [_tally_row(label, tally) for label, (tally, _) in totals.items()]
    console.print(
        side_by_side(
            "Per in-app message and per page view",
            ["", "DynamoDB requests", "WRU", "RRU", "posts", "Lambda"],
            rows,
        )
    )
    cost_rows = [
        [
            label,
            f"${p.dynamodb * 1e6:.2f}",
            f"${p.messages * 1e6:.2f}",
            f"${p.minutes * 1e6:.2f}",
            f"${(p.lambda_requests + p.lambda_duration) * 1e6:.2f}",
            f"[bold]${p.total * 1e6:.2f}[/bold]",
        ]
        for label, (_, p) in totals.items()
    ]
    cost_rows.append(
        [
            f"baseline: the budget, $1 per million events, {PAGE_EVENTS:g} events a page view",
            "",
            "",
            "",
            "",
            f"${PAGE_EVENTS:.2f}",
        ]
    )
    console.print(
        side_by_side(
            "$ per million",
            ["", "DynamoDB", "WS messages", "WS minutes", "Lambda", "total"],
            cost_rows,
        )
    )
    console.print(
        "  us-east-1 list prices: DynamoDB on demand $1.25 / $0.25 per million write / read"
        " units; API Gateway WebSocket $1.00 per million messages (frames both ways: posts plus"
        f" the page's sync or ack) and $0.25 per million connection minutes ({PAGE_MINUTES:g}"
        " min assumed per page view); Lambda arm64 512 MB, $0.20 per million requests +"
        " $0.0000133334 per GB-s, at the durations measured here (local moto answers in several"
        " ms where DynamoDB takes a few, so likely an overestimate). Not counted: the event"
        " itself (Ingest, Evaluate: the per-event budget), the SQS requests between Evaluate and"
        " Send, CloudWatch Logs, and the SDK's In-App Message Shown event (one more event)."
    )


def _phase(console: Console, name: str, work: Callable[[Stack, int], T], stack: Stack, n: int) -> T:
    began = time.monotonic()
    result = work(stack, n)
    console.print(f"  [dim]{name}: {time.monotonic() - began:.0f} s[/dim]")
    return result


def run(console: Console) -> Figures:
    started = time.monotonic()
    with running_stack() as stack:
        console.print(f"  [dim]stack up in {time.monotonic() - started:.1f} s[/dim]")
        in_app, email, rules_held = _phase(console, "latency", _latency, stack, RUNS)
        stack.local.reset()
        pushed, kept = _phase(console, "counts", _count, stack, COUNT_RUNS)
        moto_errors, failures = stack.errors.count, list(stack.meter.failures)
    _print_latency(console, in_app, email, rules_held)
    if moto_errors or failures:
        failed = ", ".join(f"{name} ({kind})" for name, kind in failures) or "none"
        console.print(
            f"  moto answered {moto_errors} request(s) with a 500 (its TransactWriteItems"
            " deep-copies the tables while another thread writes: a race in moto; botocore"
            f" retries a 500); failed Lambda invocations: {failed}."
        )

    a = {name: pushed.per_run(name) for name in pushed.parts}
    b = {name: kept.per_run(name) for name in kept.parts}
    empty_sync = a["sync: nothing waiting"]
    page_view = a["open: authorizer + $connect"].plus(empty_sync).plus(a["close: $disconnect"])
    message_a = a["Send: keep + push"].plus(a["ack: take + show"])
    sync_extra = b["sync: the kept message"].minus(empty_sync)
    message_b = b["Send: keep + push"].plus(sync_extra).plus(b["ack: take + show"])
    _print_counts(console, a, b)
    # Inbound frames: a message's ack; a page view's sync.
    price_a, price_b = _price(message_a, 1), _price(message_b, 1)
    price_c = _price(page_view, 1, PAGE_MINUTES)
    totals = {
        "(a) a message pushed to an open page, acked": (message_a, price_a),
        "(b) a message kept, shown at the next page's sync": (message_b, price_b),
        "(c) a page view with a socket: $connect, sync, $disconnect": (page_view, price_c),
    }
    _print_costs(console, totals)

    def stats(values: list[float]) -> dict[str, float]:
        return {
            "median_ms": round(median(values) * 1000, 1),
            "p95_ms": round(percentile(values, 0.95) * 1000, 1),
            "mean_ms": round(statistics.fmean(values) * 1000, 1),
        }

    return {
        "runs": len(in_app),
        "in_app_fire_to_dom": stats([t.total for t in in_app]),
        "in_app_fire_to_send_invoked": stats([t.sent for t in in_app]),
        "email_fire_to_ses": stats([t.total for t in email]),
        "email_fire_to_send_invoked": stats([t.sent for t in email]),
        "settle_seconds": SETTLE,
        "display_rules_held_before_fire": rules_held,
        "moto_500s": moto_errors,
        "failed_invocations": failures,
        "counted_people": COUNT_RUNS,
        "phases_pushed": {name: _tally_json(t) for name, t in a.items()},
        "phases_kept": {name: _tally_json(t) for name, t in b.items()},
        "per_message_pushed": _tally_json(message_a),
        "per_message_kept": _tally_json(message_b),
        "per_page_view": _tally_json(page_view),
        "dollars_per_million": {
            "message_pushed": round(price_a.total * 1e6, 3),
            "message_kept": round(price_b.total * 1e6, 3),
            "page_view_with_socket": round(price_c.total * 1e6, 3),
            "page_view_minutes_assumed": PAGE_MINUTES,
            "budget_per_page_view": PAGE_EVENTS,
        },
    }


if __name__ == "__main__":
    run(Console())
