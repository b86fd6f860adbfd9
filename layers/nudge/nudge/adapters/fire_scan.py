"""Every fire in the table, whoever it was for: a Scan, for the operator's views only.

A Scan reads the whole table (every event, every profile), so nothing on a function's
path uses it; the local stack's outbox and ``/_local/fires`` do, on a table of a few
thousand items. Per-person reads stay in ``EngineStore.fires``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nudge.adapters import keys
from nudge.adapters.aws_errors import aws_call
from nudge.adapters.packing import fire_record
from nudge.adapters.store import from_attributes

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = ["FireScan"]


class FireScan:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def all_fires(self) -> list[dict[str, Any]]:
        """Every fire record, oldest first."""
        fires: list[dict[str, Any]] = []
        paginator = self._client.get_paginator("scan")
        pages = paginator.paginate(
            TableName=self._table,
            FilterExpression="kind = :fire",
            ExpressionAttributeValues={":fire": {"S": keys.FIRE_KIND}},
        )
        with aws_call("scanning for fires"):
            for page in pages:
                fires += [fire_record(from_attributes(item)) for item in page.get("Items", [])]
        return sorted(fires, key=lambda fire: str(fire.get("firedAt")))
