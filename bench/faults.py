"""The fault matrix: every AWS call site throttled and failing, every function crashing
mid-batch, the event sources misbehaving, webhook receivers misbehaving; what each did to
the events, the fires and the sends.

Each cell is one fresh in-process world (``bench.fault_world``: moto, the handlers loaded
from their CodeUri, the local stack's event sources on a virtual clock) running the same
shop day: five people's beacons (three abandon a cart and look at a product long enough,
one VIP starts a checkout, one buyer adds to cart and orders two hours later), then two
days of clock, every timer due on the way. One fault is armed, either before the beacons
(``intake``) or once they are in and the timers are armed (``timers``). Then a drain and
a check, against counts that come from the scenario, not from a run:

- every accepted event stored once (messageIds read back from the event items);
- every due trigger fired once (fire records), and the cancelled cart not at all;
- every fire delivered once (SES's accepted messages by their X-Nudge-Fire header, the
  webhook receiver's 200s by webhook-id), or dead-lettered with a reason where that is
  meant (a redirect; an interrupted email whose receipt could not be recorded).

The outcome is the worst that happened: ``lost``, ``duplicated``, ``refused`` (dead-lettered
with the reason shown), ``delayed`` (every count right, a delivery later than its due by
more than a minute of virtual time) or ``none``.
"""

from __future__ import annotations

import base64
import contextlib
import email
import email.policy
import io
import json
import logging
import re
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any, cast
from urllib.parse import urlsplit

from moto.ses.models import ses_backends
from nudge.adapters.engine_store import EngineStore
from nudge.adapters.keys import EVENT_KIND
from nudge.adapters.store import event_bodies
from nudge.domain.person import PersonId
from nudge.domain.triggers.experiment import assign
from nudge.domain.triggers.loader import load_triggers
from rich.console import Console
from rich.table import Table

from bench.common import REPO, Figures
from bench.fault_world import (
    POLLER,
    Fault,
    World,
    crm,
    delivered_at,
    delivered_ids,
    world,
)
from local.template import ACCOUNT

__all__ = ["CELLS", "Cell", "Check", "run", "run_cell"]

# A Monday, ahead of any real clock this runs on (the virtual clock only moves forward).
START = datetime(2030, 1, 7, 10, 0, tzinfo=UTC)
LATE_ENOUGH = timedelta(minutes=1)  # a delivery later than its due by more is "delayed"
WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})
READS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"})
CLIENT_ATTEMPTS = 6  # an API client (analytics.js, the Segment SDKs) retrying 5xx and 429


# ---- the scenario ------------------------------------------------------------------------


def _in_h24(prefix: str) -> str:
    """The first ``<prefix>-<n>`` the shipped abandoned_cart experiment emails after 24 h."""
    (cart,) = [t for t in load_triggers(REPO / "triggers").triggers if t.id == "abandoned_cart"]
    assert cart.experiment is not None
    n = 1
    while assign(cart.id, cart.experiment, PersonId.user(f"{prefix}-{n}")) != "h24":
        n += 1
    return f"{prefix}-{n}"


@dataclass(frozen=True)
class Scenario:
    shoppers: tuple[str, ...]
    vip: str
    buyer: str

    @classmethod
    def build(cls) -> Scenario:
        return cls(
            shoppers=tuple(_in_h24(prefix) for prefix in ("ann", "bob", "cy")),
            vip="vera",
            buyer=_in_h24("bea"),
        )

    @property
    def people(self) -> list[str]:
        return [*self.shoppers, self.vip, self.buyer]

    def intake(self) -> list[list[dict[str, Any]]]:
        """The first requests, one /v1/batch a person, at START."""
        batches = [
            [
                _identify(who, email=f"{who}@shop.test"),
                _track(who, "Product Added", f"add-{who}", cart_id=f"cart-{who}", price=10.0),
                _track(
                    who, "Page Engaged", f"look-{who}", product_id=f"p-{who}", active_seconds=300
                ),
            ]
            for who in self.shoppers
        ]
        batches.append(
            [
                _identify(self.vip, email=f"{self.vip}@shop.test", tier="vip"),
                _track(self.vip, "Checkout Started", f"checkout-{self.vip}"),
            ]
        )
        batches.append(
            [
                _identify(self.buyer, email=f"{self.buyer}@shop.test"),
                _track(self.buyer, "Product Added", f"add-{self.buyer}", cart_id="cart-b"),
            ]
        )
        return batches

    def order(self) -> list[dict[str, Any]]:
        """Two hours on: the buyer orders, which cancels the cart's timer (DeleteSchedule)."""
        at = START + timedelta(hours=2)
        return [_track(self.buyer, "Order Completed", f"order-{self.buyer}", at, cart_id="cart-b")]

    def link_events(self) -> list[tuple[str, str]]:
        """(userId, event) of the email links followed: every shopper's open, the first
        shopper's unsubscribe."""
        opens = [(who, "Email Opened") for who in self.shoppers]
        return [*opens, (self.shoppers[0], "Unsubscribed")]

    def expected_fires(self) -> dict[tuple[str, str], datetime]:
        """(person, trigger) -> when it is due: the triggers' own timings."""
        due = {(f"u:{who}", "product_interest"): START for who in self.shoppers}
        due |= {
            (f"u:{who}", "abandoned_cart"): START + timedelta(hours=24) for who in self.shoppers
        }
        due[(f"u:{self.vip}", "vip_checkout_call")] = START + timedelta(hours=1)
        return due


def _identify(who: str, **traits: Any) -> dict[str, Any]:
    return {
        "type": "identify",
        "userId": who,
        "messageId": f"identify-{who}",
        "timestamp": _iso(START),
        "traits": {**traits, "timezone": "UTC"},
    }


def _track(
    who: str, event: str, message_id: str, at: datetime = START, **properties: Any
) -> dict[str, Any]:
    return {
        "type": "track",
        "userId": who,
        "event": event,
        "messageId": message_id,
        "timestamp": _iso(at),
        "properties": properties,
    }


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _beacon(messages: list[dict[str, Any]], at: datetime) -> dict[str, Any]:
    """POST /v1/batch, as Ingest receives it."""
    event = _api_event("POST", "/v1/batch", "POST /v1/batch", at)
    auth = "Basic " + base64.b64encode(b"bench-write-key:").decode()
    event["headers"].update({"content-type": "application/json", "authorization": auth})
    event["body"] = json.dumps({"batch": messages})
    return event


def _api_event(method: str, path: str, route: str, at: datetime) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) request, without a body."""
    agent = "Mozilla/5.0 (bench faults)"
    return {
        "version": "2.0",
        "routeKey": route,
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"user-agent": agent},
        "requestContext": {
            "accountId": ACCOUNT,
            "apiId": "faults",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.1",
                "userAgent": agent,
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": route,
            "stage": "$default",
            "timeEpoch": int(at.timestamp() * 1000),
        },
        "isBase64Encoded": False,
    }


# ---- the cells -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Cell:
    fault: str
    site: str
    faults: tuple[Fault, ...] = ()
    phase: str = "intake"  # armed before the beacons, or once the timers are armed
    stream: str = ""  # the stream's anomaly: duplicated, reordered
    late: timedelta = timedelta(0)
    doubled: bool = False
    sqs_duplicates: int = 0
    receiver: str = ""  # the webhook receiver's misbehaviour
    refused: bool = False  # meant to be dead-lettered, with its reason (a fire or a receipt)


def _aws(function: str, service: str, operations: Iterable[str], kind: str, **more: Any) -> Fault:
    return Fault(function, service, frozenset(operations), kind, **more)


def _errors(
    label: str, function: str, service: str, operations: Sequence[str], phase: str = "intake"
) -> list[Cell]:
    """The call site throttled, then failing with a 5xx: twice each, past the SDK's retries."""
    return [
        Cell(
            f"{service} {name}",
            f"{function}: {label}",
            (_aws(function, service, operations, kind, times=2),),
            phase,
        )
        for kind, name in (("throttle", "throttled"), ("server_error", "5xx"))
    ]


def _crash(label: str, fault: Fault, phase: str = "intake") -> Cell:
    return Cell("crash", label, (fault,), phase)


CELLS: tuple[Cell, ...] = (
    *_errors("event writes", "Ingest", "dynamodb", sorted(WRITES)),
    *_errors("profile/timer reads", "Evaluate", "dynamodb", sorted(READS)),
    *_errors("profile/ledger writes", "Evaluate", "dynamodb", sorted(WRITES)),
    *_errors("timer reads and writes (on timer)", "Evaluate", "dynamodb", [], "timers"),
    *_errors("contact claims", "Send", "dynamodb", sorted(WRITES), "timers"),
    *_errors("profile reads", "Send", "dynamodb", sorted(READS), "timers"),
    *_errors("receipts", "Feedback", "dynamodb", sorted(WRITES), "timers"),
    *_errors("open events", "Track", "dynamodb", sorted(WRITES), "timers"),
    *(
        replace(cell, faults=tuple(replace(fault, skip=3) for fault in cell.faults))
        for cell in _errors("one-click unsubscribe", "Track", "dynamodb", sorted(WRITES), "timers")
    ),
    *_errors("GetRecords", POLLER, "dynamodbstreams", ["GetRecords"]),
    *_errors("SendMessage (stream)", "Evaluate", "sqs", ["SendMessage"]),
    *_errors("SendMessage (timer)", "Evaluate", "sqs", ["SendMessage"], "timers"),
    *_errors("CreateSchedule", "Evaluate", "scheduler", ["CreateSchedule"]),
    *_errors("DeleteSchedule", "Evaluate", "scheduler", ["DeleteSchedule"], "timers"),
    *_errors("SendEmail", "Send", "sesv2", ["SendEmail"], "timers"),
    Cell(
        "sesv2 accepted, then crash",
        "Send: SendEmail",
        (_aws("Send", "sesv2", ["SendEmail"], "crash_after"),),
        "timers",
    ),
    Cell(
        "sesv2 accepted, then crash",
        "Send: SendEmail, and every receipt write failing",
        (
            _aws("Send", "sesv2", ["SendEmail"], "crash_after"),
            _aws("Feedback", "dynamodb", WRITES, "server_error", times=100),
        ),
        "timers",
        # Nobody can say whether SES accepted the email (it did): the fire is refused after
        # a day of failed receipts rather than sent twice (domain/interrupted.py).
        refused=True,
    ),
    _crash("Ingest: after its first write", _aws("Ingest", "dynamodb", WRITES, "crash_after")),
    _crash(
        "Evaluate (stream): after its 2nd write",
        _aws("Evaluate", "dynamodb", WRITES, "crash_after", skip=1),
    ),
    _crash(
        "Evaluate (stream): after SendMessage",
        _aws("Evaluate", "sqs", ["SendMessage"], "crash_after"),
    ),
    _crash(
        "Evaluate (stream): after CreateSchedule",
        _aws("Evaluate", "scheduler", ["CreateSchedule"], "crash_after"),
    ),
    _crash(
        "Evaluate (timer): after SendMessage",
        _aws("Evaluate", "sqs", ["SendMessage"], "crash_after"),
        "timers",
    ),
    _crash(
        "Evaluate (timer): after its first write",
        _aws("Evaluate", "dynamodb", WRITES, "crash_after"),
        "timers",
    ),
    _crash("Send: after its claim", _aws("Send", "dynamodb", WRITES, "crash_after"), "timers"),
    _crash(
        "Send: before SendEmail", _aws("Send", "sesv2", ["SendEmail"], "crash_before"), "timers"
    ),
    _crash(
        "Track: unsubscribe, after its first write",
        _aws("Track", "dynamodb", WRITES, "crash_after", skip=3),
        "timers",
    ),
    _crash(
        "Feedback: after its first write",
        _aws("Feedback", "dynamodb", WRITES, "crash_after"),
        "timers",
    ),
    Cell("stream records duplicated", "Evaluate: every batch twice", stream="duplicated"),
    Cell("stream records reordered", "Evaluate: every batch reversed", stream="reordered"),
    Cell("schedule fired late", "Evaluate: timers 6 h late", late=timedelta(hours=6)),
    Cell("schedule fired twice", "Evaluate: every timer twice", doubled=True),
    Cell("SQS redelivery", "Send: every message twice", sqs_duplicates=100),
    Cell("webhook hangs", "Send: receiver silent past the timeout", receiver="hang"),
    Cell("webhook resets", "Send: connection reset", receiver="reset"),
    Cell(
        "webhook redirects",
        "Send: 307 to loopback",
        receiver="redirect_loopback",
        refused=True,
    ),
    Cell(
        "webhook redirects",
        "Send: 307 to a private address",
        receiver="redirect_private",
        refused=True,
    ),
)


# ---- running one -----------------------------------------------------------------------------


@dataclass
class Check:
    cell: Cell
    events: int = 0
    events_expected: int = 0
    fires: int = 0
    fires_expected: int = 0
    sends: int = 0
    sends_expected: int = 0
    duplicated: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    dead_letters: list[str] = field(default_factory=list)
    delay: timedelta = timedelta(0)
    injected: int = 0
    client_saw: list[str] = field(default_factory=list)
    seconds: float = 0.0
    hits: list[str] = field(default_factory=list)  # the calls the faults failed

    @property
    def outcome(self) -> str:
        if self.duplicated:
            return "duplicated"
        if self.lost or self.dead_letters:
            return "refused" if self.cell.refused and self.dead_letters else "lost"
        if self.delay > LATE_ENOUGH:
            return "delayed"
        return "none"

    @property
    def detail(self) -> str:
        notes = []
        if self.client_saw:
            notes.append(f"client retried after {self.client_saw[0]}")
        if self.dead_letters:
            more = f" (+{len(self.dead_letters) - 1} more)" if len(self.dead_letters) > 1 else ""
            notes.append(f"dead-lettered: {self.dead_letters[0]}{more}")
        if self.duplicated:
            notes.append(f"twice: {', '.join(self.duplicated[:3])}")
        if self.lost and not self.cell.refused:
            notes.append(f"missing: {', '.join(self.lost[:3])}")
        return "; ".join(notes)


def _duration(span: timedelta) -> str:
    seconds = int(span.total_seconds())
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds // 60} min" if seconds >= 60 else f"{seconds} s"


def run_cell(cell: Cell, scenario: Scenario) -> Check:
    started = time.monotonic()
    receiver = crm(cell.receiver)
    # The functions log and emit metrics to stdout, as Lambda wants: not onto the table.
    with world(START, receiver) as here, contextlib.redirect_stdout(io.StringIO()):
        here.stream.anomaly = cell.stream
        here.schedules.late = cell.late
        here.schedules.doubled = cell.doubled
        here.queue_faults.set("duplicate", cell.sqs_duplicates)
        here.sqs_duplicates = cell.sqs_duplicates
        # Fresh copies: a cell's faults count down as they are injected.
        faults = [replace(fault, hits=[]) for fault in cell.faults]
        if cell.phase == "intake":
            here.injector.faults = faults
        client_saw = [saw for batch in scenario.intake() for saw in _post(here, batch)]
        here.advance(3600 * 2)
        client_saw += _post(here, scenario.order())
        if cell.phase == "timers":
            here.injector.faults = faults
        here.advance(3600 * 24 * 2)
        client_saw += _follow_links(here, scenario)
        here.advance(3600)
        check = _check(here, cell, scenario)
        check.client_saw = client_saw
        check.injected = here.anomalies()
        check.hits = [f"{fault.function} {hit}" for fault in faults for hit in fault.hits]
    check.seconds = time.monotonic() - started
    return check


def _post(here: World, messages: list[dict[str, Any]]) -> list[str]:
    """An API client's request, retried on a 5xx or 429 (or a crash: API Gateway's 502);
    what it saw before it got through."""
    saw: list[str] = []
    for _ in range(CLIENT_ATTEMPTS):
        result = here.functions["Ingest"].invoke(_beacon(messages, here.clock.now()))
        status = 502 if result.failed else int(result.payload["statusCode"])
        if status < 500 and status != 429:
            return saw
        body = "" if result.failed else str(result.payload.get("body", ""))[:80]
        saw.append(f"{status} {body}".strip())
        here.advance(1)
    return saw


def _follow_links(here: World, scenario: Scenario) -> list[str]:
    """Each shopper opens their abandoned-cart email (its pixel), then the first shopper
    unsubscribes with one click (RFC 8058's POST), which a mail provider retries on a 5xx."""
    emails = {
        str(message["To"]).split("@")[0]: message
        for message in _sent_emails()
        if message["X-Nudge-Trigger"] == "abandoned_cart"
    }
    saw = []
    for who in scenario.shoppers:
        pixel = re.search(r"/o/([A-Za-z0-9_.~-]+)", _html(emails[who]))
        if pixel is not None:
            saw += _request(here, "GET", f"/o/{pixel.group(1)}")
    unsubscribe = str(emails[scenario.shoppers[0]]["List-Unsubscribe"]).strip("<>")
    return saw + _request(here, "POST", urlsplit(unsubscribe).path, "List-Unsubscribe=One-Click")


def _html(message: EmailMessage) -> str:
    part = message.get_body(("html",))
    return "" if part is None else str(cast(EmailMessage, part).get_content())


def _request(here: World, method: str, path: str, body: str | None = None) -> list[str]:
    """A request to the Track function, retried on a 5xx as its client would."""
    saw: list[str] = []
    for _ in range(CLIENT_ATTEMPTS):
        result = here.functions["Track"].invoke(_link(method, path, body, here.clock.now()))
        status = 502 if result.failed else int(result.payload["statusCode"])
        if status < 500:
            return saw
        saw.append(f"{status} from {method} {path.split('/')[1]}")
        here.advance(1)
    return saw


def _link(method: str, path: str, body: str | None, at: datetime) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) request for an email link, /o/<token> say."""
    prefix, token = path.rsplit("/", 1)
    route = f"{method} {prefix}/{{token}}"
    event = _api_event(method, path, route, at)
    event["pathParameters"] = {"token": token}
    if body is not None:
        event["body"] = body
        event["headers"]["content-type"] = "application/x-www-form-urlencoded"
    return event


def _check(here: World, cell: Cell, scenario: Scenario) -> Check:
    check = Check(cell)
    _check_events(here, scenario, check)
    fire_ids = _check_fires(here, scenario, check)
    _check_sends(here, scenario, check, fire_ids)
    check.dead_letters = _dead_letters(here)
    return check


def _check_events(here: World, scenario: Scenario, check: Check) -> None:
    """Each message sent stored once (by messageId), and each link followed stored once (by
    person and event name: Track derives its messageId from the link's token)."""
    wanted = [
        str(message["messageId"])
        for batch in [*scenario.intake(), scenario.order()]
        for message in batch
    ]
    wanted += [f"{who} {event}" for who, event in scenario.link_events()]
    items = here.clients["dynamodb"].scan(TableName=here.table)["Items"]
    bodies = [
        body
        for item in items
        if item["kind"]["S"] == EVENT_KIND
        for body in event_bodies(_plain(item))
    ]
    stored = Counter(str(body.get("messageId")) for body in bodies)
    stored += Counter(
        f"{body.get('userId')} {body.get('event')}"
        for body in bodies
        if str(body.get("messageId", "")).startswith("email-")
    )
    check.events_expected = len(wanted)
    check.events = sum(min(stored[key], 1) for key in wanted)
    check.lost += [f"event {key}" for key in wanted if not stored[key]]
    check.duplicated += [f"event {key}" for key in wanted if stored[key] > 1]


def _plain(item: dict[str, Any]) -> dict[str, Any]:
    """A low-level item as ``from_attributes`` gives it (what ``event_bodies`` reads)."""
    from boto3.dynamodb.types import TypeDeserializer

    deserialize = TypeDeserializer().deserialize
    plain = {name: deserialize(value) for name, value in item.items()}
    return {name: getattr(value, "value", value) for name, value in plain.items()}


def _check_fires(here: World, scenario: Scenario, check: Check) -> dict[str, tuple[str, str]]:
    """Checks the fire records; returns each fire's (person, trigger) by its fireId."""
    store = EngineStore(here.clients["dynamodb"], here.table, timedelta(days=30))
    persons = [PersonId.user(who) for who in scenario.people]
    fires = store.fires(persons)
    by_id = {str(fire["fireId"]): (str(fire["person"]), str(fire["trigger"])) for fire in fires}
    made = Counter(by_id.values())
    expected = scenario.expected_fires()
    check.fires_expected = len(expected)
    check.fires = sum(min(made[key], 1) for key in expected)
    check.lost += [f"fire {key[1]} of {key[0]}" for key in expected if not made[key]]
    check.duplicated += [f"fire {key[1]} of {key[0]}" for key, n in made.items() if n > 1]
    check.duplicated += [f"fire {key[1]} of {key[0]}" for key in made if key not in expected]
    return by_id


def _check_sends(
    here: World, scenario: Scenario, check: Check, fire_ids: dict[str, tuple[str, str]]
) -> None:
    delivered = Counter(_emailed_fires() + delivered_ids(here.receiver))
    per_key = Counter({fire_ids.get(fid, ("?", fid)): n for fid, n in delivered.items()})
    expected = scenario.expected_fires()
    check.sends_expected = len(expected)
    check.sends = sum(min(per_key[key], 1) for key in expected)
    check.lost += [f"send {key[1]} to {key[0]}" for key in expected if not per_key[key]]
    check.duplicated += [f"send {key[1]} to {key[0]}" for key, n in per_key.items() if n > 1]
    check.delay = _latest_delay(here, scenario, fire_ids)


def _emailed_fires() -> list[str]:
    return [str(message["X-Nudge-Fire"]) for message in _sent_emails()]


def _sent_emails() -> list[EmailMessage]:
    """Every raw message moto's SES accepted, parsed."""
    backend = ses_backends[ACCOUNT]["us-east-1"]
    return [
        email.message_from_string(message.raw_data, policy=email.policy.default)
        for message in backend.sent_messages
    ]


def _latest_delay(
    here: World, scenario: Scenario, fire_ids: dict[str, tuple[str, str]]
) -> timedelta:
    """How much later than due the latest first delivery was (virtual time: SES accepting
    the email, the receiver answering 200)."""
    expected = scenario.expected_fires()
    first: dict[tuple[str, str], datetime] = {}
    for fire_id, at in [*here.injector.emailed, *delivered_at(here.receiver)]:
        key = fire_ids.get(fire_id)
        if key in expected and key not in first:
            first[key] = at
    return max((at - expected[key] for key, at in first.items()), default=timedelta(0))


def _dead_letters(here: World) -> list[str]:
    """What every queue but the work queues holds: the dead letters and failure records."""
    found = []
    for logical_id in here.template.queues:
        if logical_id in ("SendQueue", "TrackRetryQueue"):
            continue
        url = here.queue_url(logical_id)
        messages = (
            here.clients["sqs"]
            .receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
            .get("Messages", [])
        )
        for message in messages:
            reason = message.get("MessageAttributes", {}).get("reason", {}).get("StringValue")
            found.append(f"{logical_id}: {reason or _failure_reason(message['Body'])}")
    return found


def _failure_reason(body: str) -> str:
    """What a Lambda failure record says (an on-failure destination's message), else the
    body's start."""
    try:
        record = json.loads(body)
        context = record["requestContext"]
        error = record.get("responsePayload") or {}
    except (ValueError, KeyError, TypeError):
        return body[:120]
    return (
        f"{context.get('condition')} after {context.get('approximateInvokeCount')} attempts"
        f" ({error.get('errorType')}: {error.get('errorMessage')})"
    )


# ---- the table -----------------------------------------------------------------------------


def table(checks: Sequence[Check]) -> Table:
    grid = Table(title="Fault matrix: one fault per row, then a drain and a check")
    columns = ("fault", "where", "injected", "events", "fires", "sends", "latest", "outcome")
    for column in (*columns, "detail"):
        grid.add_column(column, overflow="fold")
    for check in checks:
        colour = {"none": "green", "delayed": "yellow", "refused": "cyan"}.get(check.outcome, "red")
        grid.add_row(
            check.cell.fault,
            check.cell.site,
            str(check.injected),
            f"{check.events}/{check.events_expected}",
            f"{check.fires}/{check.fires_expected}",
            f"{check.sends}/{check.sends_expected}",
            f"+{_duration(check.delay)}",
            f"[{colour}]{check.outcome}[/{colour}]",
            check.detail,
        )
    return grid


def run(console: Console, cells: Sequence[Cell] = CELLS) -> Figures:
    scenario = Scenario.build()
    with warnings.catch_warnings():
        # Powertools warns of a batch that emitted no metric; the pollers log every
        # injected failure: the table says what came of them.
        warnings.simplefilter("ignore", UserWarning)
        logging.getLogger("nudge.local").setLevel(logging.ERROR)
        checks = [run_cell(cell, scenario) for cell in (Cell("none", "no fault"), *cells)]
    console.print(table(checks))
    outcomes = Counter(check.outcome for check in checks)
    console.print(
        "  cells: " + ", ".join(f"{outcome} {n}" for outcome, n in sorted(outcomes.items()))
    )
    return {
        "cells": [
            {
                "fault": check.cell.fault,
                "where": check.cell.site,
                "outcome": check.outcome,
                "events": [check.events, check.events_expected],
                "fires": [check.fires, check.fires_expected],
                "sends": [check.sends, check.sends_expected],
                "injected": check.injected,
                "latest_seconds": check.delay.total_seconds(),
                "detail": check.detail,
                "seconds": round(check.seconds, 2),
            }
            for check in checks
        ],
        "outcomes": dict(outcomes),
    }
