"""Train: on its schedule (every 14 days by default), retrain each prediction from every
event in the table, and replace a model in the models bucket only when the new one's
held-out quality is not worse. Each decision is one structured log line: the prediction,
the old and new quality, kept or replaced, and why; never a person."""

from __future__ import annotations

# First of all: the collector is paused until the handler is built (ready() below).
from nudge import coldstart  # isort: split

from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from nudge import bootstrap

logger = Logger()
metrics = Metrics()
service = bootstrap.retrain_service()


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # The schedule's time (EventBridge's "time"): the moment the artefacts say they were
    # trained at, and no clock read here.
    now = datetime.fromisoformat(str(event["time"]).replace("Z", "+00:00"))
    result = service.run(now)
    logger.info(
        "events read",
        extra={
            "events": result.events,
            "skipped": result.skipped,
            "people": result.people,
            "people_sampled": result.sampled,
        },
    )
    for verdict in result.verdicts:
        logger.info("model decision", extra=verdict.to_log())
        metrics.add_metric(f"Models_{verdict.action}", MetricUnit.Count, 1)
    return {"models": {verdict.prediction: verdict.action for verdict in result.verdicts}}


coldstart.ready()
