"""The audience's engagement by hour of the week, in one table item (keys.audience_hours_key).

Evaluate adds what its batches saw in one UpdateItem every few minutes per process
(``AudienceTally`` in service/evaluate.py), not per event: the counts are a prior for the
best hour, where a few minutes' lag or a lost buffer on a crash changes nothing that
matters, and a write per batch would cost more than the feature. Send reads the item at most
once an hour per process.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from nudge.adapters import keys
from nudge.adapters.aws_errors import aws_call
from nudge.adapters.store import from_attributes, to_attributes

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = ["AudienceStore"]

READ_EVERY = timedelta(hours=1)


class AudienceStore:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name
        self._read: tuple[datetime, dict[int, int]] | None = None

    def add(self, counts: Mapping[int, int]) -> None:
        adds = {hour: count for hour, count in counts.items() if count > 0 and 0 <= hour < 168}
        if not adds:
            return
        with aws_call("adding to the audience's engagement hours"):
            self._client.update_item(
                TableName=self._table,
                Key=to_attributes(keys.audience_hours_key()),
                UpdateExpression="SET kind = :kind ADD "
                + ", ".join(f"h{hour} :h{hour}" for hour in sorted(adds)),
                ExpressionAttributeValues={
                    ":kind": {"S": keys.AUDIENCE_KIND},
                    **{f":h{hour}": {"N": str(count)} for hour, count in adds.items()},
                },
            )

    def hours(self, now: datetime) -> dict[int, int]:
        if self._read is not None and now - self._read[0] < READ_EVERY:
            return self._read[1]
        with aws_call("reading the audience's engagement hours"):
            response = self._client.get_item(
                TableName=self._table, Key=to_attributes(keys.audience_hours_key())
            )
        item = from_attributes(response.get("Item", {}))
        counts = {
            int(name[1:]): int(value)
            for name, value in item.items()
            if name.startswith("h") and name[1:].isdigit()
        }
        self._read = (now, counts)
        return counts
