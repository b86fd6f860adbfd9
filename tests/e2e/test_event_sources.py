"""The local stack's stream poller behaves as Lambda's DynamoDB event source mapping does.

The stack runs tests/e2e/fixtures/flaky/template.yaml: a table whose stream feeds a Recorder
(BatchSize 10, ReportBatchItemFailures, MaximumRetryAttempts 2, INSERT-only filter, an SQS
OnFailure destination). The Recorder writes each record it is handed to a Deliveries table
and reports as failed every record whose NewImage has fail=true.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest

from tests.e2e.conftest import StackClient

pytestmark = pytest.mark.e2e

TABLE = "nudge-local-Table"
DELIVERIES = "nudge-local-Deliveries"
FAILURE_QUEUE = "nudge-local-FailureQueue"
MAXIMUM_RETRY_ATTEMPTS = 2
RECORDER_ARN = "arn:aws:lambda:us-east-1:123456789012:function:nudge-local-Recorder"


@dataclass(frozen=True)
class Delivery:
    """One record as one invocation of the Recorder received it."""

    item_id: str
    batch: str
    position: int
    record: dict[str, Any]


class Flaky:
    """The flaky stack's table, the Recorder's deliveries and the failure queue."""

    def __init__(self, stack: StackClient) -> None:
        self.stack = stack
        self.dynamodb = stack.aws("dynamodb")
        self.sqs = stack.aws("sqs")

    def insert(self, *items: dict[str, Any]) -> None:
        """Writes the items in one request, so the stream holds them side by side."""
        self.dynamodb.batch_write_item(
            RequestItems={TABLE: [{"PutRequest": {"Item": item}} for item in items]}
        )

    def deliveries(self) -> list[Delivery]:
        self.stack.drain()
        pages = self.dynamodb.get_paginator("scan").paginate(TableName=DELIVERIES)
        found = [
            Delivery(
                item_id=item["id"]["S"],
                batch=item["batch"]["S"],
                position=int(item["position"]["N"]),
                record=json.loads(item["record"]["S"]),
            )
            for page in pages
            for item in page["Items"]
        ]
        return found

    def seen(self) -> Counter[str]:
        return Counter(delivery.item_id for delivery in self.deliveries())

    def failure_messages(self) -> list[dict[str, Any]]:
        url = self.sqs.get_queue_url(QueueName=FAILURE_QUEUE)["QueueUrl"]
        response = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
        return [json.loads(message["Body"]) for message in response.get("Messages", [])]

    def stream_arn(self) -> str:
        return str(self.dynamodb.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"])


def _item(item_id: str, *, fail: bool = False) -> dict[str, Any]:
    return {"id": {"S": item_id}, "fail": {"BOOL": fail}, "note": {"S": f"record {item_id}"}}


def _batch(deliveries: list[Delivery], batch: str) -> list[str]:
    """The ids one invocation received, in the order it received them."""
    return [d.item_id for d in sorted(deliveries, key=lambda d: d.position) if d.batch == batch]


@pytest.fixture
def flaky(flaky_stack: StackClient) -> Flaky:
    return Flaky(flaky_stack)


def test_records_arrive_in_lambda_event_shape(flaky: Flaky):
    """A stream record reaches the function shaped as Lambda delivers DynamoDB records."""
    # given
    item = _item("shape")

    # when
    flaky.insert(item)

    # then
    (delivery,) = flaky.deliveries()
    record = delivery.record
    assert record["eventName"] == "INSERT"
    assert record["eventSource"] == "aws:dynamodb"
    assert record["eventSourceARN"] == flaky.stream_arn()
    assert record["awsRegion"] == "us-east-1"
    assert record["eventID"]
    assert record["dynamodb"]["NewImage"] == item
    assert record["dynamodb"]["Keys"] == {"id": {"S": "shape"}}
    assert record["dynamodb"]["SequenceNumber"]


def test_reported_failure_is_redelivered(flaky: Flaky):
    """A record named in batchItemFailures is delivered again."""
    # given
    items = [_item("a"), _item("b", fail=True), _item("c")]

    # when
    flaky.insert(*items)

    # then
    assert flaky.seen()["b"] > 1


def test_records_before_a_reported_failure_are_not_redelivered(flaky: Flaky):
    """Records ahead of the reported failure are done with; redelivery starts at the failure."""
    # given
    items = [_item("a"), _item("b", fail=True), _item("c")]

    # when
    flaky.insert(*items)

    # then
    deliveries = flaky.deliveries()
    (first,) = [d.batch for d in deliveries if d.item_id == "a"]
    assert _batch(deliveries, first) == ["a", "b", "c"]
    redelivered = {d.batch for d in deliveries if d.batch != first}
    assert redelivered
    assert all(_batch(deliveries, batch)[0] == "b" for batch in redelivered)


def test_failure_is_retried_maximum_retry_attempts_times(flaky: Flaky):
    """A record that keeps failing is delivered once plus MaximumRetryAttempts times."""
    # given
    items = [_item("a"), _item("b", fail=True), _item("c")]

    # when
    flaky.insert(*items)

    # then
    assert flaky.seen()["b"] == 1 + MAXIMUM_RETRY_ATTEMPTS


def test_exhausted_batch_lands_on_the_on_failure_queue(flaky: Flaky):
    """After its retries run out, the batch's description is sent to the OnFailure queue."""
    # given
    flaky.insert(_item("a"), _item("b", fail=True), _item("c"))

    # when
    deliveries = flaky.deliveries()

    # then
    b_sequence = next(d for d in deliveries if d.item_id == "b").record["dynamodb"][
        "SequenceNumber"
    ]
    (message,) = flaky.failure_messages()
    assert message["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert message["requestContext"]["functionArn"] == RECORDER_ARN
    info = message["DDBStreamBatchInfo"]
    assert info["startSequenceNumber"] == b_sequence
    assert info["streamArn"] == flaky.stream_arn()
    assert info["batchSize"] >= 1


def test_records_after_an_exhausted_batch_still_flow(flaky: Flaky):
    """Once a failing batch is sent to the OnFailure queue, later records are delivered."""
    # given
    flaky.insert(_item("a"), _item("b", fail=True))
    assert flaky.seen()["b"] == 1 + MAXIMUM_RETRY_ATTEMPTS

    # when
    flaky.insert(_item("d"), _item("e"))

    # then
    seen = flaky.seen()
    assert seen["d"] == 1
    assert seen["e"] == 1
    assert seen["b"] == 1 + MAXIMUM_RETRY_ATTEMPTS


def test_modify_records_are_filtered_out(flaky: Flaky):
    """An update (MODIFY) never reaches the function; the filter passes INSERT only."""
    # given
    flaky.insert(_item("m"))
    assert flaky.seen()["m"] == 1

    # when
    flaky.dynamodb.put_item(TableName=TABLE, Item={**_item("m"), "note": {"S": "changed"}})

    # then
    deliveries = flaky.deliveries()
    assert [d.item_id for d in deliveries] == ["m"]
    assert {d.record["eventName"] for d in deliveries} == {"INSERT"}


def test_remove_records_are_filtered_out(flaky: Flaky):
    """A deletion (REMOVE) never reaches the function; the filter passes INSERT only."""
    # given
    flaky.insert(_item("r"))
    assert flaky.seen()["r"] == 1

    # when
    flaky.dynamodb.delete_item(TableName=TABLE, Key={"id": {"S": "r"}})

    # then
    assert {d.record["eventName"] for d in flaky.deliveries()} == {"INSERT"}
