"""What experiment attribution costs per event, and how fast a report reads a big experiment.

Everything runs in this process against moto, through the product's own adapter
(``ExperimentStore``) and report code (``Reporting``). Capacity follows DynamoDB's published
rules, computed from each request: a standard write costs 1 write unit per started KB of
the item, a write inside a transaction twice that, a read 1 unit per started 4 KB (half for
an eventually consistent one; a Query sums the items it returns).
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html#transaction-capacity-handling

Baselines, side by side:
- counts: a plain ``UpdateItem ADD`` per count (1 write unit), which is cheaper and wrong:
  a redelivered stream batch or a retried send counts again. The table shows both figures
  after one redelivery of everything.
- reports: counting the same experiment from the assignment items themselves (a Scan that
  reads them), measured on a smaller table and scaled linearly to a million.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import boto3
from moto import mock_aws
from nudge.adapters import keys
from nudge.adapters.experiments import ExperimentStore
from nudge.domain.experiments.attribution import Assignment
from nudge.domain.experiments.counts import CountedUnder
from nudge.domain.person import PersonId
from nudge.domain.triggers.loader import load_triggers
from nudge.service.reporting import Reporting
from rich.console import Console

from bench.common import REPO, Figures, side_by_side

TABLE = "bench-attribution"
NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
WRITE_UNIT_PRICE = 1.25 / 1_000_000  # on-demand, us-east-1, per write request unit
READ_UNIT_PRICE = 0.25 / 1_000_000  # per read request unit
ASSIGNED = 1_000_000  # the big experiment a report reads
DAYS = 30
SCAN_SAMPLE = 1_000  # assignment items the scan baseline reads, scaled to ASSIGNED
REPORT_RUNS = 20


@dataclass
class Meter:
    """Requests and capacity units, from each request's parameters."""

    requests: dict[str, int] = field(default_factory=dict)
    write_units: float = 0.0
    read_units: float = 0.0

    def reset(self) -> None:
        self.requests.clear()
        self.write_units = self.read_units = 0.0

    def before(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        name = model.name
        self.requests[name] = self.requests.get(name, 0) + 1
        if name == "TransactWriteItems":
            for item in params["TransactItems"]:
                self.write_units += 2 * _write_units(item)
        elif name in ("PutItem", "UpdateItem", "DeleteItem"):
            self.write_units += _write_units({"Put": params} if name == "PutItem" else {})

    def after(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name == "Query" or model.name == "Scan":
            size = sum(_item_size(item) for item in parsed.get("Items", []))
            self.read_units += max(1, math.ceil(size / 4096)) / 2
        elif model.name == "GetItem":
            self.read_units += max(1, math.ceil(_item_size(parsed.get("Item", {})) / 4096)) / 2


def _write_units(request: dict[str, Any]) -> int:
    """Counter and assignment items are far under 1 KB: one unit each (the Put's own size
    is checked; an Update's item is a counter or an assignment of the same few fields)."""
    put = request.get("Put")
    size = _item_size(put["Item"]) if put else 300
    return max(1, math.ceil(size / 1024))


def _item_size(item: dict[str, Any]) -> int:
    """DynamoDB's item size: attribute names plus values (numbers roughly by their digits)."""
    total = 0
    for name, value in item.items():
        ((kind, inner),) = value.items()
        total += len(name.encode()) + (
            len(str(inner)) if kind == "N" else len(str(inner).encode()) if kind == "S" else 8
        )
    return total


@contextmanager
def _table() -> Iterator[tuple[Any, Meter]]:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName=TABLE,
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
        meter = Meter()
        client.meta.events.register("before-parameter-build.dynamodb.*", meter.before)
        client.meta.events.register("after-call.dynamodb.*", meter.after)
        yield client, meter


def _assignment(person: int) -> Assignment:
    return Assignment(
        trigger="abandoned_cart",
        version="0123456789ab",
        arm=("holdout", "h24", "h48")[person % 3],
        since=NOW,
        until=NOW + timedelta(days=7),
        goal="Order Completed",
        value_path="properties.revenue",
    )


@dataclass(frozen=True)
class Cost:
    requests: int
    write_units: float
    read_units: float

    @property
    def dollars_per_million(self) -> float:
        per_one = self.write_units * WRITE_UNIT_PRICE + self.read_units * READ_UNIT_PRICE
        return per_one * 1_000_000


def _per_count(people: int = 100) -> dict[str, Cost]:
    """Each kind of count, per occurrence, measured over ``people`` of them."""
    with _table() as (client, meter):
        store = ExperimentStore(client, TABLE)
        costs: dict[str, Cost] = {}

        def measure(name: str, action: Any) -> None:
            meter.reset()
            for person in range(people):
                action(person)
            costs[name] = Cost(
                sum(meter.requests.values()) // people,
                meter.write_units / people,
                meter.read_units / people,
            )

        measure("assignment (entry)", lambda p: store.assign(_person(p), _assignment(p)))
        measure("goal event converting one assignment", lambda p: _convert(store, p))
        under = CountedUnder("abandoned_cart", "0123456789ab", "h24")
        measure("fire sent", lambda p: store.count_fire(f"fire-{p}", "sent", under, NOW))
        measure("email opened (first open)", lambda p: _reaction(store, p, "opened"))
        meter.reset()
        for person in range(people):  # redelivery of every count: conditions refuse them
            store.assign(_person(person), _assignment(person))
            store.count_fire(f"fire-{person}", "sent", under, NOW)
        costs["a redelivered count (refused)"] = Cost(
            sum(meter.requests.values()) // (2 * people),
            meter.write_units / (2 * people),
            meter.read_units / (2 * people),
        )
        return costs


def _person(number: int) -> PersonId:
    return PersonId.user(f"shopper-{number}")


def _convert(store: ExperimentStore, number: int) -> None:
    (found,) = [a for _, a in store.assignments([_person(number)])]
    store.convert(_person(number), found, 10, 42.5, NOW + timedelta(days=1))


def _reaction(store: ExperimentStore, number: int, measure: Any) -> None:
    under = store.sent_as(f"fire-{number}")
    assert under is not None
    store.count_fire(f"fire-{number}", measure, under, NOW)


def _report_latency() -> tuple[float, float, int]:
    """Median milliseconds of one report of a million-person experiment from its counters,
    and of counting a sample of assignment items by Scan (scaled to a million)."""
    trigger = next(t for t in load_triggers(REPO / "triggers").triggers if t.id == "abandoned_cart")
    assert trigger.experiment is not None, "the shipped abandoned_cart runs an experiment"
    version = trigger.experiment.version
    with _table() as (client, _meter):
        _fill_counters(client, trigger.id, version)
        reporting = Reporting(ExperimentStore(client, TABLE), {trigger.id: trigger})
        today = (NOW + timedelta(days=DAYS)).date()
        timings = []
        for _ in range(REPORT_RUNS):
            started = time.perf_counter()
            report = reporting.trigger(trigger.id, today)
            timings.append((time.perf_counter() - started) * 1000)
        assigned = int(sum(arm["assigned"] for arm in report["variants"]))
        counters = keys.COUNTER_SHARDS * DAYS * 3
        _fill_assignments(client, SCAN_SAMPLE)
        started = time.perf_counter()
        _scan_count(client)
        scan_ms = (time.perf_counter() - started) * 1000 * (ASSIGNED / SCAN_SAMPLE)
    assert assigned == ASSIGNED, assigned
    return statistics.median(timings), scan_ms, counters


def _fill_counters(client: Any, trigger: str, version: str) -> None:
    per_item = ASSIGNED // (DAYS * 3 * keys.COUNTER_SHARDS)
    extra = ASSIGNED - per_item * DAYS * 3 * keys.COUNTER_SHARDS
    for day_number in range(DAYS):
        day = (NOW + timedelta(days=day_number)).date()
        for arm_number, arm in enumerate(("holdout", "h24", "h48")):
            for shard in range(keys.COUNTER_SHARDS):
                assigned = per_item + (extra if (day_number, arm_number, shard) == (0, 0, 0) else 0)
                _put_counter(client, trigger, version, arm, day, shard, assigned)


def _put_counter(
    client: Any, trigger: str, version: str, arm: str, day: date, shard: int, assigned: int
) -> None:
    key = keys.counter_key(trigger, version, arm, day, shard)
    client.put_item(
        TableName=TABLE,
        Item={
            "pk": {"S": key["pk"]},
            "sk": {"S": key["sk"]},
            "kind": {"S": keys.COUNTER_KIND},
            "assigned": {"N": str(assigned)},
            "sent": {"N": str(assigned * 8 // 10)},
            "opened": {"N": str(assigned * 3 // 10)},
            "clicked": {"N": str(assigned // 20)},
            "converted": {"N": str(assigned // 25 + (arm != "holdout") * assigned // 200)},
            "revenue": {"N": str(assigned * 2)},
        },
    )


def _fill_assignments(client: Any, count: int) -> None:
    store = ExperimentStore(client, TABLE)
    for person in range(count):
        store.assign(_person(person), _assignment(person))


def _scan_count(client: Any) -> int:
    """The baseline: read every assignment item and count by arm."""
    counted: dict[str, int] = {}
    for page in client.get_paginator("scan").paginate(
        TableName=TABLE,
        FilterExpression="kind = :kind",
        ExpressionAttributeValues={":kind": {"S": keys.ASSIGNMENT_KIND}},
    ):
        for item in page.get("Items", []):
            arm = item["arm"]["S"]
            counted[arm] = counted.get(arm, 0) + 1
    return sum(counted.values())


def run(console: Console) -> Figures:
    costs = _per_count()
    rows = [
        [
            name,
            str(cost.requests),
            f"{cost.write_units:g}",
            f"{cost.read_units:g}",
            f"${cost.dollars_per_million:.2f}",
        ]
        for name, cost in costs.items()
    ]
    rows.append(["baseline: plain UpdateItem ADD, per count", "1", "1", "0", "$1.25"])
    console.print(
        side_by_side(
            "Attribution, per count: exact (transaction of fact + counter) against a plain ADD"
            " (which counts a redelivery twice)",
            ["count", "requests", "write units", "read units", "$ per million"],
            rows,
        )
    )
    report_ms, scan_ms, counters = _report_latency()
    console.print(
        side_by_side(
            f"A report of an experiment with {ASSIGNED:,} people assigned, {DAYS} days, 3 arms",
            ["", "Nudge: counters", "baseline: scan the assignments"],
            [
                ["items read", f"{counters}", f"{ASSIGNED:,}"],
                [
                    "milliseconds (moto, this machine)",
                    f"{report_ms:.1f}",
                    f"{scan_ms:,.0f} (measured on {SCAN_SAMPLE:,}, scaled)",
                ],
            ],
        )
    )
    conversion = costs["goal event converting one assignment"]
    console.print(
        f"  Goal, one extra write per conversion: {conversion.requests} requests (the read of"
        " the person's assignments and one TransactWriteItems), so met in requests; in units"
        f" it is {conversion.write_units:g} write units, not 1: a transaction bills each of its"
        " two items twice, the price of counting a redelivered event exactly once."
    )
    return {
        "per_count": {
            name: {
                "requests": cost.requests,
                "write_units": cost.write_units,
                "read_units": cost.read_units,
                "dollars_per_million": round(cost.dollars_per_million, 4),
            }
            for name, cost in costs.items()
        },
        "report_ms": round(report_ms, 2),
        "scan_ms_scaled": round(scan_ms, 1),
        "counter_items_read": counters,
    }
