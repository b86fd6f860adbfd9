"""Profiles: fold each newly inserted event into its person's aggregates (stream consumer)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from nudge import bootstrap
from nudge.adapters.store import stored_event_from_image
from nudge.service.profiles import SequencedEvent

logger = Logger()
metrics = Metrics()
service = bootstrap.profile_service()


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Records are grouped by person rather than handled one by one (as Powertools'
    # BatchProcessor would): one profile write per person per batch, not per event.
    records: list[SequencedEvent] = []
    unreadable: int | None = None
    for record in event.get("Records", []):
        change = record.get("dynamodb", {})
        image = change.get("NewImage", {})
        if record.get("eventName") != "INSERT" or image.get("kind", {}).get("S") != "event":
            continue  # the filter already drops these; this guards a misconfigured mapping
        sequence = int(change["SequenceNumber"])
        try:
            records.append(SequencedEvent(sequence, stored_event_from_image(image)))
        except (KeyError, ValueError, TypeError) as error:
            # Fold only what precedes it: Lambda redelivers from here, and a later record
            # applied now would move the watermark past this one.
            logger.error(
                "unreadable stream record", extra={"sequence": sequence, "error": repr(error)}
            )
            unreadable = sequence
            break
    result = service.apply(records)
    metrics.add_metric("EventsFolded", MetricUnit.Count, len(records))
    if result.errors:
        logger.error("profile update failed", extra={"errors": result.errors})
    failed = [sequence for sequence in (result.failed_from, unreadable) if sequence is not None]
    if not failed:
        return {"batchItemFailures": []}
    return {"batchItemFailures": [{"itemIdentifier": str(min(failed))}]}
