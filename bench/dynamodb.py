"""DynamoDB requests and capacity units per accepted event: Nudge against the obvious design.

Everything runs in this process against moto. Nudge's own handlers are loaded from their
CodeUri with the template's environment; every call the client ``nudge.bootstrap`` builds
is seen through botocore's ``before-call`` / ``after-call`` hooks, and the table's stream
is fed to the Evaluate handler, so "per event" covers ingest *and* the profile upkeep
and the trigger decisions those events lead to.

Capacity follows DynamoDB's published rules, computed from the request parameters:
a write costs 1 WCU per started 1 KB of the larger of the old and the new item (the table
has no secondary index to pay for); a strongly consistent read costs 1 RCU per started
4 KB (a missing key still costs 1).

The baseline is the design most people write first, run on the same table and workloads:
one conditional PutItem per event and one UpdateItem per event for the person's profile.
"""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import io
import json
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import boto3
from aws_lambda_powertools.utilities.typing import LambdaContext
from moto import mock_aws
from moto.events.models import EventPattern
from nudge import bootstrap
from nudge.adapters import keys
from nudge.domain.person import PersonId
from rich.console import Console

from bench.common import REPO, Figures, event_item, side_by_side, track_message
from local.meter import item_size, read_units, write_units
from local.resources import create_resources, resolve_queue_urls, table_name
from local.runtime import InvocationContext
from local.sources import lambda_stream_record
from local.template import FunctionSpec, Template, load_template

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodbstreams import DynamoDBStreamsClient

__all__ = ["Counts", "item_size", "run"]

WRITE_KEY = "bench-write-key"
AUTH = "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()
EVENTS = 100
WRITE_OPERATIONS = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
READ_OPERATIONS = {"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"}

Handler = Callable[[dict[str, Any]], dict[str, Any]]


# ---- DynamoDB's item size and capacity rules: local/meter.py's, which cites them -------------


def _wcu(size: int) -> int:
    return write_units(size)


def _rcu(size: int) -> int:
    return int(read_units(size))


@dataclass
class Counts:
    requests: int = 0
    write_requests: int = 0
    read_requests: int = 0
    wcu: int = 0
    rcu: float = 0.0
    event_item_bytes: int = 0  # summed over the event items written
    event_items: int = 0
    by_operation: dict[str, int] = field(default_factory=dict)

    def per_event(self, events: int) -> dict[str, float]:
        return {
            "requests": self.requests / events,
            "write_requests": self.write_requests / events,
            "read_requests": self.read_requests / events,
            "wcu": self.wcu / events,
            "rcu": self.rcu / events,
            "event_item_bytes": self.event_item_bytes / max(1, self.event_items),
        }


class CapacityMeter:
    """Counts one client's DynamoDB calls and prices them from their parameters.

    Old item sizes (a write is priced on the larger of old and new) are looked up with a
    second client that carries no hooks, so the lookups themselves are not counted.
    """

    def __init__(self, client: DynamoDBClient, sizer: DynamoDBClient) -> None:
        self.counts = Counts()
        self._sizer = sizer
        client.meta.events.register("before-call.dynamodb.*", self._before)
        client.meta.events.register("after-call.dynamodb.*", self._after)

    def _existing(self, table: str, key: Mapping[str, Any]) -> dict[str, Any] | None:
        found = self._sizer.get_item(TableName=table, Key=dict(key), ConsistentRead=True)
        return found.get("Item")

    @staticmethod
    def _key_of(item: Mapping[str, Any]) -> dict[str, Any]:
        return {name: item[name] for name in ("pk", "sk") if name in item}  # the table's key

    def _before(
        self, model: Any, params: Mapping[str, Any], context: dict[str, Any], **_: Any
    ) -> None:
        request = json.loads(params.get("body") or b"{}")
        context["bench_request"] = request
        old: list[int] = []
        if model.name == "PutItem":
            old.append(
                item_size(self._existing(request["TableName"], self._key_of(request["Item"])))
            )
        elif model.name in ("UpdateItem", "DeleteItem"):
            old.append(item_size(self._existing(request["TableName"], request["Key"])))
        elif model.name == "BatchWriteItem":
            for table, writes in request["RequestItems"].items():
                for write in writes:
                    key = (
                        write["PutRequest"]["Item"]
                        if "PutRequest" in write
                        else write["DeleteRequest"]["Key"]
                    )
                    old.append(item_size(self._existing(table, self._key_of(key))))
        context["bench_old_sizes"] = old

    def _after(
        self, model: Any, parsed: Mapping[str, Any], context: dict[str, Any], **_: Any
    ) -> None:
        name: str = model.name
        request: dict[str, Any] = context.get("bench_request", {})
        old: list[int] = context.get("bench_old_sizes", [])
        counts = self.counts
        counts.requests += 1
        counts.by_operation[name] = counts.by_operation.get(name, 0) + 1
        if "Error" in parsed:
            return
        if name in WRITE_OPERATIONS:
            counts.write_requests += 1
            for new_item, old_size in zip(self._written_items(name, request), old, strict=False):
                self._charge_write(new_item, old_size)
        elif name in READ_OPERATIONS:
            counts.read_requests += 1
            counts.rcu += self._read_units(name, request, parsed)

    def _written_items(self, name: str, request: Mapping[str, Any]) -> list[dict[str, Any] | None]:
        if name == "PutItem":
            return [request["Item"]]
        if name == "UpdateItem":  # the new item only exists after the call: read it back
            return [self._existing(request["TableName"], request["Key"])]
        if name == "DeleteItem":
            return [None]
        if name == "BatchWriteItem":
            return [
                write["PutRequest"]["Item"] if "PutRequest" in write else None
                for writes in request["RequestItems"].values()
                for write in writes
            ]
        return []

    def _charge_write(self, new_item: Mapping[str, Any] | None, old_size: int) -> None:
        size = max(item_size(new_item), old_size)
        self.counts.wcu += _wcu(size)
        if new_item and new_item.get("kind") == {"S": keys.EVENT_KIND}:
            self.counts.event_item_bytes += item_size(new_item)
            self.counts.event_items += 1

    def _read_units(
        self, name: str, request: Mapping[str, Any], parsed: Mapping[str, Any]
    ) -> float:
        if name == "GetItem":
            factor = 1.0 if request.get("ConsistentRead") else 0.5
            return factor * _rcu(item_size(parsed.get("Item")))
        if name == "BatchGetItem":
            units = 0.0
            for table, wanted in request["RequestItems"].items():
                factor = 1.0 if wanted.get("ConsistentRead") else 0.5
                found = parsed.get("Responses", {}).get(table, [])
                unprocessed = len(parsed.get("UnprocessedKeys", {}).get(table, {}).get("Keys", []))
                missing = len(wanted["Keys"]) - len(found) - unprocessed
                units += factor * (sum(_rcu(item_size(item)) for item in found) + missing)
            return units
        factor = 1.0 if request.get("ConsistentRead") else 0.5
        return factor * _rcu(sum(item_size(item) for item in parsed.get("Items", [])))


# ---- the account: moto, the template's table, the handlers loaded as Lambda would ----------


class _Discard(io.StringIO):
    """Powertools logs and EMF metrics go to stdout; the bench's stdout is its report."""

    def write(self, text: str) -> int:
        return len(text)


_SINK = _Discard()


@contextlib.contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.update(values)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _context(template: Template, spec: FunctionSpec) -> LambdaContext:
    """The context the local runtime gives: the function's names and its timeout ticking."""
    return cast(LambdaContext, InvocationContext.of(template.names, spec))


def _clear_bootstrap_settings() -> None:
    """Forget what the composition root read from the environment (once per process in Lambda).

    The clients stay: every handler must share the one client the meter counts on.
    """
    for cached in (
        bootstrap.settings,
        bootstrap.engine_settings,
        bootstrap.trigger_index,
        bootstrap.delivery_settings,
    ):
        cached.cache_clear()


def _clear_bootstrap_caches() -> None:
    """Forget the settings and the clients: none may outlive the mocked account."""
    _clear_bootstrap_settings()
    for cached in (
        bootstrap.dynamodb_client,
        bootstrap.scheduler_client,
        bootstrap.sqs_client,
        bootstrap.sesv2_client,
    ):
        cached.cache_clear()


def _load_handler(template: Template, logical_id: str) -> Handler:
    """A cold start: the function's environment, then its module imported afresh from CodeUri."""
    spec = template.functions[logical_id]
    # !Ref of a queue is its URL, which only the (mocked) account knows.
    sqs = boto3.client("sqs", region_name=template.names.region)
    os.environ.update(resolve_queue_urls(spec.environment, sqs))
    _clear_bootstrap_settings()
    module_file, _, attribute = spec.handler.rpartition(".")
    module_name = f"bench_{logical_id.lower()}_{module_file}"
    module_spec = importlib.util.spec_from_file_location(
        module_name, spec.code_uri / f"{module_file}.py"
    )
    if module_spec is None or module_spec.loader is None:
        raise RuntimeError(f"cannot load {spec.code_uri / module_file}.py")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules[module_name] = module
    module_spec.loader.exec_module(module)
    handler: Callable[[dict[str, Any], LambdaContext], dict[str, Any]] = getattr(module, attribute)
    return lambda event: handler(event, _context(template, spec))


def _api_event(route: str, body: dict[str, Any]) -> dict[str, Any]:
    now_ms = int(time.time() * 1000)
    return {
        "version": "2.0",
        "routeKey": f"POST /v1/{route}",
        "rawPath": f"/v1/{route}",
        "rawQueryString": "",
        "headers": {"content-type": "application/json", "authorization": AUTH},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "bench",
            "domainName": "bench.local",
            "domainPrefix": "bench",
            "http": {
                "method": "POST",
                "path": f"/v1/{route}",
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "bench",
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": f"POST /v1/{route}",
            "stage": "$default",
            "time": datetime.now(UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": now_ms,
        },
        "body": json.dumps(body),
        "isBase64Encoded": False,
    }


@dataclass
class _Stream:
    """The Evaluate event source mapping, by hand: read past the checkpoint, filter, batch."""

    dynamodb: DynamoDBClient
    streams: DynamoDBStreamsClient
    table: str
    patterns: list[Any]
    batch_size: int
    handler: Handler
    checkpoint: str | None = None

    def drain(self) -> int:
        arn = self.dynamodb.describe_table(TableName=self.table)["Table"]["LatestStreamArn"]
        shards = self.streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
        records: list[dict[str, Any]] = []
        for shard in shards:
            if self.checkpoint is None:
                iterator = self.streams.get_shard_iterator(
                    StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
            else:
                iterator = self.streams.get_shard_iterator(
                    StreamArn=arn,
                    ShardId=shard["ShardId"],
                    ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                    SequenceNumber=self.checkpoint,
                )["ShardIterator"]
            for _ in range(1000):  # bounded; a page is up to 1,000 records
                page = self.streams.get_records(ShardIterator=iterator)
                if not page["Records"]:
                    break
                records += [self._lambda_shape(dict(record), arn) for record in page["Records"]]
                iterator = page["NextShardIterator"]
        if records:
            self.checkpoint = records[-1]["dynamodb"]["SequenceNumber"]
        wanted = [
            r
            for r in records
            if not self.patterns or any(p.matches_event(r) for p in self.patterns)
        ]
        for start in range(0, len(wanted), self.batch_size):
            response = self.handler({"Records": wanted[start : start + self.batch_size]})
            if response != {"batchItemFailures": []}:
                raise RuntimeError(f"Evaluate reported failures: {response}")
        return len(wanted)

    @staticmethod
    def _lambda_shape(record: dict[str, Any], arn: str) -> dict[str, Any]:
        return lambda_stream_record(record, arn)


@dataclass(frozen=True)
class Workload:
    name: str
    label: str
    requests: list[tuple[str, dict[str, Any]]]  # (route, body)
    drain_after_each: bool  # singles: each event reaches Evaluate in its own batch (worst case)

    def messages(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for route, body in self.requests:
            found += body["batch"] if route == "batch" else [body]
        return found


def _workloads() -> list[Workload]:
    now = datetime.now(UTC)
    singles = [("track", track_message("ada", index, "single", now)) for index in range(EVENTS)]
    one_user = [track_message("ada", index, "batch", now) for index in range(EVENTS)]
    many_users = [
        track_message(f"user-{index:03d}", index, "spread", now) for index in range(EVENTS)
    ]
    return [
        Workload("single", f"{EVENTS} x /v1/track", singles, drain_after_each=True),
        Workload(
            "batch", f"1 x /v1/batch of {EVENTS}, 1 user", [("batch", {"batch": one_user})], False
        ),
        Workload(
            "batch_spread",
            f"1 x /v1/batch of {EVENTS}, {EVENTS} users",
            [("batch", {"batch": many_users})],
            False,
        ),
    ]


@contextlib.contextmanager
def _account(
    parameters: dict[str, str] | None = None,
) -> Iterator[tuple[Template, DynamoDBClient, str]]:
    """A mocked account holding what template.yaml declares, ``parameters`` overriding."""
    region = "us-east-1"
    env = {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    with _environment(env), mock_aws(), contextlib.redirect_stdout(_SINK):
        for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
            os.environ.pop(name, None)
        template = load_template(
            REPO / "template.yaml",
            {
                "WriteKey": WRITE_KEY,
                "TrackingSecret": "bench-tracking-secret",
                **(parameters or {}),
            },
        )
        dynamodb: DynamoDBClient = boto3.client("dynamodb", region_name=region)
        create_resources(
            template,
            dynamodb,
            boto3.client("sqs", region_name=region),
            boto3.client("scheduler", region_name=region),
            boto3.client("sesv2", region_name=region),
        )
        _clear_bootstrap_caches()
        try:
            yield template, dynamodb, table_name(template, next(iter(template.tables)))
        finally:
            _clear_bootstrap_caches()


def _stored_events(dynamodb: DynamoDBClient, table: str) -> int:
    pages = dynamodb.get_paginator("scan").paginate(
        TableName=table,
        FilterExpression="kind = :event",
        ExpressionAttributeValues={":event": {"S": keys.EVENT_KIND}},
        Select="COUNT",
    )
    return sum(page["Count"] for page in pages)


def _run_nudge(workload: Workload) -> tuple[Counts, int]:
    with _account() as (template, dynamodb, table):
        ingest = _load_handler(template, "Ingest")
        evaluate = _load_handler(template, "Evaluate")
        meter = CapacityMeter(bootstrap.dynamodb_client(), dynamodb)
        (source,) = template.functions["Evaluate"].stream_sources
        stream = _Stream(
            dynamodb=dynamodb,
            streams=boto3.client("dynamodbstreams", region_name=template.names.region),
            table=table,
            patterns=[EventPattern.load(json.dumps(pattern)) for pattern in source.filters],
            batch_size=source.batch_size,
            handler=evaluate,
        )
        for route, body in workload.requests:
            response = ingest(_api_event(route, body))
            if response.get("statusCode") != 200:
                raise RuntimeError(f"ingest refused a bench request: {response}")
            if workload.drain_after_each:
                stream.drain()
        stream.drain()
        return meter.counts, _stored_events(dynamodb, table)


def _run_naive(workload: Workload) -> tuple[Counts, int]:
    """The obvious design: per event, a conditional PutItem and a profile UpdateItem."""
    with _account() as (template, dynamodb, table):
        client: DynamoDBClient = boto3.client("dynamodb", region_name=template.names.region)
        meter = CapacityMeter(client, dynamodb)
        retention = timedelta(days=int(template.parameters["RetentionDays"]))
        for message in workload.messages():
            person = PersonId.of(message.get("userId"), message.get("anonymousId"))
            item = event_item(message, retention)
            client.put_item(
                TableName=table, Item=item, ConditionExpression="attribute_not_exists(sk)"
            )
            client.update_item(
                TableName=table,
                Key={name: {"S": value} for name, value in keys.profile_key(person).items()},
                UpdateExpression=(
                    "SET kind = :kind, user_id = :user, last_seen = :ts, "
                    "first_seen = if_not_exists(first_seen, :ts) "
                    "ADD events :one, anonymous_ids :anon"
                ),
                ExpressionAttributeValues={
                    ":kind": {"S": keys.PROFILE_KIND},
                    ":user": {"S": message["userId"]},
                    ":ts": {"S": message["timestamp"]},
                    ":one": {"N": "1"},
                    ":anon": {"SS": [message["anonymousId"]]},
                },
            )
        return meter.counts, _stored_events(dynamodb, table)


def _fmt(value: float) -> str:
    return f"{value:.2f}"


def run(console: Console) -> Figures:
    figures: Figures = {"events_per_workload": EVENTS, "workloads": {}}
    rows: list[list[str]] = []
    for workload in _workloads():
        nudge, nudge_stored = _run_nudge(workload)
        naive, naive_stored = _run_naive(workload)
        events = len(workload.messages())
        ours, theirs = nudge.per_event(events), naive.per_event(events)
        figures["workloads"][workload.name] = {
            "label": workload.label,
            "events": events,
            "nudge": {**ours, "stored": nudge_stored, "totals": _totals(nudge)},
            "naive": {**theirs, "stored": naive_stored, "totals": _totals(naive)},
        }
        rows.append(
            [
                workload.label,
                f"{_fmt(ours['write_requests'])} | {_fmt(theirs['write_requests'])}",
                f"{_fmt(ours['requests'])} | {_fmt(theirs['requests'])}",
                f"{_fmt(ours['wcu'])} | {_fmt(theirs['wcu'])}",
                f"{_fmt(ours['rcu'])} | {_fmt(theirs['rcu'])}",
                f"{ours['event_item_bytes']:.0f} | {theirs['event_item_bytes']:.0f}",
                f"{nudge_stored} | {naive_stored}",
            ]
        )
    batch = figures["workloads"]["batch"]["nudge"]["write_requests"]
    spread = figures["workloads"]["batch_spread"]["nudge"]["write_requests"]
    figures["goal_at_most_one_write_request_per_event_in_batches"] = batch <= 1 and spread <= 1
    console.print(
        side_by_side(
            "DynamoDB per accepted event, ingest + Evaluate stream consumer"
            " (Nudge | naive baseline)",
            [
                "workload",
                "write requests",
                "all requests",
                "WCU",
                "RCU",
                "event item B",
                "stored",
            ],
            rows,
        )
    )
    console.print(
        "  naive = one conditional PutItem + one profile UpdateItem per event; "
        f"goal ≤ 1 write request/event in batches: one user {_fmt(batch)}, "
        f"{EVENTS} users {_fmt(spread)}"
    )
    return figures


def _totals(counts: Counts) -> dict[str, Any]:
    return asdict(counts)
