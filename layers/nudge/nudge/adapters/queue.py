"""The send queue: fires handed to delivery."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

__all__ = ["DeadLetters", "SendQueue"]


class SendQueue:
    def __init__(self, client: SQSClient, url: str) -> None:
        self._client = client
        self._url = url

    def send(self, fire: dict[str, Any]) -> None:
        self._client.send_message(
            QueueUrl=self._url,
            MessageBody=json.dumps(fire, ensure_ascii=False, separators=(",", ":"), default=str),
            MessageAttributes={
                "fire_id": {"DataType": "String", "StringValue": str(fire["fireId"])}
            },
        )


class DeadLetters:
    """Messages that can never be delivered, kept whole with the reason beside them."""

    def __init__(self, client: SQSClient, url: str) -> None:
        self._client = client
        self._url = url

    def send(self, body: str, reason: str) -> None:
        self._client.send_message(
            QueueUrl=self._url,
            MessageBody=body,
            MessageAttributes={
                "reason": {"DataType": "String", "StringValue": reason[:1000] or "?"}
            },
        )
