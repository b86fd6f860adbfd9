"""Event source mappings, as Lambda runs them: stream and queue pollers.

Each poller's ``poll`` does one round and returns how much work it did, so the stack
can keep polling until a whole round does nothing (that is what "drained" means).
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, cast

from moto.events.models import EventPattern

from local.clock import VirtualClock
from local.faults import QueueFaults
from local.runtime import FunctionPool, Invocation
from local.template import ACCOUNT, QueueSource, StreamSource

__all__ = [
    "QueuePoller",
    "StreamPoller",
    "lambda_stream_record",
    "queues_on_clock",
    "streams_on_clock",
]

log = logging.getLogger("nudge.local")
STREAM_RETENTION = timedelta(hours=24)


def _matches(patterns: list[EventPattern], record: dict[str, Any]) -> bool:
    """Lambda's filter criteria: no filter passes everything, else any pattern may match."""
    return not patterns or any(pattern.matches_event(record) for pattern in patterns)  # type: ignore[arg-type]


@dataclass
class _ShardState:
    # Where the next read starts: after the last record done with, or at a failed one.
    sequence: str | None = None
    position: str = "AFTER_SEQUENCE_NUMBER"
    attempts: int = 0  # failed deliveries of the batch that starts there

    def done_with(self, sequence: str) -> None:
        self.sequence, self.position, self.attempts = sequence, "AFTER_SEQUENCE_NUMBER", 0

    def retry_at(self, sequence: str, same_batch: bool) -> None:
        self.attempts = self.attempts + 1 if same_batch else 1
        self.sequence, self.position = sequence, "AT_SEQUENCE_NUMBER"


@dataclass
class StreamPoller:
    """A DynamoDB stream feeding one function, with Lambda's retry semantics:

    - a batch is delivered until it succeeds, at most MaximumRetryAttempts retries;
    - with ReportBatchItemFailures the function names the first record that failed,
      and delivery resumes from it (records before it are done);
    - a batch that exhausts its retries goes to the OnFailure queue and is skipped;
    - with BisectBatchOnFunctionError a failing batch is retried in halves.
    """

    function: FunctionPool
    source: StreamSource
    streams: Any
    dynamodb: Any
    sqs: Any
    table_name: str
    failure_queue_url: str | None
    region: str
    stream_arn: str = ""
    shards: dict[str, _ShardState] = field(default_factory=dict)
    patterns: list[EventPattern] = field(default_factory=list)
    _trimmed: int = 0  # the sequence number up to which records' images were let go

    def __post_init__(self) -> None:
        self.patterns = [EventPattern.load(json.dumps(pattern)) for pattern in self.source.filters]
        self.attach()

    def attach(self) -> None:
        """(Re)discover the table's current stream, e.g. after the table was recreated."""
        self.stream_arn = self.dynamodb.describe_table(TableName=self.table_name)["Table"][
            "LatestStreamArn"
        ]
        self.shards = {}
        self._trimmed = 0

    def poll(self) -> int:
        description = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]
        work = 0
        for shard in description["Shards"]:
            state = self.shards.setdefault(shard["ShardId"], _ShardState())
            work += self._poll_shard(shard["ShardId"], state)
        self._trim()
        return work

    def _trim(self) -> None:
        """Lets go of what DynamoDB Streams would no longer hold: records older than 24
        hours ("data in a stream is retained for 24 hours",
        https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Streams.html).
        moto keeps every record, its old and new images included, for as long as it runs,
        which grows without bound on a long run. Once a record is past retention and this
        poller is done with it (the template has one stream consumer), it is replaced by one
        shared placeholder: its place stays (sequence numbers are positions in moto's list,
        which writes append to concurrently), and nothing that can still be read loses
        anything."""
        import moto.dynamodb.models.table as table_models
        from moto.dynamodb.models import dynamodb_backends

        shard = dynamodb_backends[ACCOUNT][self.region].get_table(self.table_name).stream_shard
        states = list(self.shards.values())
        if shard is None or len(states) != 1 or states[0].sequence is None:
            return
        state, sequence = states[0], states[0].sequence
        done_upto = int(sequence) - (1 if state.position == "AT_SEQUENCE_NUMBER" else 0)
        # moto's stream clock is the virtual one (streams_on_clock), naive UTC.
        cutoff = table_models.utcnow() - STREAM_RETENTION  # type: ignore[attr-defined]
        position = max(self._trimmed, int(shard.starting_sequence_number)) - int(
            shard.starting_sequence_number
        )
        items = shard.items
        while position < len(items):
            change = items[position].record["dynamodb"]
            if int(change["SequenceNumber"]) > done_upto:
                break
            if change["ApproximateCreationDateTime"] >= cutoff:
                break
            items[position] = cast(Any, TRIMMED)  # moto's list holds StreamRecords
            position += 1
        self._trimmed = int(shard.starting_sequence_number) + position

    def _poll_shard(self, shard_id: str, state: _ShardState) -> int:
        records = self._read(shard_id, state)
        if not records:
            return 0
        wanted = [record for record in records if _matches(self.patterns, record)]
        if not wanted:  # filtered-out records are consumed without an invocation
            state.done_with(records[-1]["dynamodb"]["SequenceNumber"])
            return len(records)
        batch = wanted[: self.source.batch_size]
        # Records filtered out before the batch's last record are done with too.
        done_upto = batch[-1]["dynamodb"]["SequenceNumber"]
        failed_from = self._deliver(batch)
        if failed_from is None:
            state.done_with(done_upto)
            return len(batch)
        state.retry_at(
            failed_from, same_batch=failed_from == batch[0]["dynamodb"]["SequenceNumber"]
        )
        retries = self.source.maximum_retry_attempts
        if retries >= 0 and state.attempts > retries:
            self._send_to_failure_destination(shard_id, batch, failed_from)
            state.done_with(done_upto)
            return len(batch)
        return 1  # progress was attempted; the next round retries

    def _read(self, shard_id: str, state: _ShardState) -> list[dict[str, Any]]:
        if state.sequence is None:
            iterator_type = (
                "TRIM_HORIZON" if self.source.starting_position == "TRIM_HORIZON" else "LATEST"
            )
            iterator = self.streams.get_shard_iterator(
                StreamArn=self.stream_arn, ShardId=shard_id, ShardIteratorType=iterator_type
            )["ShardIterator"]
        else:
            iterator = self.streams.get_shard_iterator(
                StreamArn=self.stream_arn,
                ShardId=shard_id,
                ShardIteratorType=state.position,
                SequenceNumber=state.sequence,
            )["ShardIterator"]
        # One batch's worth: moto serialises every record it returns, so reading ahead is
        # paid for again on the next round.
        page = self.streams.get_records(ShardIterator=iterator, Limit=self.source.batch_size)
        self._forget_iterators(iterator, page.get("NextShardIterator"))
        records: list[dict[str, Any]] = page["Records"]
        # The time is the virtual clock's at the write (streams_on_clock).
        return [lambda_stream_record(record, self.stream_arn) for record in records]

    def _forget_iterators(self, *iterators: str | None) -> None:
        """Drops this round's shard iterators from moto, which keeps every one it hands out
        for as long as it runs (two a round, a few KB a second on a busy stack). The poller
        never reuses one: each round asks for a fresh iterator at its checkpoint. On AWS an
        unused iterator expires after 15 minutes
        (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_GetShardIterator.html)."""
        from moto.dynamodbstreams.models import dynamodbstreams_backends

        held = dynamodbstreams_backends[ACCOUNT][self.region].shard_iterators
        for iterator in iterators:
            if iterator:
                held.pop(iterator, None)

    def _deliver(self, batch: list[dict[str, Any]]) -> str | None:
        """Delivers, bisecting on function errors; returns the first failed sequence number."""
        result = self.function.invoke({"Records": batch})
        if result.failed:
            log.warning(
                "%s failed on a stream batch: %s", self.function.spec.logical_id, result.error
            )
            if self.source.bisect_on_error and len(batch) > 1:
                middle = len(batch) // 2
                first_failed = self._deliver(batch[:middle])
                return first_failed if first_failed is not None else self._deliver(batch[middle:])
            return str(batch[0]["dynamodb"]["SequenceNumber"])
        return _first_reported_failure(result, batch, self.source.report_batch_item_failures)

    def _send_to_failure_destination(
        self, shard_id: str, batch: list[dict[str, Any]], failed_from: str
    ) -> None:
        if not self.failure_queue_url:
            log.error("dropping a stream batch after retries (no OnFailure destination)")
            return
        details = {
            "requestContext": {
                "condition": "RetryAttemptsExhausted",
                "functionArn": self.function.arn,
            },
            "DDBStreamBatchInfo": {
                "shardId": shard_id,
                "streamArn": self.stream_arn,
                "startSequenceNumber": failed_from,
                "endSequenceNumber": batch[-1]["dynamodb"]["SequenceNumber"],
                "batchSize": len(batch),
            },
        }
        self.sqs.send_message(QueueUrl=self.failure_queue_url, MessageBody=json.dumps(details))


class TrimmedRecord:
    """What is left of a stream record past the 24-hour retention: its place in moto's
    list. Reading it fails, as GetRecords at a trimmed position does on AWS
    (TrimmedDataAccessException); this stack's poller is always past it."""

    record: ClassVar[dict[str, Any]] = {"eventName": "", "dynamodb": {}}

    def to_json(self) -> dict[str, Any]:
        raise LookupError("stream record past DynamoDB Streams' 24-hour retention")


TRIMMED = TrimmedRecord()


def _first_reported_failure(
    result: Invocation, batch: list[dict[str, Any]], reports: bool
) -> str | None:
    if not reports or not isinstance(result.payload, dict):
        return None
    failures = result.payload.get("batchItemFailures") or []
    if not failures:
        return None
    sequence_numbers = [str(record["dynamodb"]["SequenceNumber"]) for record in batch]
    reported = [str(failure.get("itemIdentifier") or "") for failure in failures]
    if any(identifier not in sequence_numbers for identifier in reported):
        # Lambda treats a missing or unknown identifier as a failure of the whole batch.
        return sequence_numbers[0]
    return min(reported, key=sequence_numbers.index)


def streams_on_clock(clock: VirtualClock) -> None:
    """Makes DynamoDB Streams stamp each record with the virtual time of its write.

    On AWS a record's ApproximateCreationDateTime is when the item was written, and it is
    Evaluate's decision time. Stamping at the write (rather than shifting by the offset
    when the record is read) keeps that true when the clock moves between the two. moto
    builds stream records in its table module with ``utcnow`` imported by name (naive UTC).
    """
    import moto.dynamodb.models.table as table_models

    def utcnow() -> datetime:
        return clock.now().replace(tzinfo=None)

    table_models.utcnow = utcnow  # type: ignore[attr-defined]


def queues_on_clock(clock: VirtualClock) -> None:
    """Makes SQS keep the virtual clock: delays, visibility timeouts and timestamps.

    A message sent with DelaySeconds, or left in flight by a failed batch, must come back
    when the clock is advanced past its time, as it would on AWS after that much time. moto
    runs in this process and its SQS reads the time through two functions it imported by
    name; replacing them there moves SQS alone (DynamoDB, Scheduler and SES keep theirs).
    """
    import moto.sqs.models as sqs_models

    def unix_time(dt: datetime | None = None) -> float:
        return clock.epoch_seconds() if dt is None else dt.timestamp()

    def unix_time_millis(dt: datetime | None = None) -> float:
        return unix_time(dt) * 1000

    sqs_models.unix_time = unix_time  # type: ignore[attr-defined]
    sqs_models.unix_time_millis = unix_time_millis  # type: ignore[attr-defined]


@dataclass
class QueuePoller:
    """An SQS queue feeding one function: successes are deleted, failures stay invisible
    until their visibility timeout ends, and the queue's redrive policy moves repeat
    failures to its DLQ (moto implements that part, as SQS does, on the virtual clock:
    see ``queues_on_clock``)."""

    function: FunctionPool
    source: QueueSource
    sqs: Any
    queue_url: str
    queue_arn: str
    region: str
    faults: QueueFaults | None = None

    def poll(self) -> int:
        response = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=min(10, self.source.batch_size),
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = response.get("Messages", [])
        if not messages:
            return 0
        records = [self._record(message) for message in messages]
        result = self.function.invoke({"Records": records})
        failed = self._failed_ids(result, records)
        failed |= self._deliver_duplicates(records)
        done = [message for message in messages if message["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                    for index, message in enumerate(done[start : start + 10])
                ],
            )
        return len(messages)

    def _deliver_duplicates(self, records: list[dict[str, Any]]) -> set[str]:
        """An injected fault: the first records of the batch handed out a second time, in
        a batch of their own, before they are deleted. Returns the ids that copy failed:
        like any failed delivery, they stay on the queue for their visibility timeout."""
        count = self.faults.take("duplicate", len(records)) if self.faults else 0
        if not count:
            return set()
        copies = records[:count]
        log.warning("delivering %d message(s) of %s twice (injected)", count, self.queue_arn)
        return self._failed_ids(self.function.invoke({"Records": copies}), copies)

    def next_visible(self, after: datetime) -> datetime | None:
        """The first moment after ``after`` at which a message that is delayed or in flight
        on this queue becomes receivable. SQS hands a message out once the time is past its
        visibility timeout or delay (moto: strictly after), hence the millisecond added."""
        import moto.sqs.models as sqs_models

        name = self.queue_arn.rsplit(":", 1)[-1]
        queue = sqs_models.sqs_backends[ACCOUNT][self.region].queues.get(name)
        if queue is None:
            return None
        after_ms = after.timestamp() * 1000
        receivable = [
            max(message.visible_at, message.delayed_until) + 1 for message in list(queue._messages)
        ]
        later = [moment for moment in receivable if moment > after_ms]
        return datetime.fromtimestamp(min(later) / 1000, tz=UTC) if later else None

    def pending(self) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"])

    def _record(self, message: dict[str, Any]) -> dict[str, Any]:
        # Timestamps need no shifting: SQS keeps the virtual clock (queues_on_clock).
        attributes = dict(message.get("Attributes", {}))
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": attributes,
            "messageAttributes": message.get("MessageAttributes", {}),
            "md5OfBody": message.get("MD5OfBody", ""),
            "eventSource": "aws:sqs",
            "eventSourceARN": self.queue_arn,
            "awsRegion": self.region,
        }

    def _failed_ids(self, result: Invocation, records: list[dict[str, Any]]) -> set[str]:
        every = {record["messageId"] for record in records}
        if result.failed:
            log.warning(
                "%s failed on a queue batch: %s", self.function.spec.logical_id, result.error
            )
            return every
        if not self.source.report_batch_item_failures or not isinstance(result.payload, dict):
            return set()
        reported = {
            str(failure.get("itemIdentifier"))
            for failure in result.payload.get("batchItemFailures") or []
        }
        return every if reported - every else reported


def lambda_stream_record(record: Mapping[str, Any], stream_arn: str) -> dict[str, Any]:
    """A DynamoDB Streams record (as the SDK's GetRecords returns it) the way Lambda hands
    it to the function, as JSON: its source ARN added, ApproximateCreationDateTime in epoch
    seconds, binary attributes ({"B": ...}) as base64 text rather than the bytes the SDK
    decoded them to, a TTL deletion's ``userIdentity`` with Lambda's field names.
    https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html"""
    change = dict(record["dynamodb"])
    created = change.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        aware = created if created.tzinfo else created.replace(tzinfo=UTC)
        change["ApproximateCreationDateTime"] = aware.timestamp()
    shaped = {**record, "dynamodb": change, "eventSourceARN": stream_arn}
    identity = record.get("userIdentity")
    if identity:
        # A TTL deletion's: GetRecords says Type and PrincipalId, Lambda's event says
        # type and principalId ("DynamoDB Streams and Time to Live", local/ttl.py).
        shaped["userIdentity"] = {
            "type": identity.get("Type"),
            "principalId": identity.get("PrincipalId"),
        }
    text = json.dumps(shaped, default=_base64_bytes)
    as_json: dict[str, Any] = json.loads(text)
    return as_json


def _base64_bytes(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    raise TypeError(f"{type(value).__name__} is not JSON")
