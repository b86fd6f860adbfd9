"""Lambda played in-process over moto: handlers loaded from their CodeUri, the stream delivered.

A handler is loaded the way Lambda loads it (a fresh module, the environment the template
gives it), and the table's stream reaches the Evaluate handler the way its event source
mapping would: in order, in batches of BatchSize, through the template's filter criteria.
"""

from __future__ import annotations

import base64
import gzip
import importlib.util
import json
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

import boto3
import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext
from moto import mock_aws
from moto.events.models import EventPattern
from nudge import bootstrap

from local.resources import create_resources, resolve_queue_urls, table_name
from local.runtime import InvocationContext
from local.sources import lambda_stream_record
from local.template import FunctionSpec, StreamSource, Template

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodbstreams import DynamoDBStreamsClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_scheduler import EventBridgeSchedulerClient
    from mypy_boto3_sqs import SQSClient

__all__ = [
    "BASIC_AUTH",
    "NOW",
    "TRACKING_SECRET",
    "WRITE_KEY",
    "Aws",
    "Invoke",
    "Stream",
    "basic_auth",
    "beacon",
    "beacon_messages",
    "clear_bootstrap_caches",
    "json_body",
    "lambda_context",
    "link_request",
]

WRITE_KEY = "dev-write-key"
# The local stack's default, which also signs the tokens in events/*.json.
TRACKING_SECRET = "dev-tracking-secret"
# The receive time of every request the tests build, unless a test says otherwise.
NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)

# A loaded function invoked with an event; each call gets a fresh context, as in Lambda.
Invoke = Callable[[dict[str, Any]], dict[str, Any]]


def basic_auth(write_key: str) -> str:
    return "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()


BASIC_AUTH = basic_auth(WRITE_KEY)


def clear_bootstrap_caches() -> None:
    """Forget the settings and clients the composition root built (one per process in Lambda)."""
    for cached in (
        bootstrap.settings,
        bootstrap.dynamodb_client,
        bootstrap.engine_settings,
        bootstrap.scheduler_client,
        bootstrap.sqs_client,
        bootstrap.trigger_index,
        bootstrap.scoring,
        bootstrap.tracking_settings,
        bootstrap.webhook_secrets,
        bootstrap.ssm_client,
        bootstrap.delivery_settings,
        bootstrap.sesv2_client,
        bootstrap.socket_settings,
        bootstrap.socket_poster,
        bootstrap.s3_client,
    ):
        cached.cache_clear()


@dataclass
class Aws:
    """The mocked account: the template, its clients, its one table, its queues and schedules."""

    template: Template
    dynamodb: DynamoDBClient
    streams: DynamoDBStreamsClient
    sqs: SQSClient
    scheduler: EventBridgeSchedulerClient
    table: str
    monkeypatch: pytest.MonkeyPatch
    s3: S3Client

    @property
    def models_bucket(self) -> str:
        """The bucket Evaluate and Train keep the models in (their NUDGE_MODELS_BUCKET)."""
        return self.template.functions["Evaluate"].environment["NUDGE_MODELS_BUCKET"]

    def environment(self, logical_id: str) -> dict[str, str]:
        """The function's environment as Lambda sees it: queue references resolved to URLs."""
        return resolve_queue_urls(self.template.functions[logical_id].environment, self.sqs)

    def load_handler(self, logical_id: str, *, timeout: int | None = None) -> Invoke:
        """A cold start: the function's environment, then its module imported afresh.
        ``timeout`` replaces the template's: each invocation has that long."""
        spec = self.template.functions[logical_id]
        if timeout is not None:
            spec = replace(spec, timeout=timeout)
        for name, value in self.environment(logical_id).items():
            self.monkeypatch.setenv(name, value)
        # Settings are read once per process; this process plays every function in turn.
        clear_bootstrap_caches()
        module_file, _, attribute = spec.handler.rpartition(".")
        module_name = f"{logical_id.lower()}_{module_file}"
        module_spec = importlib.util.spec_from_file_location(
            module_name, spec.code_uri / f"{module_file}.py"
        )
        assert module_spec is not None
        assert module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        self.monkeypatch.setitem(sys.modules, module_name, module)
        module_spec.loader.exec_module(module)
        handler: Callable[[dict[str, Any], LambdaContext], dict[str, Any]] = getattr(
            module, attribute
        )

        def invoke(event: dict[str, Any]) -> dict[str, Any]:
            return handler(event, lambda_context(self.template, spec))

        return invoke

    def item_count(self) -> int:
        return self.dynamodb.scan(TableName=self.table, Select="COUNT")["Count"]

    def event_items(self) -> list[dict[str, Any]]:
        items = self.dynamodb.scan(TableName=self.table)["Items"]
        return [item for item in items if item["kind"]["S"] == "event"]


@contextmanager
def mocked_account(template: Template, session: boto3.Session) -> Iterator[Aws]:
    """moto in-process, holding what the template declares (tables, queues, schedule groups
    and schedules, the SES identity and configuration set), with clients built inside it."""
    with mock_aws(), pytest.MonkeyPatch.context() as monkeypatch:
        # moto resets boto3's default session on start; one shared session parses each
        # service model once per run instead of once per test (most of a test's time).
        monkeypatch.setattr(boto3, "DEFAULT_SESSION", session)
        dynamodb = boto3.client("dynamodb")
        sqs = boto3.client("sqs")
        scheduler = boto3.client("scheduler")
        s3 = boto3.client("s3")
        create_resources(
            template, dynamodb, sqs, scheduler, boto3.client("sesv2"), boto3.client("ssm"), s3
        )
        (table_id,) = template.tables
        # Clients must be built inside the mock, and none may outlive it.
        clear_bootstrap_caches()
        try:
            yield Aws(
                template=template,
                dynamodb=dynamodb,
                streams=boto3.client("dynamodbstreams"),
                sqs=sqs,
                scheduler=scheduler,
                table=table_name(template, table_id),
                monkeypatch=monkeypatch,
                s3=s3,
            )
        finally:
            clear_bootstrap_caches()


def lambda_context(template: Template, spec: FunctionSpec) -> LambdaContext:
    """The context the local runtime gives: the function's names and its timeout ticking."""
    return cast(LambdaContext, InvocationContext.of(template.names, spec))


@dataclass
class Stream:
    """The Evaluate function's event source mapping, played by hand.

    ``read`` returns what the shard holds past the checkpoint, in Lambda's record shape;
    ``deliver`` applies the template's filter criteria and invokes in batches of BatchSize.
    """

    aws: Aws
    source: StreamSource
    handler: Invoke
    checkpoint: str | None = None
    responses: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def of(cls, aws: Aws, handler: Invoke, function: str = "Evaluate") -> Stream:
        (source,) = aws.template.functions[function].stream_sources
        return cls(aws=aws, source=source, handler=handler)

    def read(self) -> list[dict[str, Any]]:
        streams = self.aws.streams
        table = self.aws.dynamodb.describe_table(TableName=self.aws.table)["Table"]
        arn = table["LatestStreamArn"]
        (shard,) = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
        if self.checkpoint is None:
            iterator = streams.get_shard_iterator(
                StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )["ShardIterator"]
        else:
            iterator = streams.get_shard_iterator(
                StreamArn=arn,
                ShardId=shard["ShardId"],
                ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                SequenceNumber=self.checkpoint,
            )["ShardIterator"]
        records: list[dict[str, Any]] = []
        while True:
            page = streams.get_records(ShardIterator=iterator)
            if not page["Records"]:
                break
            records += [_lambda_shape(dict(record), arn) for record in page["Records"]]
            iterator = page["NextShardIterator"]
        if records:
            self.checkpoint = records[-1]["dynamodb"]["SequenceNumber"]
        return records

    def deliver(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Invoke the handler with the records the filters let through; its responses."""
        patterns = [EventPattern.load(json.dumps(pattern)) for pattern in self.source.filters]
        wanted = [
            record
            for record in records
            if not patterns or any(pattern.matches_event(cast(Any, record)) for pattern in patterns)
        ]
        responses = []
        for start in range(0, len(wanted), self.source.batch_size):
            responses.append(
                self.handler({"Records": wanted[start : start + self.source.batch_size]})
            )
        self.responses += responses
        return responses

    def drain(self) -> list[dict[str, Any]]:
        """Deliver everything written since the last drain; every batch must succeed."""
        responses = self.deliver(self.read())
        assert all(response == {"batchItemFailures": []} for response in responses), responses
        return responses


def _lambda_shape(record: Mapping[str, Any], stream_arn: str) -> dict[str, Any]:
    """What Lambda hands the function: the DynamoDB Streams record plus its source ARN."""
    return lambda_stream_record(record, stream_arn)


def beacon(
    route: str,
    body: Any = None,
    *,
    raw: str | bytes | None = None,
    at: datetime = NOW,
    headers: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
    auth: str | None = BASIC_AUTH,
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) POST to /v1/<route>.

    ``body`` is sent as JSON; ``raw`` as given (bytes go base64-encoded, as API Gateway
    delivers a body it does not consider text).
    """
    all_headers = {"content-type": "application/json", "user-agent": "nudge-tests/1.0"}
    if auth is not None:
        all_headers["authorization"] = auth
    all_headers.update(headers or {})
    path = f"/v1/{route}"
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": f"POST {path}",
        "rawPath": path,
        "rawQueryString": "&".join(f"{name}={value}" for name, value in (query or {}).items()),
        "headers": all_headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "testapi",
            "http": {
                "method": "POST",
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.1",
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": f"POST {path}",
            "stage": "$default",
            "timeEpoch": int(at.timestamp() * 1000),
        },
        "isBase64Encoded": False,
    }
    if query:
        event["queryStringParameters"] = dict(query)
    if isinstance(raw, bytes):
        event["body"] = base64.b64encode(raw).decode()
        event["isBase64Encoded"] = True
    elif raw is not None:
        event["body"] = raw
    elif body is not None:
        event["body"] = json.dumps(body, ensure_ascii=False)
    return event


def link_request(
    method: str,
    path: str,
    *,
    body: str | None = None,
    at: datetime = NOW,
    headers: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) request for an email link such as /o/<token>."""
    prefix, token = path.rsplit("/", 1)
    route_key = f"{method} {prefix}/{{token}}"
    all_headers = {"user-agent": "Mozilla/5.0 (nudge-tests)", **(headers or {})}
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": "",
        "headers": all_headers,
        "pathParameters": {"token": token},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "testapi",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.1",
                "userAgent": all_headers["user-agent"],
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": route_key,
            "stage": "$default",
            "timeEpoch": int(at.timestamp() * 1000),
        },
        "isBase64Encoded": False,
    }
    if body is not None:
        event["body"] = body
    return event


def json_body(response: Mapping[str, Any]) -> Any:
    return json.loads(response["body"])


def beacon_messages(event: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The Segment messages an HTTP API event carries, decoded as the function decodes them."""
    raw = event.get("body") or ""
    body = base64.b64decode(raw) if event.get("isBase64Encoded") else raw.encode()
    if event.get("headers", {}).get("content-encoding") == "gzip":
        body = gzip.decompress(body)
    payload = json.loads(body)
    messages = payload.get("batch", [payload])
    return [message for message in messages if isinstance(message, dict)]
