"""In-app messages and open pages in the table, and frames posted through API Gateway's
Management API.

Items (keys in ``nudge.adapters.keys``), both under the person's partition and both
with a TTL, so neither outlives its use:
- ``M#<fireId>``: an in-app message; ``expires_at`` is the trigger's expiry, ``shown_at``
  is set by the page that took it (the item stays until its TTL, so a redelivered fire
  finds it and is not shown twice).
- ``W#<connectionId>``: an open page; ``expires_at`` is API Gateway's two-hour limit.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from nudge.adapters import keys
from nudge.adapters.aws_errors import aws_call
from nudge.adapters.store import from_attributes, put_if, to_attributes
from nudge.domain.in_app import InAppMessage
from nudge.domain.messages import InAppDisplay
from nudge.domain.person import PersonId
from nudge.domain.timefmt import iso
from nudge.service.ports import Conflict, Missing

if TYPE_CHECKING:
    from mypy_boto3_apigatewaymanagementapi import ApiGatewayManagementApiClient
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = ["InAppStore", "ManagementApiSockets", "management_endpoint"]


class InAppStore:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def keep(self, person: PersonId, message: InAppMessage) -> bool:
        item = {
            **keys.in_app_key(person, message.fire_id),
            "kind": keys.IN_APP_KIND,
            "trigger": message.trigger,
            "html": message.html,
            "display": message.display.model_dump_json(exclude_none=True),  # JSON: floats
            "expires_at": int(message.expires_at.timestamp()),
        }
        return put_if(self._client, self._table, item, "attribute_not_exists(pk)")

    def pending(self, persons: Sequence[PersonId], now: datetime) -> list[InAppMessage]:
        found = []
        for person in persons:
            for item in self._items(person, keys.IN_APP_SK_PREFIX, now):
                if "shown_at" not in item:  # a page took it: it is kept, not waiting
                    found.append(_message(item))
        return sorted(found, key=lambda message: message.expires_at)

    def take(self, persons: Sequence[PersonId], fire_id: str, now: datetime) -> bool:
        for person in persons:
            try:
                with aws_call("taking an in-app message"):
                    # Marked, not deleted: the item stays until its TTL, so a redelivered
                    # fire finds it kept (and shown) and is not put before a page again.
                    self._client.update_item(
                        TableName=self._table,
                        Key=to_attributes(keys.in_app_key(person, fire_id)),
                        UpdateExpression="SET shown_at = :now",
                        ConditionExpression=(
                            "attribute_exists(pk) AND attribute_not_exists(shown_at)"
                            " AND expires_at > :now"
                        ),
                        ExpressionAttributeValues={":now": {"N": str(int(now.timestamp()))}},
                    )
            except Conflict:
                continue  # not this person's, shown already, or expired
            return True
        return False

    def connect(self, person: PersonId, connection_id: str, now: datetime, until: datetime) -> None:
        item = {
            **keys.connection_key(person, connection_id),
            "kind": keys.CONNECTION_KIND,
            "connected_at": iso(now),
            "expires_at": int(until.timestamp()),
        }
        with aws_call("recording a WebSocket connection"):
            self._client.put_item(TableName=self._table, Item=to_attributes(item))

    def disconnect(self, person: PersonId, connection_id: str) -> None:
        with aws_call("forgetting a WebSocket connection"):
            self._client.delete_item(
                TableName=self._table,
                Key=to_attributes(keys.connection_key(person, connection_id)),
            )

    def connections(self, person: PersonId, now: datetime) -> list[str]:
        prefix = keys.CONNECTION_SK_PREFIX
        return [item["sk"].removeprefix(prefix) for item in self._items(person, prefix, now)]

    def _items(self, person: PersonId, prefix: str, now: datetime) -> Iterator[dict[str, Any]]:
        """The person's items of one kind that have not expired (TTL deletes lag)."""
        paginator = self._client.get_paginator("query")
        pages = paginator.paginate(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            FilterExpression="expires_at > :now",
            ExpressionAttributeValues={
                ":pk": {"S": keys.person_pk(person)},
                ":prefix": {"S": prefix},
                ":now": {"N": str(int(now.timestamp()))},
            },
            ConsistentRead=True,
        )
        with aws_call("reading in-app items"):
            for page in pages:
                for raw in page.get("Items", []):
                    yield from_attributes(raw)


def _message(item: dict[str, Any]) -> InAppMessage:
    return InAppMessage(
        fire_id=str(item["sk"]).removeprefix(keys.IN_APP_SK_PREFIX),
        trigger=str(item["trigger"]),
        html=str(item["html"]),
        display=InAppDisplay.model_validate_json(str(item.get("display") or "{}")),
        expires_at=_from_epoch(int(item["expires_at"])),
    )


def _from_epoch(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def management_endpoint(api_endpoint: str) -> str:
    """The Management API's URL for a WebSocket API: its own host and stage over HTTPS
    (``wss://id.execute-api.region.amazonaws.com/live`` -> ``https://...``), or HTTP for
    an endpoint that is plain ``ws://`` (a local one)."""
    for socket_scheme, http_scheme in (("wss://", "https://"), ("ws://", "http://")):
        if api_endpoint.startswith(socket_scheme):
            return http_scheme + api_endpoint.removeprefix(socket_scheme)
    return api_endpoint


class ManagementApiSockets:
    def __init__(self, client: ApiGatewayManagementApiClient) -> None:
        self._client = client

    def post(self, connection_id: str, frame: str) -> bool:
        try:
            with aws_call("posting to a WebSocket connection"):
                self._client.post_to_connection(
                    ConnectionId=connection_id, Data=frame.encode("utf-8")
                )
        except Missing:
            return False  # GoneException: the page is closed
        return True
