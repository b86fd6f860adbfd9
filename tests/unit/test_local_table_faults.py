"""The local stack's DynamoDB throttle (local/faults.py): which requests are writes, and what
a refused write looks like to the SDK. A boto3 client talks to the fault injector in this
process (botocore's before-send hook hands it the request), with a fake moto behind it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.config import Config
from botocore.exceptions import ClientError
from werkzeug.datastructures import Headers
from werkzeug.test import EnvironBuilder, run_wsgi_app

from local.faults import DYNAMODB_WRITES, TableFaults, dynamodb_write

TABLE = "nudge-table"
ITEM = {"pk": {"S": "u:ada"}, "sk": {"S": "profile"}}
KEY = {"pk": {"S": "u:ada"}, "sk": {"S": "profile"}}


def _target(action: str, service: str = "DynamoDB_20120810") -> dict[str, Any]:
    return {"HTTP_X_AMZ_TARGET": f"{service}.{action}"}


class FakeMoto:
    """Answers every call 200 with an empty JSON object, and notes which calls reached it."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        self.calls.append(str(environ["HTTP_X_AMZ_TARGET"]).partition(".")[2])
        start_response("200 OK", [("Content-Type", "application/x-amz-json-1.0")])
        return [b"{}"]


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, *_: Any, **__: Any) -> Iterator[bytes]:
        yield self._body


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _body(body: Any) -> bytes:
    return bytes(body or b"")


@pytest.fixture
def moto() -> FakeMoto:
    return FakeMoto()


@pytest.fixture
def faults() -> TableFaults:
    return TableFaults()


@pytest.fixture
def dynamodb(moto: FakeMoto, faults: TableFaults) -> Any:
    """A DynamoDB client whose requests go to the injector in front of the fake moto, tried
    once (no SDK retries), so each call is one request."""
    app = faults.wrap(moto)

    def send(request: AWSPreparedRequest, **_: Any) -> Any:
        """botocore's hook: a response returned here is used instead of sending the request."""
        headers = Headers([(name, _text(value)) for name, value in request.headers.items()])
        environ = EnvironBuilder(
            path="/", method=request.method, headers=headers, data=_body(request.body)
        ).get_environ()
        body, status, answered = run_wsgi_app(app, environ, buffered=True)
        raw = _Raw(b"".join(body))
        # AWSResponse copies the headers into its own dict; its stubs ask for more than that.
        copied: Any = dict(answered)
        return AWSResponse(request.url, int(status.split()[0]), copied, raw)

    client = boto3.client(
        "dynamodb",
        endpoint_url="http://moto.invalid",
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )
    client.meta.events.register("before-send.dynamodb", send)
    return client


# ---- which requests are writes -------------------------------------------------------------


@pytest.mark.parametrize(
    "action", ["PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"]
)
def test_each_write_call_is_recognised_by_its_target(action: str):
    """A DynamoDB request whose X-Amz-Target names a write call is that write."""
    # given
    environ = _target(action)

    # when
    write = dynamodb_write(environ)

    # then
    assert write == action
    assert write in DYNAMODB_WRITES


@pytest.mark.parametrize(
    "environ",
    [
        _target("GetItem"),
        _target("BatchGetItem"),
        _target("TransactGetItems"),
        _target("Query"),
        _target("Scan"),
        _target("DescribeTable"),
        _target("CreateTable"),
        _target("DeleteTable"),
        _target("GetRecords", service="DynamoDBStreams_20120810"),
        _target("PutItem", service="DynamoDB_20111205"),
        _target("SendMessage", service="AmazonSQS"),
        {},
    ],
    ids=lambda environ: environ.get("HTTP_X_AMZ_TARGET", "no target"),
)
def test_reads_table_management_streams_and_other_services_are_not_writes(
    environ: dict[str, Any],
):
    """Only DynamoDB's write calls count: reads, table calls, Streams and others do not."""
    # given / when
    write = dynamodb_write(environ)

    # then
    assert write is None


# ---- what the SDK sees -----------------------------------------------------------------------


def test_a_throttled_write_is_dynamodbs_throttling_error_and_never_reaches_moto(
    dynamodb: Any, moto: FakeMoto, faults: TableFaults
):
    """The SDK reads a throttled write as ProvisionedThroughputExceededException (400), as
    from DynamoDB, and moto never sees the call."""
    # given
    faults.set("throttle", 1)

    # when
    with pytest.raises(dynamodb.exceptions.ProvisionedThroughputExceededException) as refused:
        dynamodb.put_item(TableName=TABLE, Item=ITEM)

    # then
    error: ClientError = refused.value
    assert error.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "(injected by the local stack)" in error.response["Error"]["Message"]
    assert moto.calls == []
    assert faults.pending() == {"throttle": 0}


def test_the_count_is_of_calls_not_items_and_reads_go_through(
    dynamodb: Any, moto: FakeMoto, faults: TableFaults
):
    """A batch of three writes uses one count; a read while writes are throttled is answered
    and uses none; the write after the count is spent reaches moto."""
    # given
    faults.set("throttle", 2)
    batch = {TABLE: [{"PutRequest": {"Item": {**ITEM, "n": {"N": str(n)}}}} for n in range(3)]}

    # when
    with pytest.raises(ClientError):
        dynamodb.batch_write_item(RequestItems=batch)
    dynamodb.get_item(TableName=TABLE, Key=KEY)
    with pytest.raises(ClientError):
        dynamodb.update_item(
            TableName=TABLE,
            Key=KEY,
            UpdateExpression="SET n = :n",
            ExpressionAttributeValues={":n": {"N": "1"}},
        )
    dynamodb.delete_item(TableName=TABLE, Key=KEY)

    # then
    assert moto.calls == ["GetItem", "DeleteItem"]
    assert faults.pending() == {"throttle": 0}


def test_the_throttled_answer_is_dynamodbs_json_error():
    """The answer is 400 with DynamoDB's JSON error type, its content type and a checksum."""
    # given
    faults = TableFaults()
    faults.set("throttle", 1)
    target = Headers([("X-Amz-Target", "DynamoDB_20120810.PutItem")])
    environ = EnvironBuilder(path="/", method="POST", headers=target, data=b"{}").get_environ()

    # when
    body, status, headers = run_wsgi_app(faults.wrap(FakeMoto()), environ, buffered=True)

    # then
    answer = b"".join(body)
    assert status == "400 Bad Request"
    assert headers["Content-Type"] == "application/x-amz-json-1.0"
    assert json.loads(answer)["__type"] == (
        "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"
    )
    assert headers["x-amz-crc32"].isdigit()
