"""Local stack throughput: events accepted per second over HTTP, and every one stored.

The stack (``python -m local``) runs as a subprocess on free 127.0.0.1 ports. Client
threads post analytics.js-shaped track events for a bounded count or time, first as single
/v1/track calls, then as /v1/batch of 50. After POST /_local/drain, each user's events are
read back through GET /_local/users/<id> and their distinct messageIds counted: stored must
equal accepted. The baseline is the stack's moto server alone: a direct BatchWriteItem of
the same events (25 per request) with boto3, into a table of the same key schema.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
import requests
from rich.console import Console

from bench.common import (
    STACK_WRITE_KEY,
    Figures,
    event_item,
    median,
    percentile,
    running_stack,
    side_by_side,
    track_message,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = ["run"]

THREADS = 4
MAX_EVENTS = 2000
MAX_SECONDS = 10.0
USERS = 20
BATCH = 50
MOTO_BATCH = 25
REQUEST_TIMEOUT = 30.0
DRAIN_TIMEOUT = 90.0
DRAIN_ATTEMPTS = 5
BASELINE_TABLE = "bench-moto-baseline"


@dataclass
class Run:
    """One load run: what was sent, what was accepted, how long each request took."""

    label: str
    users: list[str]
    accepted: int = 0
    refused: int = 0
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    stored: int | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def figures(self) -> dict[str, Any]:
        return {
            "events_accepted": self.accepted,
            "requests_refused": self.refused,
            "requests": len(self.latencies),
            "seconds": self.seconds,
            "events_per_second": self.accepted / self.seconds if self.seconds else 0.0,
            "p50_ms": percentile(self.latencies, 0.50) * 1000,
            "p99_ms": percentile(self.latencies, 0.99) * 1000,
            "median_ms": median(self.latencies) * 1000,
            "stored": self.stored,
            "all_stored": self.stored == self.accepted,
        }


def _load(
    run: Run,
    per_request: int,
    send: Callable[[Any, list[dict[str, Any]]], bool],
    make_session: Callable[[], Any],
) -> None:
    """THREADS workers send until MAX_EVENTS events are taken or MAX_SECONDS have passed."""
    counter = iter(range(MAX_EVENTS // per_request))
    counter_lock = threading.Lock()
    tag = f"tp-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    deadline = started + MAX_SECONDS

    def worker() -> None:
        session = make_session()
        while time.monotonic() < deadline:
            with counter_lock:
                request_number = next(counter, None)
            if request_number is None:
                return
            first = request_number * per_request
            messages = [
                track_message(run.users[index % len(run.users)], index, tag)
                for index in range(first, first + per_request)
            ]
            began = time.perf_counter()
            ok = send(session, messages)
            took = time.perf_counter() - began
            with run.lock:
                run.latencies.append(took)
                if ok:
                    run.accepted += len(messages)
                else:
                    run.refused += 1

    threads = [threading.Thread(target=worker, name=f"bench-client-{n}") for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=MAX_SECONDS + 2 * REQUEST_TIMEOUT)
    run.seconds = time.monotonic() - started


def _http_session() -> requests.Session:
    session = requests.Session()
    session.auth = (STACK_WRITE_KEY, "")
    return session


def _post(base: str, route: str) -> Callable[[Any, list[dict[str, Any]]], bool]:
    def send(session: requests.Session, messages: list[dict[str, Any]]) -> bool:
        body: dict[str, Any] = messages[0] if route == "track" else {"batch": messages}
        response = session.post(f"{base}/v1/{route}", json=body, timeout=REQUEST_TIMEOUT)
        return response.status_code == 200

    return send


def _drain(base: str) -> float:
    """POST /_local/drain until it reports drained; it gives up after 60 s per call (500)."""
    started = time.monotonic()
    for _ in range(DRAIN_ATTEMPTS):
        response = requests.post(f"{base}/_local/drain", timeout=DRAIN_TIMEOUT)
        if response.status_code == 200:
            return time.monotonic() - started
    raise TimeoutError(f"the stack was still draining after {time.monotonic() - started:.0f} s")


def _stored(base: str, users: list[str]) -> int:
    """Distinct messageIds that the control API reads back for these users."""
    found: set[str] = set()
    for user in users:
        response = requests.get(f"{base}/_local/users/{user}", timeout=REQUEST_TIMEOUT)
        if response.status_code == 200:
            found |= {event["messageId"] for event in response.json()["events"]}
    return len(found)


def _moto_client(endpoint: str) -> DynamoDBClient:
    client: DynamoDBClient = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    return client


def _moto_baseline(endpoint: str) -> Run:
    admin = _moto_client(endpoint)
    admin.create_table(
        TableName=BASELINE_TABLE,
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )

    def send(client: DynamoDBClient, messages: list[dict[str, Any]]) -> bool:
        pending: list[Any] = [{"PutRequest": {"Item": event_item(message)}} for message in messages]
        for _ in range(8):
            response = client.batch_write_item(RequestItems={BASELINE_TABLE: pending})
            pending = list(response.get("UnprocessedItems", {}).get(BASELINE_TABLE, []))
            if not pending:
                return True
        return False

    run = Run("moto alone: BatchWriteItem of 25", users=[f"moto-{n:02d}" for n in range(USERS)])
    _load(run, MOTO_BATCH, send, lambda: _moto_client(endpoint))
    run.stored = _count(admin)
    return run


def _count(client: DynamoDBClient) -> int:
    """Items in the baseline table (Scan pages stop at 1 MB; the paginator follows them)."""
    pages = client.get_paginator("scan").paginate(TableName=BASELINE_TABLE, Select="COUNT")
    return sum(page["Count"] for page in pages)


def run(console: Console) -> Figures:
    with running_stack() as stack:
        single = Run("/v1/track (1 event)", users=[f"tp-single-{n:02d}" for n in range(USERS)])
        _load(single, 1, _post(stack.base, "track"), _http_session)
        batch = Run(f"/v1/batch of {BATCH}", users=[f"tp-batch-{n:02d}" for n in range(USERS)])
        _load(batch, BATCH, _post(stack.base, "batch"), _http_session)
        drain_seconds = _drain(stack.base)
        for measured in (single, batch):
            measured.stored = _stored(stack.base, measured.users)
        assert stack.moto_endpoint is not None
        moto = _moto_baseline(stack.moto_endpoint)
    runs = [single, batch, moto]
    figures = {measured.label: measured.figures() for measured in runs}
    rows = [
        ["events/s accepted", *(f"{f['events_per_second']:.0f}" for f in figures.values())],
        ["events accepted (bounded)", *(str(f["events_accepted"]) for f in figures.values())],
        ["requests", *(str(f["requests"]) for f in figures.values())],
        ["p50 latency / request (ms)", *(f"{f['p50_ms']:.1f}" for f in figures.values())],
        ["p99 latency / request (ms)", *(f"{f['p99_ms']:.1f}" for f in figures.values())],
        ["stored", *(f"stored: {f['stored']} of {f['events_accepted']}" for f in figures.values())],
    ]
    pending = single.accepted + batch.accepted
    console.print(
        side_by_side(
            f"Local stack over HTTP, {THREADS} client threads,"
            f" ≤{MAX_EVENTS} events or ≤{MAX_SECONDS:.0f} s per run",
            [
                "",
                "Nudge: /v1/track",
                f"Nudge: /v1/batch of {BATCH}",
                "baseline: moto alone, BatchWriteItem x25",
            ],
            rows,
        )
    )
    console.print(
        f"  POST /_local/drain (Evaluate catching up on {pending} events after the load):"
        f" {drain_seconds:.1f} s"
    )
    return {
        "drain_seconds": drain_seconds,
        "threads": THREADS,
        "max_events": MAX_EVENTS,
        "max_seconds": MAX_SECONDS,
        "runs": {
            "single": figures[single.label],
            "batch": figures[batch.label],
            "moto_alone": figures[moto.label],
        },
        "all_stored": all(f["all_stored"] for f in figures.values()),
    }
