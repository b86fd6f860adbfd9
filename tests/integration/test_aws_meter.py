"""The AWS meter (local/meter.py) against DynamoDB's documented on-demand billing rules.

A moto server in this process, its WSGI app wrapped by an ``AwsMeter`` the way the local
stack wraps it, one table keyed pk/sk with a sparse keys-only GSI on ``seen_hour`` (the
template's table), and a boto3 client at that endpoint. Items are built to an exact size
with ``item_size``, so each test knows the units AWS would bill:
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from local.faults import TableFaults
from local.meter import PUMP_HEADER, AwsMeter, item_size

TABLE = "meter-test-table"
INDEX = "by_seen_hour"
KB = 1024


@dataclass
class Endpoint:
    meter: AwsMeter
    faults: TableFaults
    dynamodb: Any  # a boto3 DynamoDB client at the metered moto server
    url: str

    def client(self, **config: Any) -> Any:
        return _client(self.url, **config)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _client(url: str, **config: Any) -> Any:
    return boto3.client(
        "dynamodb",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(**config),
    )


@pytest.fixture(scope="module")
def endpoint() -> Iterator[Endpoint]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
    server.start()
    try:
        meter, faults = AwsMeter(), TableFaults()
        assert server._server is not None
        # As local/stack.py layers them, except the fault injector sits *inside* the meter
        # here, so a throttled answer reaches the meter (a 400 DynamoDB itself would send).
        server._server.app = meter.wrap(faults.wrap(server._server.app))
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        dynamodb = _client(url)
        # As local/resources.py creates the template's table (template.yaml: Table).
        dynamodb.create_table(
            TableName=TABLE,
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
                {"AttributeName": "seen_hour", "AttributeType": "S"},
            ],
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": INDEX,
                    "KeySchema": [{"AttributeName": "seen_hour", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "KEYS_ONLY"},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        yield Endpoint(meter, faults, dynamodb, url)
    finally:
        server.stop()


@pytest.fixture
def aws(endpoint: Endpoint) -> Endpoint:
    endpoint.meter.clear()
    endpoint.faults.clear()
    return endpoint


# ---- items of an exact size ------------------------------------------------------------


def _item(size: int, pk: str | None = None, sk: str = "item", **extra: str) -> dict[str, Any]:
    """An item of exactly ``size`` bytes as DynamoDB counts them, padded with ``body``."""
    item: dict[str, Any] = {
        "pk": {"S": pk or uuid.uuid4().hex},
        "sk": {"S": sk},
        **{name: {"S": value} for name, value in extra.items()},
        "body": {"S": ""},
    }
    missing = size - item_size(item)
    assert missing >= 0, f"an item of {size} bytes cannot hold {extra}"
    item["body"] = {"S": "x" * missing}
    assert item_size(item) == size
    return item


def _key(item: dict[str, Any]) -> dict[str, Any]:
    return {"pk": item["pk"], "sk": item["sk"]}


def _put(aws: Endpoint, item: dict[str, Any]) -> None:
    aws.dynamodb.put_item(TableName=TABLE, Item=item)


def _resize(aws: Endpoint, item: dict[str, Any], size: int) -> None:
    """An UpdateItem that pads the item to ``size`` bytes."""
    target = _item(size, pk=item["pk"]["S"], sk=item["sk"]["S"], **_strings(item, "body"))
    aws.dynamodb.update_item(
        TableName=TABLE,
        Key=_key(item),
        UpdateExpression="SET body = :body",
        ExpressionAttributeValues={":body": target["body"]},
    )


def _strings(item: dict[str, Any], *leaving: str) -> dict[str, str]:
    """The item's attributes other than its key (and ``leaving``), as ``_item``'s extras."""
    return {
        name: value["S"]
        for name, value in item.items()
        if name not in ("pk", "sk", *leaving) and "S" in value
    }


def _units(aws: Endpoint) -> dict[str, Any]:
    dynamodb: dict[str, Any] = aws.meter.snapshot()["dynamodb"]
    return dynamodb


# ---- writes ------------------------------------------------------------------------------


def test_a_300_byte_put_costs_one_write_unit(aws: Endpoint) -> None:
    # given
    item = _item(300)
    # when
    _put(aws, item)
    # then
    assert _units(aws)["writeUnits"] == 1


def test_a_1500_byte_put_costs_two_write_units(aws: Endpoint) -> None:
    """One unit per started KB."""
    # given
    item = _item(1500)
    # when
    _put(aws, item)
    # then
    assert _units(aws)["writeUnits"] == 2


def test_an_update_growing_an_item_past_1kb_costs_on_the_new_size(aws: Endpoint) -> None:
    """900 -> 1,100 bytes: the larger of before and after is 1,100, two units."""
    # given
    item = _item(900)
    _put(aws, item)
    aws.meter.clear()
    # when
    _resize(aws, item, 1100)
    # then
    assert _units(aws)["writeUnits"] == 2


def test_an_update_shrinking_an_item_costs_on_the_old_size(aws: Endpoint) -> None:
    """1,100 -> 900 bytes: still the larger, the old 1,100, two units (not one)."""
    # given
    item = _item(1100)
    _put(aws, item)
    aws.meter.clear()
    # when
    _resize(aws, item, 900)
    # then
    stored = aws.dynamodb.get_item(TableName=TABLE, Key=_key(item), ConsistentRead=True)["Item"]
    assert item_size(stored) == 900
    assert _units(aws)["writeUnits"] == 2


def test_a_delete_costs_the_deleted_items_size(aws: Endpoint) -> None:
    # given
    item = _item(2500)
    _put(aws, item)
    aws.meter.clear()
    # when
    aws.dynamodb.delete_item(TableName=TABLE, Key=_key(item))
    # then
    assert _units(aws)["writeUnits"] == 3


def test_a_refused_conditional_put_costs_the_existing_items_size(aws: Endpoint) -> None:
    """attribute_not_exists on a 2.5 KB item: refused, and billed 3 units for that item."""
    # given
    existing = _item(2560)
    _put(aws, existing)
    aws.meter.clear()
    # when
    with pytest.raises(ClientError) as refused:
        aws.dynamodb.put_item(
            TableName=TABLE,
            Item=_item(300, pk=existing["pk"]["S"]),
            ConditionExpression="attribute_not_exists(pk)",
        )
    # then
    assert refused.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    units = _units(aws)
    assert (units["writeUnits"], units["refusedWrites"]) == (3, 1)


def test_a_refused_conditional_put_on_a_missing_item_costs_at_least_one_unit(
    aws: Endpoint,
) -> None:
    """attribute_exists on a key with no item: refused, billed the minimum of 1."""
    # given
    item = _item(300)
    # when
    with pytest.raises(ClientError):
        aws.dynamodb.put_item(
            TableName=TABLE, Item=item, ConditionExpression="attribute_exists(pk)"
        )
    # then
    units = _units(aws)
    assert (units["writeUnits"], units["refusedWrites"]) == (1, 1)


def test_puts_in_a_transaction_cost_twice_their_size(aws: Endpoint) -> None:
    """A 300-byte put (1 unit) and a 1,500-byte put (2 units), in a transaction: 2 + 4."""
    # given
    small, large = _item(300), _item(1500)
    # when
    aws.dynamodb.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": TABLE, "Item": small}},
            {"Put": {"TableName": TABLE, "Item": large}},
        ]
    )
    # then
    assert _units(aws)["writeUnits"] == 6


def test_a_throttled_write_costs_nothing(aws: Endpoint) -> None:
    """A 400 that is not a refused condition (ProvisionedThroughputExceeded) is not billed."""
    # given
    aws.faults.set("throttle", 1)
    once = aws.client(retries={"total_max_attempts": 1})
    # when
    with pytest.raises(ClientError) as throttled:
        once.put_item(TableName=TABLE, Item=_item(1500))
    # then
    assert throttled.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
    assert aws.meter.snapshot()["requests"] == {"functions": {"dynamodb": {"PutItem": 1}}}
    units = _units(aws)
    assert (units["writeUnits"], units["refusedWrites"]) == (0, 0)


def test_write_units_are_attributed_to_the_items_kind(aws: Endpoint) -> None:
    # given
    event, profile = _item(1500, kind="event"), _item(300, kind="profile")
    # when
    _put(aws, event)
    _put(aws, profile)
    # then
    by_kind = _units(aws)["writeUnitsByKind"]
    assert (by_kind["event"], by_kind["profile"]) == (2, 1)
    assert sum(by_kind.values()) == _units(aws)["writeUnits"]


# ---- the sparse keys-only index ----------------------------------------------------------


def _set_seen_hour(aws: Endpoint, item: dict[str, Any], hour: str) -> None:
    aws.dynamodb.update_item(
        TableName=TABLE,
        Key=_key(item),
        UpdateExpression="SET seen_hour = :hour",
        ExpressionAttributeValues={":hour": {"S": hour}},
    )


def test_setting_the_index_key_on_an_item_without_one_adds_one_index_unit(
    aws: Endpoint,
) -> None:
    """The sparse index gains an entry: one put into the index."""
    # given
    item = _item(300)
    _put(aws, item)
    aws.meter.clear()
    # when
    _set_seen_hour(aws, item, "2024-05-01T10")
    # then
    units = _units(aws)
    assert (units["indexWriteUnits"], units["writeUnits"]) == (1, 1 + 1)


def test_changing_the_index_key_adds_two_index_units(aws: Endpoint) -> None:
    """The entry moves: a delete from the index and a put into it."""
    # given
    item = _item(300, seen_hour="2024-05-01T10")
    _put(aws, item)
    aws.meter.clear()
    # when
    _set_seen_hour(aws, item, "2024-05-01T11")
    # then
    units = _units(aws)
    assert (units["indexWriteUnits"], units["writeUnits"]) == (2, 1 + 2)


def test_leaving_the_index_key_unchanged_adds_no_index_unit(aws: Endpoint) -> None:
    """Keys only: another attribute changing does not touch the index."""
    # given
    item = _item(300, seen_hour="2024-05-01T10")
    _put(aws, item)
    aws.meter.clear()
    # when
    _resize(aws, item, 400)
    # then
    units = _units(aws)
    assert (units["indexWriteUnits"], units["writeUnits"]) == (0, 1)


# ---- reads -------------------------------------------------------------------------------


def _get(aws: Endpoint, key: dict[str, Any], consistent: bool) -> dict[str, Any]:
    answer: dict[str, Any] = aws.dynamodb.get_item(
        TableName=TABLE, Key=key, ConsistentRead=consistent
    )
    return answer


def test_a_strongly_consistent_get_of_a_5kb_item_costs_two_read_units(aws: Endpoint) -> None:
    """One unit per started 4 KB."""
    # given
    item = _item(5 * KB)
    _put(aws, item)
    aws.meter.clear()
    # when
    _get(aws, _key(item), consistent=True)
    # then
    assert _units(aws)["readUnits"] == 2


def test_an_eventually_consistent_get_of_a_5kb_item_costs_one_read_unit(aws: Endpoint) -> None:
    """Half of a strongly consistent read."""
    # given
    item = _item(5 * KB)
    _put(aws, item)
    aws.meter.clear()
    # when
    _get(aws, _key(item), consistent=False)
    # then
    assert _units(aws)["readUnits"] == 1


def test_a_strongly_consistent_get_of_a_missing_key_costs_one_read_unit(aws: Endpoint) -> None:
    # given
    key = _key(_item(300))
    # when
    answer = _get(aws, key, consistent=True)
    # then
    assert "Item" not in answer
    assert _units(aws)["readUnits"] == 1


def test_an_eventually_consistent_get_of_a_missing_key_costs_half_a_unit(
    aws: Endpoint,
) -> None:
    # given
    key = _key(_item(300))
    # when
    _get(aws, key, consistent=False)
    # then
    assert _units(aws)["readUnits"] == 0.5


def test_a_query_is_priced_on_the_items_it_reads_before_its_filter(aws: Endpoint) -> None:
    """Three 2 KB items read (6 KB, two units), none returned by the filter."""
    # given
    person = uuid.uuid4().hex
    for number in range(3):
        _put(aws, _item(2 * KB, pk=person, sk=f"item-{number}", kind="event"))
    aws.meter.clear()
    # when
    answer = aws.dynamodb.query(
        TableName=TABLE,
        KeyConditionExpression="pk = :pk",
        FilterExpression="#kind = :kind",
        ExpressionAttributeNames={"#kind": "kind"},
        ExpressionAttributeValues={":pk": {"S": person}, ":kind": {"S": "profile"}},
        ConsistentRead=True,
    )
    # then
    assert answer["Count"] == 0
    assert _units(aws)["readUnits"] == 2


def test_a_batch_get_is_priced_per_item_found_or_missing(aws: Endpoint) -> None:
    """A 5 KB item (2), a 300-byte item (1) and a missing key (1), strongly consistent."""
    # given
    large, small = _item(5 * KB), _item(300)
    _put(aws, large)
    _put(aws, small)
    missing = _key(_item(300))
    aws.meter.clear()
    # when
    answer = aws.dynamodb.batch_get_item(
        RequestItems={TABLE: {"Keys": [_key(large), _key(small), missing], "ConsistentRead": True}}
    )
    # then
    assert len(answer["Responses"][TABLE]) == 2
    assert _units(aws)["readUnits"] == 4


# ---- who is billed, and what /_local/meter shows -----------------------------------------


def test_the_platforms_own_calls_are_counted_but_not_priced(aws: Endpoint) -> None:
    """Requests with the pump header are the stack's (Lambda's pollers), not Nudge's."""
    # given
    platform = aws.client()

    def mark(request: Any, **_: Any) -> None:
        request.headers[PUMP_HEADER] = "1"

    platform.meta.events.register("before-sign.dynamodb.*", mark)
    item = _item(1500)
    # when
    platform.put_item(TableName=TABLE, Item=item)
    platform.get_item(TableName=TABLE, Key=_key(item), ConsistentRead=True)
    # then
    snapshot = aws.meter.snapshot()
    assert snapshot["requests"] == {"platform": {"dynamodb": {"GetItem": 1, "PutItem": 1}}}
    units = snapshot["dynamodb"]
    assert (units["writeUnits"], units["readUnits"]) == (0, 0)


def test_function_calls_are_counted_by_service_and_operation(aws: Endpoint) -> None:
    # given
    item = _item(300)
    # when
    _put(aws, item)
    _get(aws, _key(item), consistent=True)
    _get(aws, _key(item), consistent=True)
    # then
    assert aws.meter.snapshot()["requests"] == {
        "functions": {"dynamodb": {"GetItem": 2, "PutItem": 1}}
    }


def test_the_snapshot_has_what_local_meter_shows() -> None:
    """GET /_local/meter answers AwsMeter.snapshot() (local/control.py)."""
    # given
    meter = AwsMeter()
    # when
    snapshot = meter.snapshot()
    # then
    assert {
        "requests",
        "dynamodb",
        "lambda",
        "apiGatewayRequests",
        "schedulerInvocations",
    } <= snapshot.keys()
