"""The suppression list: addresses that asked never to be written to again, per channel."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from nudge.adapters import keys
from nudge.adapters.aws_errors import aws_call
from nudge.adapters.store import put_if, to_attributes
from nudge.domain.timefmt import iso

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = ["SuppressionStore"]


class SuppressionStore:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def suppress(self, channel: str, address: str, reason: str, at: datetime) -> bool:
        """Suppress an address; False when it already was (the first reason and time stay)."""
        item = {
            **keys.suppression_key(channel, address),
            "kind": keys.SUPPRESSION_KIND,
            "channel": channel,
            "address": address.strip().lower(),
            "reason": reason,
            "at": iso(at),
        }
        return put_if(self._client, self._table, item, "attribute_not_exists(pk)")

    def is_suppressed(self, channel: str, address: str) -> bool:
        with aws_call("reading the suppression list"):
            response = self._client.get_item(
                TableName=self._table,
                Key=to_attributes(keys.suppression_key(channel, address)),
                ConsistentRead=True,
                ProjectionExpression="pk",
            )
        return "Item" in response
