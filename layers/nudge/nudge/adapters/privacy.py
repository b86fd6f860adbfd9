"""A person's partitions read and erased whole, for export and "forget me" requests."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from nudge.adapters import keys
from nudge.adapters.aws_errors import aws_call
from nudge.adapters.store import from_attributes, readable_events, to_attributes
from nudge.domain.person import PersonId
from nudge.domain.timefmt import iso
from nudge.service.ports import Unavailable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = ["PersonItems"]

_DELETES_PER_REQUEST = 25  # BatchWriteItem's limit
_UNPROCESSED_RETRIES = 6


class PersonItems:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def items(self, person: PersonId) -> list[dict[str, Any]]:
        paginator = self._client.get_paginator("query")
        found: list[dict[str, Any]] = []
        with aws_call("reading a person's items"):
            for page in paginator.paginate(
                TableName=self._table,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": keys.person_pk(person)}},
                ConsistentRead=True,
            ):
                for item in page.get("Items", []):
                    found += readable_events(from_attributes(item))
        return found

    def delete(self, person: PersonId, sort_keys: Sequence[str]) -> None:
        pk = keys.person_pk(person)
        # An item holding several events is listed once per event; BatchWriteItem refuses a
        # key twice in one request.
        sort_keys = list(dict.fromkeys(sort_keys))
        for start in range(0, len(sort_keys), _DELETES_PER_REQUEST):
            chunk = sort_keys[start : start + _DELETES_PER_REQUEST]
            self._delete_batch(
                [{"DeleteRequest": {"Key": to_attributes({"pk": pk, "sk": sk})}} for sk in chunk]
            )

    def _delete_batch(self, requests: list[dict[str, Any]]) -> None:
        pending: list[Any] = requests
        for attempt in range(_UNPROCESSED_RETRIES):
            with aws_call("erasing a person's items"):
                answer = self._client.batch_write_item(RequestItems={self._table: pending})
            pending = list(answer.get("UnprocessedItems", {}).get(self._table, []))
            if not pending:
                return
            time.sleep(0.05 * 2**attempt)  # DynamoDB asks to back off before retrying
        raise Unavailable(f"erasing a person's items: {len(pending)} deletes kept unprocessed")

    def tombstone(self, person: PersonId, at: datetime) -> None:
        item = {**keys.tombstone_key(person), "kind": keys.TOMBSTONE_KIND, "at": iso(at)}
        with aws_call("marking a person forgotten"):
            self._client.put_item(TableName=self._table, Item=to_attributes(item))
