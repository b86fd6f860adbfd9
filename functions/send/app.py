"""Send: deliver fires from the send queue (SQS), each at most once, under the contact policy."""

from __future__ import annotations

# First of all: the collector is paused until the handler is built (ready() below).
from nudge import coldstart  # isort: split

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from nudge import bootstrap
from nudge.domain import tokens  # noqa: F401  (every email's links are signed: load at cold start)
from nudge.domain.messages import FireMessage
from nudge.domain.outcomes import DeliveryOutcome
from nudge.entrypoints.metrics import emit_deliveries
from nudge.service.send import Poison, parse_fire

logger = Logger()
metrics = Metrics()
service = bootstrap.send_service()
dead_letters = bootstrap.send_dead_letters()
# A batch whose every record is to be tried later (one in-flight fire, say) is reported
# record by record like any other, not raised as a function error.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


# Beside the slowest attempt (a webhook's timeout), time for SES, DynamoDB and the records.
SAFETY_MS = 5_000

# What became of each fire in this invocation, counted per trigger, variant and channel at
# its end: one metrics line per combination for the batch, not one per fire.
outcomes: list[tuple[FireMessage, DeliveryOutcome]] = []


class TryLater(Exception):
    """Reported as a batch item failure: SQS delivers the message again later."""


def handle(record: SQSRecord, lambda_context: LambdaContext) -> None:
    now = _sent_time(record)
    try:
        fire = parse_fire(record.body)
        if _no_time_left(lambda_context):
            # Records are handled one after another: ten slow webhooks could outlast the
            # function. Handing the rest back keeps them from failing with the batch (and
            # from using up their receives without ever being tried).
            service.hand_back(fire)
            metrics.add_metric("HandedBack", MetricUnit.Count, 1)
            return
        redelivered = int(record.attributes.approximate_receive_count or 1) > 1
        delivery = service.deliver(fire, now, redelivered=redelivered)
    except Poison as poison:
        # Never half-sent, never blocking the batch: straight to the DLQ, with the reason.
        logger.error(
            "fire dead-lettered", extra={"reason": str(poison), "message_id": record.message_id}
        )
        dead_letters.send(record.body, str(poison))
        dead = _fire_or_none(record.body)
        if dead is not None:  # recorded for explain when it is a fire at all
            service.record_dead_letter(dead, str(poison), now)
        metrics.add_metric("DeadLettered", MetricUnit.Count, 1)
        if dead is not None:
            outcomes.append((dead, "dead_letter"))
        return
    metrics.add_metric(f"Delivery_{delivery.outcome}", MetricUnit.Count, 1)
    outcomes.append((fire, delivery.outcome))
    if delivery.outcome == "in_flight":
        raise TryLater(delivery.reason)  # another delivery holds the claim; SQS brings it back


def _no_time_left(context: LambdaContext) -> bool:
    remaining = context.get_remaining_time_in_millis()
    return bool(remaining < service.longest_attempt * 1000 + SAFETY_MS)


def _fire_or_none(body: str) -> FireMessage | None:
    try:
        return parse_fire(body)
    except Poison:
        return None


def _sent_time(record: SQSRecord) -> datetime:
    """When the fire was queued (or re-queued at the end of quiet hours or a backoff), or
    first handed out if that was later: the time its delivery is decided for. A fire
    re-queued with DelaySeconds is stamped when it was sent but handed out only after its
    delay, and a retry 5 s later is decided 5 s later. It is AWS's clock, so the local
    stack's virtual clock reaches the decision the same way."""
    attributes = record.attributes
    stamps = [attributes.sent_timestamp, attributes.approximate_first_receive_timestamp]
    known = [int(stamp) for stamp in stamps if stamp]
    return datetime.fromtimestamp(max(known) / 1000, tz=UTC) if known else datetime.now(UTC)


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    outcomes.clear()
    try:
        response = process_partial_response(
            event=event, record_handler=handle, processor=processor, context=context
        )
    finally:
        emit_deliveries(metrics, outcomes)
        outcomes.clear()
    return dict(response)


coldstart.ready()
