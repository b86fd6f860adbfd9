"""Load with drain checks: Segment clients' requests for a bounded time, then every event
stored once, every due trigger fired once and every send delivered once.

``python -m local`` runs as a subprocess on free 127.0.0.1 ports, with a loopback CRM
receiver as its webhook URL. ``THREADS`` client threads each play shoppers one after
another (a shopper's requests in order, as one browser or server sends them):

* a browser (analytics.js): a home page, a login (``identify`` with an email, some
  shoppers VIPs, some inactive in the CRM), product pages with ``Product Viewed`` and the
  SDK's ``Page Engaged`` beacons, carts, checkouts and some orders, flushed as
  ``/v1/batch`` requests of 1 to 20 events;
* a server (analytics-python): the same kind of shopper without page beacons, one call
  per request (``/v1/identify``, ``/v1/page``, ``/v1/track``).

A refused request (429, 5xx, a dropped connection) is sent again as it was, up to
``RETRIES`` times, as the clients do. The load stops after ``NUDGE_LOAD_SECONDS`` (60) or
``NUDGE_LOAD_EVENTS`` events. Then the stack is drained and its virtual clock advanced
past every timer and inactivity window (``HORIZON``), and three checks are made against
counts the product does not keep itself:

1. stored: the messageIds of the event items in the table (``store.event_bodies``), each
   accepted event once;
2. fired: the fire records (``GET /_local/fires``) against ``backtest()`` run on the
   stored events (their own times, the clock run on to the stack's), as (trigger, person,
   occurrence);
3. delivered: SES's sent mail (``/_local/outbox``), the CRM receiver's requests and the
   in-app inbox items (read right after the load's drain too, since the local stack's TTL
   sweep deletes each a day after its fire), by fire id, against the fires that should be
   delivered: not the
   holdout's, not those delivery declined by policy (caps, cooldown, suppression, no
   address), as its decision records say.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import boto3
import requests
from nudge.adapters import keys
from nudge.adapters.packing import decisions_held
from nudge.adapters.store import event_bodies, from_attributes
from nudge.domain.triggers.loader import load_triggers
from nudge.service.backtest import backtest
from nudge.service.recorded_events import read_events
from rich.console import Console

from bench.common import (
    REPO,
    STACK_WRITE_KEY,
    Figures,
    percentile,
    running_stack,
    side_by_side,
)
from bench.receiver import Receiver

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = [
    "Check",
    "Checks",
    "LoadResult",
    "Request",
    "Settings",
    "check",
    "journey",
    "load_and_check",
    "run",
    "send_load",
    "settle",
]

THREADS = 8
RETRIES = 3
REQUEST_TIMEOUT = 30.0
REQUEST_DRAIN_TIMEOUT = 600.0  # one POST /_local/drain gives up (500) after 60 s of work
DRAIN_LIMIT = 1800.0  # Evaluate catching up on a minute of load on a busy 2-core machine
# Past every timer and window of the shipped triggers: a 48 h cart arm, a week of
# inactivity decided by the hourly sweep, quiet hours and delivery retries after them.
HORIZON = timedelta(days=8, hours=2)
CLOCK_STEP = timedelta(hours=6)
BROWSER_SHARE = 0.7
# How analytics.js flushes: mostly small batches, now and then a full queue.
BATCH_SIZES = (1, 2, 3, 5, 8, 12, 20)
BATCH_WEIGHTS = (20, 15, 15, 15, 15, 10, 10)
SHOP = "https://shop.example.com"
PRODUCTS = tuple(f"sku-{n}" for n in range(100, 140))
# The delivery outcomes that decline a fire for good: it is not to be delivered.
DECLINED = frozenset({"capped", "cooldown", "suppressed", "skipped"})
USER_AGENT = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)


@dataclass(frozen=True)
class Settings:
    seconds: float = 60.0
    max_events: int = 1_000_000
    threads: int = THREADS
    seed: int = 20261205

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            seconds=float(os.environ.get("NUDGE_LOAD_SECONDS", "60")),
            max_events=int(os.environ.get("NUDGE_LOAD_EVENTS", "1000000")),
        )


@dataclass(frozen=True)
class Request:
    """One request a client sends: its route and messages, stamped when sent."""

    route: str  # batch, track, page, identify
    messages: list[dict[str, Any]]

    @property
    def shape(self) -> str:
        if self.route != "batch":
            return f"/v1/{self.route}"
        size = len(self.messages)
        bucket = "1" if size == 1 else "2-5" if size <= 5 else "6-10" if size <= 10 else "11-20"
        return f"/v1/batch of {bucket}"

    def stamped(self, now: datetime) -> dict[str, Any]:
        """The body as the client sends it: events a millisecond apart, queued before now."""
        last = len(self.messages) - 1
        messages = [
            {
                **message,
                "timestamp": _iso(now - timedelta(milliseconds=last - n)),
                "sentAt": _iso(now),
            }
            for n, message in enumerate(self.messages)
        ]
        return {"batch": messages, "sentAt": _iso(now)} if self.route == "batch" else messages[0]


# ---- the shoppers ------------------------------------------------------------------------


def journey(chooser: random.Random, user_id: str) -> list[Request]:
    """One shopper's requests in the order their client sends them."""
    if chooser.random() < BROWSER_SHARE:
        return list(_flushed(chooser, list(_browser(chooser, user_id))))
    return [Request(str(message["type"]), [message]) for message in _server(chooser, user_id)]


def _traits(chooser: random.Random, user_id: str) -> dict[str, Any]:
    traits: dict[str, Any] = {"email": f"{user_id}@example.com", "timezone": "Europe/Berlin"}
    if chooser.random() < 0.2:
        traits["tier"] = "vip"
    if chooser.random() < 0.4:
        traits["crm_status"] = "inactive"
    return traits


def _browser(chooser: random.Random, user_id: str) -> Iterator[dict[str, Any]]:
    anonymous = {"anonymousId": str(uuid.UUID(int=chooser.getrandbits(128)))}
    yield _page(anonymous, "/", browser=True)
    known = {**anonymous, "userId": user_id}
    yield {
        **_base(known, "/login", browser=True),
        "type": "identify",
        "traits": _traits(chooser, user_id),
    }
    cart = f"cart-{chooser.getrandbits(48):012x}"
    added: list[str] = []
    for product in chooser.sample(PRODUCTS, chooser.randint(1, 4)):
        path = f"/products/{product}"
        yield _page(known, path, browser=True)
        yield _track(known, "Product Viewed", _product(product), path, browser=True)
        for active in _engaged(chooser):
            properties = {"product_id": product, "active_seconds": active}
            yield _track(known, "Page Engaged", properties, path, browser=True)
        if chooser.random() < 0.5:
            added.append(product)
            properties = {**_product(product), "cart_id": cart, "quantity": 1}
            yield _track(known, "Product Added", properties, path, browser=True)
    yield from _checkout(chooser, known, cart, added, browser=True)


def _server(chooser: random.Random, user_id: str) -> Iterator[dict[str, Any]]:
    known = {"userId": user_id}
    yield {
        **_base(known, "/login", browser=False),
        "type": "identify",
        "traits": _traits(chooser, user_id),
    }
    cart = f"cart-{chooser.getrandbits(48):012x}"
    added = chooser.sample(PRODUCTS, chooser.randint(1, 3))
    for product in added:
        path = f"/products/{product}"
        yield _page(known, path, browser=False)
        properties = {**_product(product), "cart_id": cart, "quantity": 1}
        yield _track(known, "Product Added", properties, path, browser=False)
    yield from _checkout(chooser, known, cart, added, browser=False)


def _engaged(chooser: random.Random) -> list[int]:
    """The SDK's Page Engaged marks a page reached: most are glanced at, some read."""
    reached = chooser.choices((0, 1, 2, 3), weights=(40, 30, 20, 10))[0]
    return [30, 120, 300][:reached]


def _checkout(
    chooser: random.Random, known: dict[str, Any], cart: str, added: list[str], *, browser: bool
) -> Iterator[dict[str, Any]]:
    if not added or chooser.random() < 0.4:
        return
    value = float(len(added) * 25)
    properties = {"cart_id": cart, "value": value, "currency": "EUR"}
    yield _track(known, "Checkout Started", properties, "/checkout", browser=browser)
    if chooser.random() < 0.5:
        order = {**properties, "order_id": f"order-{cart[5:]}", "revenue": value}
        yield _track(known, "Order Completed", order, "/checkout", browser=browser)


def _flushed(chooser: random.Random, messages: list[dict[str, Any]]) -> Iterator[Request]:
    """analytics.js's queue flushed in batches of the sizes it sends."""
    while messages:
        size = chooser.choices(BATCH_SIZES, weights=BATCH_WEIGHTS)[0]
        yield Request("batch", messages[:size])
        messages = messages[size:]


def _base(identity: dict[str, Any], path: str, *, browser: bool) -> dict[str, Any]:
    message = {**identity, "messageId": f"load-{uuid.uuid4().hex}"}
    if browser:
        message["context"] = {
            "library": {"name": "analytics.js", "version": "next-1.72.0"},
            "page": {"path": path, "url": f"{SHOP}{path}", "title": "Example Shop"},
            "userAgent": USER_AGENT,
            "locale": "de-DE",
            "timezone": "Europe/Berlin",
        }
    else:
        message["context"] = {"library": {"name": "analytics-python", "version": "2.3.3"}}
    return message


def _page(identity: dict[str, Any], path: str, *, browser: bool) -> dict[str, Any]:
    properties = {"path": path, "url": f"{SHOP}{path}", "title": "Example Shop"}
    return {**_base(identity, path, browser=browser), "type": "page", "properties": properties}


def _track(
    identity: dict[str, Any], event: str, properties: dict[str, Any], path: str, *, browser: bool
) -> dict[str, Any]:
    base = _base(identity, path, browser=browser)
    return {**base, "type": "track", "event": event, "properties": properties}


def _product(product: str) -> dict[str, Any]:
    return {
        "product_id": product,
        "sku": product,
        "name": f"Product {product}",
        "price": 25.0,
        "currency": "EUR",
        "url": f"{SHOP}/products/{product}",
        "image_url": f"{SHOP}/img/{product}.jpg",
    }


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# ---- sending -----------------------------------------------------------------------------


@dataclass
class LoadResult:
    """What the clients sent and what the stack answered."""

    accepted: set[str] = field(default_factory=set)  # messageIds of answered requests
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    refusals: Counter[tuple[str, str]] = field(default_factory=Counter)  # (shape, status)
    unanswered: int = 0  # requests given up after RETRIES refusals
    shoppers: int = 0
    seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def events_per_second(self) -> float:
        return len(self.accepted) / self.seconds if self.seconds else 0.0


class _Budget:
    """Events still to be sent, shared by the client threads."""

    def __init__(self, events: int, seconds: float) -> None:
        self._left = events
        self._lock = threading.Lock()
        self.deadline = time.monotonic() + seconds

    def take(self, events: int) -> bool:
        with self._lock:
            if self._left < events or time.monotonic() >= self.deadline:
                return False
            self._left -= events
            return True


def send_load(base: str, settings: Settings) -> LoadResult:
    result = LoadResult()
    budget = _Budget(settings.max_events, settings.seconds)
    tag = uuid.uuid4().hex[:6]
    started = time.monotonic()
    threads = [
        threading.Thread(
            target=_client,
            args=(base, result, budget, random.Random(settings.seed + n), f"load-{tag}-{n}"),
            name=f"load-client-{n}",
        )
        for n in range(settings.threads)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.seconds = time.monotonic() - started
    return result


def _client(
    base: str, result: LoadResult, budget: _Budget, chooser: random.Random, prefix: str
) -> None:
    """One client thread: shoppers one after another, each shopper's requests in order."""
    with requests.Session() as http:
        http.auth = (STACK_WRITE_KEY, "")
        for number in itertools.count():
            with result.lock:
                result.shoppers += 1
            for request in journey(chooser, f"{prefix}-{number}"):
                if not budget.take(len(request.messages)):
                    return
                _send(http, base, request, result)


def _send(http: requests.Session, base: str, request: Request, result: LoadResult) -> None:
    body = request.stamped(datetime.now(UTC))
    for attempt in range(RETRIES + 1):
        began = time.perf_counter()
        try:
            answer = http.post(f"{base}/v1/{request.route}", json=body, timeout=REQUEST_TIMEOUT)
            status = str(answer.status_code)
        except requests.RequestException as error:
            status = type(error).__name__
        took = time.perf_counter() - began
        with result.lock:
            result.latencies[request.shape].append(took)
            if status == "200":
                result.accepted.update(m["messageId"] for m in request.messages)
                return
            result.refusals[(request.shape, status)] += 1
        time.sleep(0.2 * 2**attempt)
    with result.lock:
        result.unanswered += 1


# ---- settling: drain, and the clock past every timer ---------------------------------------


def settle(base: str) -> datetime:
    """Drains, advances the virtual clock by HORIZON in steps (each advance runs every
    moment due on the way; one that stops short is continued), drains again; the clock's
    time at the end."""
    _drain(base)
    end = _now(base) + HORIZON
    while (now := _now(base)) < end:
        step = min(CLOCK_STEP, end - now)
        answer = requests.post(
            f"{base}/_local/clock/advance", json={"seconds": step.total_seconds()}, timeout=None
        )
        answer.raise_for_status()
    _drain(base)
    return _now(base)


def _now(base: str) -> datetime:
    answer = requests.get(f"{base}/_local/clock", timeout=REQUEST_TIMEOUT)
    answer.raise_for_status()
    return datetime.fromisoformat(answer.json()["now"])


def _drain(base: str) -> None:
    """POST /_local/drain until it reports drained, for at most DRAIN_LIMIT seconds."""
    deadline = time.monotonic() + DRAIN_LIMIT
    while time.monotonic() < deadline:
        answer = requests.post(f"{base}/_local/drain", timeout=REQUEST_DRAIN_TIMEOUT)
        if answer.status_code == 200:
            return
    raise TimeoutError(f"the stack was still draining after {DRAIN_LIMIT:.0f} s")


# ---- the checks ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One count against its independent expectation."""

    name: str
    expected: int
    found: int
    missing: list[str]
    duplicated: list[str]
    unexpected: list[str]

    @property
    def ok(self) -> bool:
        return not (self.missing or self.duplicated or self.unexpected)

    def figures(self) -> dict[str, Any]:
        return {
            "expected": self.expected,
            "found": self.found,
            "missing": len(self.missing),
            "duplicated": len(self.duplicated),
            "unexpected": len(self.unexpected),
            "examples": (self.missing + self.duplicated + self.unexpected)[:5],
        }


def _compare(name: str, expected: set[str], found: Counter[str]) -> Check:
    return Check(
        name=name,
        expected=len(expected),
        found=sum(found.values()),
        missing=sorted(expected - found.keys()),
        duplicated=sorted(key for key, count in found.items() if count > 1),
        unexpected=sorted(found.keys() - expected),
    )


@dataclass(frozen=True)
class Checks:
    stored: Check
    fired: Check
    delivered: Check
    fires_by_trigger: dict[str, int]
    deliveries_by_channel: dict[str, int]
    declined: int
    held_out: int

    @property
    def ok(self) -> bool:
        return self.stored.ok and self.fired.ok and self.delivered.ok

    def rows(self) -> list[Check]:
        return [self.stored, self.fired, self.delivered]


@dataclass
class _Table:
    """The table as read back (event bodies, decision records, inbox items), and the fire
    records ``GET /_local/fires`` lists."""

    # Each stored event as `nudge backtest` reads an exported item: its partition, its body.
    events: list[dict[str, Any]] = field(default_factory=list)
    fires: list[dict[str, Any]] = field(default_factory=list)
    decisions: list[dict[str, Any]] = field(default_factory=list)
    in_app: list[str] = field(default_factory=list)  # fire ids kept for a page


def _read_table(client: DynamoDBClient) -> _Table:
    name = next(n for n in client.list_tables()["TableNames"] if n.endswith("-Table"))
    table = _Table()
    for page in client.get_paginator("scan").paginate(TableName=name):
        for raw in page.get("Items", []):
            item = from_attributes(raw)
            kind = item.get("kind")
            if kind == keys.EVENT_KIND:
                table.events += [{"pk": item["pk"], "body": b} for b in event_bodies(item)]
            elif kind == keys.DECISION_KIND:
                person = str(item.get("person"))
                table.decisions += [{"person": person, **d} for d in decisions_held(item)]
            elif kind == keys.IN_APP_KIND:
                table.in_app.append(str(item["sk"]).removeprefix(keys.IN_APP_SK_PREFIX))
    return table


def _fire_key(trigger: Any, person: Any, occurrence: Any) -> str:
    return f"{trigger} {person} {occurrence}"


def check(
    client: DynamoDBClient,
    accepted: set[str],
    until: datetime,
    fires: Sequence[dict[str, Any]],
    outbox: Sequence[dict[str, Any]],
    webhook_ids: Sequence[str],
    in_app_seen: set[str] | None = None,
) -> Checks:
    """``in_app_seen``: inbox items read earlier, before their TTL could delete them."""
    table = _read_table(client)
    table.fires = list(fires)
    table.in_app = sorted(set(table.in_app) | (in_app_seen or set()))
    stored = _compare(
        "every accepted event stored once",
        accepted,
        Counter(str(event["body"]["messageId"]) for event in table.events),
    )
    fired = _check_fires(table, until)
    delivered, declined, held_out = _check_deliveries(table, outbox, webhook_ids)
    by_channel = Counter(str(fire.get("channel")) for fire in table.fires)
    return Checks(
        stored=stored,
        fired=fired,
        delivered=delivered,
        fires_by_trigger=dict(Counter(str(fire["trigger"]) for fire in table.fires)),
        deliveries_by_channel=dict(by_channel),
        declined=declined,
        held_out=held_out,
    )


def _check_fires(table: _Table, until: datetime) -> Check:
    """The fire records against the backtest of the stored events, on the same clock."""
    exported = ({**event, "body": json.dumps(event["body"])} for event in table.events)
    events, skipped = read_events(json.dumps(item) for item in exported)
    if skipped:
        raise ValueError(f"the backtest could not read stored events: {skipped[:3]}")
    loaded = load_triggers(REPO / "triggers")
    report = backtest(events, loaded.triggers, until=until)
    expected = {_fire_key(f.trigger, f.person, f.occurrence) for f in report.fired}
    found = Counter(
        _fire_key(fire["trigger"], fire["person"], fire["occurrence"]) for fire in table.fires
    )
    return _compare("every due trigger fired once", expected, found)


def _check_deliveries(
    table: _Table, outbox: Sequence[dict[str, Any]], webhook_ids: Sequence[str]
) -> tuple[Check, int, int]:
    """What reached SES, the CRM and the in-app inbox, by fire id, against the fires to
    deliver: every fire but the holdout's and those delivery declined."""
    declined_keys = {
        _fire_key(d.get("trigger"), d.get("person"), d.get("occurrence"))
        for d in table.decisions
        if d.get("outcome") in DECLINED
    }
    held_out = [fire for fire in table.fires if fire.get("variant") == "holdout"]
    to_deliver = {
        str(fire["fireId"])
        for fire in table.fires
        if fire.get("variant") != "holdout"
        and _fire_key(fire["trigger"], fire["person"], fire["occurrence"]) not in declined_keys
    }
    found: Counter[str] = Counter()
    found.update(
        str(mail["fire"]) for mail in outbox if mail.get("channel") == "email" and "id" in mail
    )
    found.update(webhook_ids)
    found.update(table.in_app)
    declined = len(table.fires) - len(held_out) - len(to_deliver)
    return _compare("every send delivered once", to_deliver, found), declined, len(held_out)


def load_and_check(settings: Settings) -> tuple[LoadResult, Checks, float]:
    """The whole run: stack, load, settle, checks; also the settle's seconds."""
    # The loopback CRM: answers every webhook 204, and keeps what it was sent.
    receiver = Receiver(path="/crm/tasks")
    with (
        receiver.serving("load-crm") as crm,
        running_stack({"NUDGE_CRM_WEBHOOK_URL": crm.url}) as stack,
    ):
        result = send_load(stack.base, settings)
        assert stack.moto_endpoint is not None
        client: DynamoDBClient = boto3.client(
            "dynamodb",
            endpoint_url=stack.moto_endpoint,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
        began = time.monotonic()
        # In-app messages are read before the clock runs on: each expires a day after its
        # fire, and the local stack's TTL sweep then deletes it, as DynamoDB's would.
        _drain(stack.base)
        in_app_seen = set(_read_table(client).in_app)
        until = settle(stack.base)
        settled = time.monotonic() - began
        fires = requests.get(f"{stack.base}/_local/fires", timeout=REQUEST_TIMEOUT).json()
        outbox = requests.get(f"{stack.base}/_local/outbox", timeout=REQUEST_TIMEOUT).json()
        webhook_ids = [str(request.header("webhook-id")) for request in crm.received()]
        checks = check(client, result.accepted, until, fires, outbox, webhook_ids, in_app_seen)
    return result, checks, settled


# ---- the report ---------------------------------------------------------------------------


def run(console: Console) -> Figures:
    settings = Settings.from_env()
    result, checks, settled = load_and_check(settings)
    console.print(_load_table(result, settings))
    refusals = ", ".join(
        f"{shape} {status}: {n}" for (shape, status), n in sorted(result.refusals.items())
    )
    console.print(
        f"  refusals (each answer, retried up to {RETRIES} times): {refusals or 'none'};"
        f" given up: {result.unanswered}; drained and clock +{HORIZON} in {settled:.1f} s"
    )
    console.print(_checks_table(checks))
    console.print(
        f"  fires by trigger: {dict(sorted(checks.fires_by_trigger.items()))};"
        f" held out {checks.held_out}, declined by policy {checks.declined}"
    )
    return {
        "seconds": result.seconds,
        "threads": settings.threads,
        "shoppers": result.shoppers,
        "events_accepted": len(result.accepted),
        "events_per_second": result.events_per_second,
        "latency_ms": {
            shape: _latency(values) for shape, values in sorted(result.latencies.items())
        },
        "refusals": {f"{shape} {status}": n for (shape, status), n in result.refusals.items()},
        "unanswered": result.unanswered,
        "settle_seconds": settled,
        "checks": {row.name: row.figures() for row in checks.rows()},
        "fires_by_trigger": checks.fires_by_trigger,
        "held_out": checks.held_out,
        "declined": checks.declined,
        "all_ok": checks.ok,
    }


def _latency(values: Sequence[float]) -> dict[str, float]:
    return {
        "requests": len(values),
        "p50": percentile(values, 0.50) * 1000,
        "p99": percentile(values, 0.99) * 1000,
        "max": max(values, default=0.0) * 1000,
    }


def _load_table(result: LoadResult, settings: Settings) -> Any:
    rows = [
        [shape, str(f["requests"]), f"{f['p50']:.0f}", f"{f['p99']:.0f}", f"{f['max']:.0f}"]
        for shape, values in sorted(result.latencies.items())
        for f in [_latency(values)]
    ]
    return side_by_side(
        f"Load: {settings.threads} clients, {result.seconds:.0f} s, {result.shoppers} shoppers,"
        f" {len(result.accepted):,} events accepted = {result.events_per_second:.0f} events/s",
        ["request shape", "requests", "p50 ms", "p99 ms", "max ms"],
        rows,
    )


def _checks_table(checks: Checks) -> Any:
    rows = [
        [
            row.name,
            str(row.expected),
            str(row.found),
            str(len(row.missing)),
            str(len(row.duplicated)),
            str(len(row.unexpected)),
        ]
        for row in checks.rows()
    ]
    return side_by_side(
        "After draining, against independent counts",
        ["check", "expected", "found", "missing", "duplicated", "unexpected"],
        rows,
    )
