"""The send queue: fires handed to delivery."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nudge.adapters.aws_errors import aws_call
from nudge.domain.messages import FireMessage
from nudge.service.ports import MAX_DELAY

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

__all__ = ["MAX_DELAY", "DeadLetters", "SendQueue", "TrackRetryQueue"]


class SendQueue:
    def __init__(self, client: SQSClient, url: str) -> None:
        self._client = client
        self._url = url

    def send(self, fire: FireMessage, delay_seconds: int = 0) -> None:
        """Queues the fire; with a delay (at most MAX_DELAY), SQS hands it out that much later."""
        if not 0 <= delay_seconds <= MAX_DELAY:
            raise ValueError(f"an SQS delay is 0 to {MAX_DELAY} seconds, not {delay_seconds}")
        with aws_call("queueing a fire"):
            self._client.send_message(
                QueueUrl=self._url,
                MessageBody=fire.to_json(),
                MessageAttributes={"fire_id": {"DataType": "String", "StringValue": fire.fire_id}},
                DelaySeconds=delay_seconds,
            )


class DeadLetters:
    """Messages that can never be delivered, kept whole with the reason beside them."""

    def __init__(self, client: SQSClient, url: str) -> None:
        self._client = client
        self._url = url

    def send(self, body: str, reason: str) -> None:
        with aws_call("dead-lettering a fire"):
            self._client.send_message(
                QueueUrl=self._url,
                MessageBody=body,
                MessageAttributes={
                    "reason": {"DataType": "String", "StringValue": reason[:1000] or "?"}
                },
            )


class TrackRetryQueue:
    """Link events (opens, clicks) Track could not store: kept here and stored later by
    Track's queue consumer, rather than lost with the pixel already served."""

    def __init__(self, client: SQSClient, url: str) -> None:
        self._client = client
        self._url = url

    def send(self, body: str) -> None:
        with aws_call("queueing a link event to store later"):
            self._client.send_message(QueueUrl=self._url, MessageBody=body)
