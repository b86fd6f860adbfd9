"""What a million events cost on AWS, from counted calls: the simulated shop through the
local stack, every AWS request metered at the fake AWS itself (``GET /_local/meter``,
local/meter.py), cross-checked against moto's own request recorder.

For each workload (bench/shop.py): ``python -m local`` as a subprocess; the traffic is
sent in time order over 127.0.0.1 (``/v1/batch``, or one call a request), the virtual
clock advanced to each 15-minute slot before its requests (every timer, retry and the
hourly sweep run as they fall due), and after the last request the clock runs on 8 days
more, past the longest condition (7 days of inactivity), so every timer fires. The meter's
counts are then priced at AWS's us-east-1 list prices (``PRICES``), per million accepted
events. The baseline next to Nudge is the floor: storing each event once (the event items'
write units as measured: a request's events for a person share an item), API Gateway at
the workload's events per request, and Lambda's request charge for Ingest and
Evaluate at the same batching.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from rich.console import Console

from bench.common import STACK_WRITE_KEY, Figures, running_stack, side_by_side
from bench.shop import Call, ShopMix, simulate
from local.meter import INTERNAL_HEADER, PUMP_HEADER

__all__ = ["PRICES", "run"]

SLOT = timedelta(minutes=15)
RUN_ON = timedelta(days=8)  # past re_engagement's 7 days, so every timer and sweep fires
IDLE = timedelta(days=1)
REQUEST_TIMEOUT = 60.0
# The stack's function workers log to its stdout, as Lambda sends them to CloudWatch Logs.

# AWS list prices, us-east-1, USD, as published on each service's pricing page (read
# 2026-12-05; DynamoDB's on-demand prices since the 50 % cut of 2024-11-01).
PRICES = {
    "dynamodb_write_unit": 0.625e-6,  # aws.amazon.com/dynamodb/pricing/on-demand/
    "dynamodb_read_unit": 0.125e-6,
    "dynamodb_gb_month": 0.25,
    "dynamodb_wcu_hour": 0.00065,  # aws.amazon.com/dynamodb/pricing/provisioned/
    "dynamodb_rcu_hour": 0.00013,
    "lambda_request": 0.20e-6,  # aws.amazon.com/lambda/pricing/ (arm64, the template's)
    "lambda_gb_second": 0.0000133334,
    "http_api_request": 1.00e-6,  # aws.amazon.com/api-gateway/pricing/ (first 300 M)
    "sqs_request": 0.40e-6,  # aws.amazon.com/sqs/pricing/ (standard, per 64 KB chunk)
    "scheduler_invocation": 1.00e-6,  # aws.amazon.com/eventbridge/pricing/ (Scheduler)
    "websocket_message": 1.00e-6,  # aws.amazon.com/api-gateway/pricing/ (per 32 KB)
    "websocket_minute": 0.25e-6,
    "logs_gb_ingested": 0.50,  # aws.amazon.com/cloudwatch/pricing/
    "xray_trace": 5.00e-6,  # aws.amazon.com/xray/pricing/ (recorded)
    "ses_email": 0.10e-3,  # aws.amazon.com/ses/pricing/
}
# Functions Lambda invokes from an SQS queue: Lambda's poller receives and deletes each
# batch, two SQS requests an invocation on top of the functions' own sends.
QUEUE_FUNCTIONS = frozenset({"Send", "Feedback"})
ITEM_OVERHEAD = 100  # bytes DynamoDB adds to each item for storage (its pricing page)
# template.yaml's TableTargetUtilization default: with TableBillingMode PROVISIONED, auto
# scaling keeps this share of the capacity in use, so a unit used costs 1/0.7 of one bought.
PROVISIONED_UTILIZATION = 0.70


@dataclass(frozen=True)
class Workload:
    name: str
    mix: ShopMix


# 50 shoppers keep the three runs at 2 to 6 minutes each; issue #13 counted its figures on
# 300 (about 15,000 events, 8 minutes a workload): NUDGE_BENCH_COST_SHOPPERS=300.
SHOPPERS = int(os.environ.get("NUDGE_BENCH_COST_SHOPPERS", "50"))
WORKLOADS = (
    Workload("shop: browser, analytics.js, batches of ≤ 10", ShopMix(shoppers=SHOPPERS)),
    Workload(
        "server: one call a request, no page context",
        ShopMix(shoppers=SHOPPERS, batch_size=1, browser=False),
    ),
    Workload("new visitors: every session a stranger", ShopMix(shoppers=SHOPPERS, returning=False)),
)


@dataclass
class Measured:
    events: int
    requests: int
    meter: dict[str, Any]  # the traffic's own: the quiet hours' fixed cost taken out
    fixed_per_hour: dict[str, Any]  # what an hour with no traffic costs (the sweep)
    metered_calls: Counter[str]  # the meter: the functions' DynamoDB calls by operation
    log_bytes: int
    recorded: Counter[str]  # moto's recorder: the functions' DynamoDB calls by operation
    seconds: float


def run(console: Console, workloads: Iterable[Workload] = WORKLOADS) -> Figures:
    figures: Figures = {}
    for workload in workloads:
        measured = _measure(workload.mix)
        costs = _costs(measured)
        floor = _floor(measured)
        _check_against_recorder(measured)
        figures[workload.name] = {
            "events": measured.events,
            "requests": measured.requests,
            "seconds": round(measured.seconds, 1),
            "per_event": _per_event(measured),
            "usd_per_million_events": costs,
            "floor_usd_per_million_events": floor,
            "fixed_usd_per_hour": _fixed_per_hour(measured),
        }
        console.print(_table(workload.name, measured, costs, floor))
    return figures


# ---- the run -----------------------------------------------------------------------------


def _measure(mix: ShopMix) -> Measured:
    recording = Path(tempfile.mkdtemp(prefix="nudge-cost-")) / "moto_recording"
    env = {"MOTO_ENABLE_RECORDING": "True", "MOTO_RECORDER_FILEPATH": str(recording)}
    started = time.monotonic()
    with running_stack(extra_env=env) as stack, requests.Session() as http:
        http.auth = (STACK_WRITE_KEY, "")
        clock = datetime.fromisoformat(http.get(f"{stack.base}/_local/clock").json()["now"])
        start = (clock + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
        calls = simulate(mix, start)
        now = clock
        try:
            for slot, group in _slots(calls):
                now = _advance(http, stack.base, now, slot)
                for call in group:
                    _send(http, stack.base, call)
        except (RuntimeError, requests.RequestException):
            print("".join(stack.tail), file=sys.stderr)  # what the stack logged last
            raise
        now = _advance(http, stack.base, now, calls[-1].at + RUN_ON)
        meter = http.get(f"{stack.base}/_local/meter").json()
        # A quiet day after it: what runs with no traffic at all (the hourly sweep), a cost
        # per hour rather than per event, taken out of the per-event figures.
        _advance(http, stack.base, now, now + IDLE)
        after_idle = http.get(f"{stack.base}/_local/meter").json()
        per_hour = _combine(after_idle, meter, -1.0, scale=1 / (IDLE.total_seconds() / 3600))
        hours = (now - start).total_seconds() / 3600
        log_bytes = stack.log_bytes
    return Measured(
        events=sum(len(call.messages) for call in calls),
        requests=len(calls),
        meter=_combine(meter, per_hour, -hours),
        fixed_per_hour=per_hour,
        metered_calls=Counter(after_idle["requests"].get("functions", {}).get("dynamodb", {})),
        log_bytes=log_bytes,
        recorded=_recorded_calls(recording),
        seconds=time.monotonic() - started,
    )


def _combine(
    first: dict[str, Any], second: dict[str, Any], factor: float, scale: float = 1.0
) -> dict[str, Any]:
    """``(first + factor * second) * scale``, for every number in two meter snapshots."""
    combined: dict[str, Any] = {}
    for name in first.keys() | second.keys():
        one, other = first.get(name, 0), second.get(name, 0)
        if isinstance(one, dict) or isinstance(other, dict):
            combined[name] = _combine(one or {}, other or {}, factor, scale)
        elif name == "memoryMb":
            combined[name] = one or other
        else:
            combined[name] = (one + factor * other) * scale
    return combined


def _slots(calls: list[Call]) -> Iterable[tuple[datetime, list[Call]]]:
    groups: dict[datetime, list[Call]] = {}
    for call in calls:
        start = call.at - timedelta(
            minutes=call.at.minute % 15, seconds=call.at.second, microseconds=call.at.microsecond
        )
        groups.setdefault(start + SLOT, []).append(call)
    return sorted(groups.items())


def _advance(http: requests.Session, base: str, now: datetime, to: datetime) -> datetime:
    """Runs the clock to ``to`` (every moment on the way), in as many calls as it takes."""
    while now < to:
        answer = http.post(
            f"{base}/_local/clock/advance",
            json={"seconds": (to - now).total_seconds()},
            timeout=None,  # bounded by the stack's own advance budget
        )
        answer.raise_for_status()
        now = datetime.fromisoformat(answer.json()["now"])
    return now


def _send(http: requests.Session, base: str, call: Call) -> None:
    if len(call.messages) == 1:
        message = call.messages[0]
        answer = http.post(f"{base}/v1/{message['type']}", json=message, timeout=REQUEST_TIMEOUT)
    else:
        answer = http.post(
            f"{base}/v1/batch", json={"batch": call.messages}, timeout=REQUEST_TIMEOUT
        )
    if answer.status_code != 200:
        raise RuntimeError(f"the stack refused a call: {answer.status_code} {answer.text}")


def _recorded_calls(recording: Path) -> Counter[str]:
    """The functions' DynamoDB calls as moto's recorder saw them (not the stack's own, not
    the meter's size reads)."""
    seen: Counter[str] = Counter()
    if not recording.exists():
        return seen
    for entry in _entries(recording.read_text()):
        headers = {name.lower(): value for name, value in entry["headers"].items()}
        target = headers.get("x-amz-target", "")
        if PUMP_HEADER in headers or INTERNAL_HEADER in headers:
            continue
        if target.startswith("DynamoDB_20120810."):
            seen[target.partition(".")[2]] += 1
    os.unlink(recording)
    return seen


def _entries(text: str) -> Iterable[dict[str, Any]]:
    """The recorder's entries. Its threads append to one file, and an entry over the write
    buffer may share a line with the next, so entries are read one JSON value at a time."""
    decoder, position = json.JSONDecoder(), 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position >= len(text):
            return
        entry, position = decoder.raw_decode(text, position)
        yield entry


def _check_against_recorder(measured: Measured) -> None:
    metered = measured.metered_calls
    if metered != measured.recorded:
        raise AssertionError(
            f"the meter and moto's recorder disagree: {metered} against {measured.recorded}"
        )


# ---- the prices ---------------------------------------------------------------------------


def _function_requests(measured: Measured, service: str) -> int:
    return sum(measured.meter["requests"].get("functions", {}).get(service, {}).values())


def _costs(measured: Measured) -> dict[str, float]:
    """USD per million accepted events, by service."""
    meter, per_million = measured.meter, 1e6 / measured.events
    dynamodb = meter["dynamodb"]
    functions = meter["lambda"]
    invocations = sum(usage["invocations"] for usage in functions.values())
    gb_seconds = sum(
        usage["billedMs"] / 1000 * usage["memoryMb"] / 1024 for usage in functions.values()
    )
    queue_invocations = sum(
        usage["invocations"] for name, usage in functions.items() if name in QUEUE_FUNCTIONS
    )
    sqs = _function_requests(measured, "sqs") + 2 * queue_invocations
    costs = {
        "DynamoDB writes": dynamodb["writeUnits"] * PRICES["dynamodb_write_unit"],
        "DynamoDB reads": dynamodb["readUnits"] * PRICES["dynamodb_read_unit"],
        "Lambda requests": invocations * PRICES["lambda_request"],
        "Lambda duration": gb_seconds * PRICES["lambda_gb_second"],
        "API Gateway": meter["apiGatewayRequests"] * PRICES["http_api_request"],
        "SQS": sqs * PRICES["sqs_request"],
        "Scheduler": meter["schedulerInvocations"] * PRICES["scheduler_invocation"],
        "WebSocket": meter["webSocketMessages"] * PRICES["websocket_message"]
        + meter["webSocketConnectionMinutes"] * PRICES["websocket_minute"],
    }
    priced = {name: value * per_million for name, value in costs.items()}
    priced["total"] = sum(priced.values())
    provisioned = _provisioned(dynamodb["writeUnits"], dynamodb["readUnits"]) * per_million
    on_demand = priced["DynamoDB writes"] + priced["DynamoDB reads"]
    priced["total, table PROVISIONED (70 %)"] = priced["total"] - on_demand + provisioned
    # Beside the total, as in the count: they depend on choices outside the events.
    priced["aside: CloudWatch Logs"] = (
        measured.log_bytes / 1e9 * PRICES["logs_gb_ingested"] * per_million
    )
    priced["aside: X-Ray if Tracing=Active"] = invocations * PRICES["xray_trace"] * per_million
    priced["aside: storage, 90-day retention"] = _storage(measured)
    return priced


def _provisioned(write_units: float, read_units: float) -> float:
    """The same units on a provisioned table that auto scaling holds at its target: each
    unit a second for an hour is a capacity-hour, and only the target's share is used."""
    capacity_hours = 1 / (3600 * PROVISIONED_UTILIZATION)
    return capacity_hours * (
        write_units * PRICES["dynamodb_wcu_hour"] + read_units * PRICES["dynamodb_rcu_hour"]
    )


def _fixed_per_hour(measured: Measured) -> dict[str, float]:
    """What an hour with no traffic costs (the inactivity sweep's run and its reads)."""
    hour = measured.fixed_per_hour
    usage = hour["lambda"].values()
    return {
        "Scheduler": hour["schedulerInvocations"] * PRICES["scheduler_invocation"],
        "Lambda": sum(
            u["invocations"] * PRICES["lambda_request"]
            + u["billedMs"] / 1000 * u["memoryMb"] / 1024 * PRICES["lambda_gb_second"]
            for u in usage
        ),
        "DynamoDB": hour["dynamodb"]["readUnits"] * PRICES["dynamodb_read_unit"]
        + hour["dynamodb"]["writeUnits"] * PRICES["dynamodb_write_unit"],
    }


def _storage(measured: Measured) -> float:
    """A month of events at steady state keeps 3 months of them (90-day retention): USD per
    month for each million events a month."""
    dynamodb = measured.meter["dynamodb"]
    items = dynamodb["writtenItems"].get("event", 0)
    # An item holds a request's events for one person: bytes per event, overhead included.
    stored = dynamodb["writtenBytes"].get("event", 0) + items * ITEM_OVERHEAD
    per_event = stored / max(1, measured.events)
    return float(3 * 1e6 * per_event / 1e9 * PRICES["dynamodb_gb_month"])


def _floor(measured: Measured) -> dict[str, float]:
    """The least any design pays: storing each event once (the event items' write units as
    measured: a request's events for a person packed in one item), one API request and one
    Ingest and one Evaluate invocation per request."""
    per_request = measured.requests / measured.events
    dynamodb = measured.meter["dynamodb"]
    event_units = dynamodb["writeUnitsByKind"].get("event", 0) / measured.events
    writes = event_units * PRICES["dynamodb_write_unit"]
    requests = per_request * (PRICES["http_api_request"] + 2 * PRICES["lambda_request"])
    return {
        "DynamoDB writes": 1e6 * writes,
        "API Gateway": 1e6 * per_request * PRICES["http_api_request"],
        "Lambda requests": 1e6 * per_request * 2 * PRICES["lambda_request"],
        "total": 1e6 * (writes + requests),
    }


def _per_event(measured: Measured) -> dict[str, Any]:
    dynamodb, events = measured.meter["dynamodb"], measured.events
    items = dynamodb["writtenItems"].get("event", 0)
    return {
        "write_units": dynamodb["writeUnits"] / events,
        "read_units": dynamodb["readUnits"] / events,
        "write_units_by_kind": {
            kind: round(units / events, 3)
            for kind, units in sorted(
                dynamodb["writeUnitsByKind"].items(), key=lambda pair: -pair[1]
            )
        },
        "refused_writes": dynamodb["refusedWrites"] / events,
        "event_item_bytes": dynamodb["writtenBytes"].get("event", 0) / max(1, items),
        "events_per_event_item": events / max(1, items),
        "lambda_invocations": sum(u["invocations"] for u in measured.meter["lambda"].values())
        / events,
        "scheduler_invocations": measured.meter["schedulerInvocations"] / events,
        "log_bytes": measured.log_bytes / events,
    }


def _table(name: str, measured: Measured, costs: dict[str, float], floor: dict[str, float]) -> Any:
    per_event = _per_event(measured)
    rows = [
        [service, f"${value:.3f}", f"${floor[service]:.3f}" if service in floor else "-"]
        for service, value in costs.items()
    ]
    event_units = per_event["write_units_by_kind"].get("event", 0.0)
    rows.append(["write units per event", f"{per_event['write_units']:.2f}", f"{event_units:.2f}"])
    rows.extend(
        [f"  {kind}", f"{units:.3f}", ""]
        for kind, units in per_event["write_units_by_kind"].items()
    )
    rows.append(["read units per event", f"{per_event['read_units']:.2f}", "-"])
    rows.append(["event item bytes", f"{per_event['event_item_bytes']:.0f}", "-"])
    rows.append(["events per event item", f"{per_event['events_per_event_item']:.1f}", "-"])
    rows.append(["Lambda invocations per event", f"{per_event['lambda_invocations']:.3f}", "-"])
    title = (
        f"{name}: {measured.events:,} events in {measured.requests:,} requests, "
        f"{measured.seconds:.0f} s (USD per million events)"
    )
    return side_by_side(title, ["", "Nudge", "floor"], rows)
