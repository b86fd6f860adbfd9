"""Evaluate: on the table's stream, fold events into profiles and run the triggers they
touch; when a timer's schedule is due, decide that timer; every hour, sweep for people
who have become inactive."""

from __future__ import annotations

# First of all: the collector is paused until the handler is built (ready() below).
from nudge import coldstart  # isort: split

import contextlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from nudge import bootstrap
from nudge.adapters.store import stored_events_from_image
from nudge.domain.triggers.engine import Decision
from nudge.entrypoints.metrics import emit_conversions, emit_decisions
from nudge.service.evaluate import SWEEP_SOURCE, TIMER_SOURCE, TimerPayload

logger = Logger()
metrics = Metrics()
service = bootstrap.evaluate_service()
# A record holds a request's events for one person, so a batch of one record that fails is
# common: it is answered like any other failure (Lambda retries from it), not raised.
processor = BatchProcessor(
    event_type=EventType.DynamoDBStreams, raise_on_entire_batch_failure=False
)


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("source") == TIMER_SOURCE:
        decisions = service.on_timer(TimerPayload.parse(event), context.invoked_function_arn)
        metrics.add_metric("TimersDue", MetricUnit.Count, 1)
        _count(decisions)
        return {"decisions": [decision.outcome for decision in decisions]}
    if event.get("source") == SWEEP_SOURCE:
        return _on_sweep(event, context)
    return _on_stream(event, context)


def _on_sweep(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """The hourly InactivitySweep schedule: its scheduled time says which hour to read,
    so a retried or redriven sweep reads the same hour again."""
    scheduled = datetime.fromisoformat(str(event["scheduledTime"]))
    decisions = service.sweep(scheduled, context.invoked_function_arn)
    metrics.add_metric("InactivitySweeps", MetricUnit.Count, 1)
    _count(decisions)
    return {"decisions": [decision.outcome for decision in decisions]}


def _on_stream(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    records = [record for record in event.get("Records", []) if _is_new_event(record)]
    readable = []
    for record in records:
        # An unreadable record is reported by the record handler below, in its place.
        with contextlib.suppress(KeyError, ValueError, TypeError):
            readable += stored_events_from_image(record["dynamodb"]["NewImage"])
    times = [_approximate_time(record["dynamodb"]) for record in records]
    work = service.batch(readable, context.invoked_function_arn, min(times, default=_now()))

    def handle(record: DynamoDBRecord) -> None:
        raw = record.raw_event
        if not _is_new_event(raw):
            return  # the filter already drops these; this guards a misconfigured mapping
        change = raw["dynamodb"]
        now = _approximate_time(change)
        sequence = int(change["SequenceNumber"])
        for index, stored in enumerate(stored_events_from_image(change["NewImage"])):
            work.handle(sequence, stored, now, index)

    response = process_partial_response(
        event=event, record_handler=handle, processor=processor, context=context
    )
    failures = list(response.get("batchItemFailures", []))
    refused = work.finish()
    failures += [{"itemIdentifier": str(work.first_sequence[person])} for person in refused]
    metrics.add_metric("EventsEvaluated", MetricUnit.Count, len(readable))
    _count(work.decisions)
    emit_conversions(metrics, [(c.trigger, c.arm) for c in work.conversions if c.first])
    if refused:
        logger.error("profiles not saved", extra={"persons": [str(p) for p in sorted(refused)]})
    return {"batchItemFailures": failures}


def _count(decisions: Sequence[Decision]) -> None:
    """Per outcome (the service dimension only), and fires per trigger and arm for the
    dashboard."""
    for decision in decisions:
        metrics.add_metric(f"Decision_{decision.outcome}", MetricUnit.Count, 1)
    emit_decisions(metrics, decisions)


def _is_new_event(record: dict[str, Any]) -> bool:
    image = record.get("dynamodb", {}).get("NewImage", {})
    return bool(record.get("eventName") == "INSERT" and image.get("kind", {}).get("S") == "event")


def _approximate_time(change: dict[str, Any]) -> datetime:
    """When the stream saw the write: the time a decision is taken (no clock read here)."""
    seconds = change.get("ApproximateCreationDateTime")
    return datetime.fromtimestamp(float(seconds), tz=UTC) if seconds else _now()


def _now() -> datetime:
    return datetime.now(UTC)


coldstart.ready()
