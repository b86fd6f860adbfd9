"""Feedback: SES bounce and complaint events (through EventBridge) suppress the address."""

from __future__ import annotations

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
    suppressed = service.on_ses_event(event.get("detail") or {}, at)
    metrics.add_metric("AddressesSuppressed", MetricUnit.Count, len(suppressed))
    if suppressed:
        logger.info("suppressed after SES feedback", extra={"count": len(suppressed)})
    return {"suppressed": len(suppressed)}
