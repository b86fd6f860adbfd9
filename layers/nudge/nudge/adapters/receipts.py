"""SES's own word that it accepted an email: the receipt that closes the crash window.

Send marks a fire sent right after SES answers. If the function dies between the two,
the fire stays claimed and the redelivery cannot tell "SES never got it" from "SES sent
it". SES publishes a Send event for every accepted message (through the configuration
set's EventBridge destination); Feedback records it here, keyed by the fire id the
message carries in its ``X-Nudge-Fire`` header, and the redelivery looks here first.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Final, Literal

from nudge.adapters import keys
from nudge.adapters.aws_errors import aws_call
from nudge.adapters.store import to_attributes
from nudge.domain.fire_marks import FIRE_HEADER, FIRE_TAG
from nudge.domain.timefmt import iso
from nudge.service.delivery_ports import Receipt

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient

__all__ = ["FIRE_HEADER", "FIRE_TAG", "RECEIPT_TTL", "FailedReceipts", "Receipt", "SendReceipts"]


# Longer than any redelivery of the fire can come (the contact record remembers 3 days).
RECEIPT_TTL = timedelta(days=3)


class SendReceipts:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    def record(self, fire_id: str, message_id: str, at: datetime) -> None:
        """Idempotent: SES may publish an event twice, and the second write is the same."""
        item = {
            **keys.receipt_key(fire_id),
            "kind": keys.RECEIPT_KIND,
            "fire_id": fire_id,
            "message_id": message_id,
            "at": iso(at),
            "expires_at": int((at + RECEIPT_TTL).timestamp()),
        }
        with aws_call("writing a send receipt"):
            self._client.put_item(TableName=self._table, Item=to_attributes(item))

    def find(self, fire_id: str) -> Receipt | None:
        with aws_call("reading a send receipt"):
            response = self._client.get_item(
                TableName=self._table,
                Key=to_attributes(keys.receipt_key(fire_id)),
                ConsistentRead=True,
            )
        item = response.get("Item")
        if item is None:
            return None
        return Receipt(fire_id, item["message_id"]["S"], item["at"]["S"])


# Every message the queue holds: ready, being read (a redrive in progress) or delayed.
_Held = Literal[
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
]
_HELD: Final[tuple[_Held, ...]] = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)


class FailedReceipts:
    """Feedback's failure queue, counted: SES events whose recording failed for good wait
    there until an operator redrives them (SQS's counts are approximate, and an empty queue
    reads as 0 within about a minute of its last message leaving)."""

    def __init__(self, client: SQSClient, queue_url: str) -> None:
        self._client = client
        self._url = queue_url

    def waiting(self) -> int:
        with aws_call("counting the receipts Feedback could not record"):
            attributes = self._client.get_queue_attributes(
                QueueUrl=self._url, AttributeNames=list(_HELD)
            )["Attributes"]
        return sum(int(attributes.get(name, "0")) for name in _HELD)
