"""The suppression list: addresses that asked never to be written to again, per channel."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from nudge.adapters import keys
from nudge.adapters.store import StoreUnavailable, put_if, to_attributes
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
        try:
            return put_if(self._client, self._table, item, "attribute_not_exists(pk)")
        except (ClientError, BotoCoreError) as error:
            raise StoreUnavailable(f"suppression not written: {error}") from None

    def is_suppressed(self, channel: str, address: str) -> bool:
        try:
            response = self._client.get_item(
                TableName=self._table,
                Key=to_attributes(keys.suppression_key(channel, address)),
                ConsistentRead=True,
                ProjectionExpression="pk",
            )
        except (ClientError, BotoCoreError) as error:
            raise StoreUnavailable(f"suppression list unreadable: {error}") from None
        return "Item" in response
