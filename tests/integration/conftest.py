"""Integration tests run the real handlers against moto, with the tables the template declares.

A handler is loaded from its CodeUri the way Lambda loads it (a fresh module, environment
from the template), and the table's stream is delivered to the Profiles handler the way an
event source mapping would: in order, in batches, through the template's filter criteria.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import sys
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from aws_lambda_powertools.utilities.typing import LambdaContext
from moto import mock_aws
from moto.events.models import EventPattern

from local.resources import create_resources, table_name
from local.template import FunctionSpec, StreamSource, Template, load_template
from nudge import bootstrap

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodbstreams import DynamoDBStreamsClient

WRITE_KEY = "dev-write-key"
BASIC_AUTH = "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()

# A loaded function, invoked with an event; each call gets a fresh context, as in Lambda.
Invoke = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass
class Aws:
    """The mocked account: the template, its clients and the one table."""

    template: Template
    dynamodb: DynamoDBClient
    streams: DynamoDBStreamsClient
    table: str
    monkeypatch: pytest.MonkeyPatch

    def load_handler(self, logical_id: str) -> Invoke:
        """A cold start: the function's environment, then its module imported afresh."""
        spec = self.template.functions[logical_id]
        for name, value in spec.environment.items():
            self.monkeypatch.setenv(name, value)
        # Settings are read once per process; this process plays every function in turn.
        bootstrap.settings.cache_clear()
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
        return [item for item in items if item["sk"]["S"].startswith("E#")]


def lambda_context(template: Template, spec: FunctionSpec) -> LambdaContext:
    context = LambdaContext()
    context._function_name = template.names.physical(spec.logical_id)
    context._function_version = "$LATEST"
    context._invoked_function_arn = template.names.function_arn(spec.logical_id)
    context._memory_limit_in_mb = spec.memory
    context._aws_request_id = str(uuid.uuid4())
    context._log_group_name = f"/aws/lambda/{context._function_name}"
    context._log_stream_name = "2026/11/28/[$LATEST]0123456789abcdef"
    return context


@pytest.fixture
def aws(repo: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    with mock_aws():
        template = load_template(repo / "template.yaml", {"WriteKey": WRITE_KEY})
        dynamodb = boto3.client("dynamodb")
        create_resources(template, dynamodb, boto3.client("sqs"))
        (table_id,) = template.tables
        # Clients must be built inside the mock, and none may outlive it.
        bootstrap.settings.cache_clear()
        bootstrap.dynamodb_client.cache_clear()
        yield Aws(
            template=template,
            dynamodb=dynamodb,
            streams=boto3.client("dynamodbstreams"),
            table=table_name(template, table_id),
            monkeypatch=monkeypatch,
        )
        bootstrap.settings.cache_clear()
        bootstrap.dynamodb_client.cache_clear()


@pytest.fixture
def ingest(aws: Aws) -> Invoke:
    return aws.load_handler("Ingest")


@pytest.fixture
def profiles(aws: Aws) -> Invoke:
    return aws.load_handler("Profiles")


@dataclass
class Stream:
    """The Profiles function's event source mapping, played by hand.

    ``read`` returns what the shard holds past the checkpoint, in Lambda's record shape;
    ``deliver`` applies the template's filter criteria and invokes in batches of BatchSize.
    """

    aws: Aws
    source: StreamSource
    handler: Invoke
    checkpoint: str | None = None
    responses: list[dict[str, Any]] = field(default_factory=list)

    def read(self) -> list[dict[str, Any]]:
        streams = self.aws.streams
        arn = self.aws.dynamodb.describe_table(TableName=self.aws.table)["Table"]["LatestStreamArn"]
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
            if not patterns or any(pattern.matches_event(record) for pattern in patterns)
        ]
        responses = []
        for start in range(0, len(wanted), self.source.batch_size):
            batch = wanted[start : start + self.source.batch_size]
            responses.append(self.handler({"Records": batch}))
        self.responses += responses
        return responses

    def drain(self) -> list[dict[str, Any]]:
        """Deliver everything written since the last drain; every batch must succeed."""
        responses = self.deliver(self.read())
        assert all(response == {"batchItemFailures": []} for response in responses), responses
        return responses


def _lambda_shape(record: Mapping[str, Any], stream_arn: str) -> dict[str, Any]:
    """What Lambda hands the function: the DynamoDB Streams record plus its source ARN."""
    change = dict(record["dynamodb"])
    created = change.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        change["ApproximateCreationDateTime"] = int(created.astimezone(UTC).timestamp())
    return {**record, "dynamodb": change, "eventSourceARN": stream_arn}


@pytest.fixture
def stream(aws: Aws, profiles: Invoke) -> Stream:
    (source,) = aws.template.functions["Profiles"].stream_sources
    return Stream(aws=aws, source=source, handler=profiles)
