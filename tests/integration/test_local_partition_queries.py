"""The local stack's moto Query reads only the partition asked for (local/partitions.py),
and answers exactly as moto's whole-table Query does."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import moto.dynamodb.models.table as table_models
import pytest
from moto import mock_aws

from local.partitions import queries_read_one_partition

TABLE = "partitions"


@pytest.fixture(autouse=True)
def _moto_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with moto's own Query, and leaves it so for the tests after it."""
    table = table_models.Table
    monkeypatch.setattr(table, "query", table.query)
    monkeypatch.setattr(table, "all_items", table.all_items)
    monkeypatch.setattr(table, "_reads_one_partition", False, raising=False)


@pytest.fixture
def client() -> Iterator[Any]:
    """A table of 30 partitions of 20 items each, and an index on ``kind``."""
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        dynamodb.create_table(
            TableName=TABLE,
            AttributeDefinitions=[
                {"AttributeName": name, "AttributeType": "S"} for name in ("pk", "sk", "kind")
            ],
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "by_kind",
                    "KeySchema": [{"AttributeName": "kind", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "KEYS_ONLY"},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        for person in range(30):
            for n in reversed(range(20)):  # written out of order: the Query sorts
                item = {
                    "pk": {"S": f"P#u:{person:02d}"},
                    "sk": {"S": f"E#{n:03d}"},
                    "kind": {"S": "event" if n % 2 else "decision"},
                }
                dynamodb.put_item(TableName=TABLE, Item=item)
        yield dynamodb


def _pages(client: Any, **params: Any) -> list[list[dict[str, Any]]]:
    pages = client.get_paginator("query").paginate(TableName=TABLE, **params)
    return [page["Items"] for page in pages]


QUERIES: list[dict[str, Any]] = [
    {
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": "P#u:07"}},
    },
    {
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :e)",
        "ExpressionAttributeValues": {":pk": {"S": "P#u:07"}, ":e": {"S": "E#01"}},
        "ScanIndexForward": False,
    },
    {
        "KeyConditionExpression": "pk = :pk AND sk > :from",
        "FilterExpression": "kind = :kind",
        "ExpressionAttributeValues": {
            ":pk": {"S": "P#u:07"},
            ":from": {"S": "E#004"},
            ":kind": {"S": "event"},
        },
        "PaginationConfig": {"PageSize": 3},
    },
    {
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": {"S": "P#u:99"}},
    },
    {
        "IndexName": "by_kind",
        "KeyConditionExpression": "kind = :kind",
        "ExpressionAttributeValues": {":kind": {"S": "decision"}},
    },
]


@pytest.mark.parametrize("params", QUERIES)
def test_a_query_answers_as_moto_does_page_by_page(client: Any, params: dict[str, Any]) -> None:
    """Every page of a Query (forward or back, key and filter conditions, a missing
    partition, an index) is the one moto's own Query gives."""
    # given
    whole_table = _pages(client, **params)

    # when
    queries_read_one_partition()
    one_partition = _pages(client, **params)

    # then
    assert one_partition == whole_table


def test_a_query_of_a_partition_does_not_list_the_whole_table(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Query of one person's partition is answered without listing the table's other
    partitions, so it costs the same however many people the table holds."""
    # given
    queries_read_one_partition()
    listed: list[int] = []
    patched = table_models.Table.all_items

    def counted(self: Any) -> list[Any]:
        found: list[Any] = patched(self)
        listed.append(len(found))
        return found

    monkeypatch.setattr(table_models.Table, "all_items", counted)

    # when
    items = _pages(client, **QUERIES[0])

    # then
    assert sum(len(page) for page in items) == 20
    assert listed == [20]
