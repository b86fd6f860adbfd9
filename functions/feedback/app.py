"""Feedback: SES events through EventBridge. A bounce or complaint suppresses the address;
a Send event leaves a receipt that SES accepted the fire's email."""

from __future__ import annotations

# First of all: the collector is paused until the handler is built (ready() below).
from nudge import coldstart  # isort: split

from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from nudge import bootstrap

logger = Logger()
metrics = Metrics()
service = bootstrap.feedback_service()


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    at = (
        datetime.fromisoformat(str(event.get("time", "")).replace("Z", "+00:00"))
        if event.get("time")
        else datetime.now(UTC)
    )
    detail = event.get("detail") or {}
    if detail.get("eventType") == "Send":
        fire_id = service.on_send_event(detail, at)
        metrics.add_metric("SendReceipts", MetricUnit.Count, 1 if fire_id else 0)
        return {"receipt": fire_id}
    suppressed = service.on_ses_event(detail, at)
    metrics.add_metric("AddressesSuppressed", MetricUnit.Count, len(suppressed))
    if suppressed:
        logger.info("suppressed after SES feedback", extra={"count": len(suppressed)})
    return {"suppressed": len(suppressed)}


coldstart.ready()
