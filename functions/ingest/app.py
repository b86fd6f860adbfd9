"""Ingest: the beacon endpoint. Parse the HTTP request, hand it to the service, shape the reply."""

from __future__ import annotations

# First of all: the collector is paused until the handler is built (ready() below).
from nudge import coldstart  # isort: split

import base64
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from nudge import bootstrap
from nudge.domain import segment  # noqa: F401  (the message models: every request parses some)
from nudge.domain.errors import InvalidRequest
from nudge.domain.timefmt import from_epoch_ms
from nudge.entrypoints.http_errors import error_body, json_response, status_of, unavailable
from nudge.service.ingest import BeaconRequest
from nudge.service.ports import Unavailable

logger = Logger()
metrics = Metrics()
app = APIGatewayHttpResolver()
service = bootstrap.ingest_service()


@app.post("/v1/<route>")
def beacon(route: str) -> Response[str]:
    event = app.current_event
    raw_body = event.get("body") or ""
    body = (
        base64.b64decode(raw_body)
        if event.is_base64_encoded
        else raw_body.encode("utf-8", "surrogatepass")
    )
    accepted = service.accept(
        BeaconRequest(
            route=route,
            body=body,
            headers={name.lower(): value for name, value in (event.headers or {}).items()},
            query=event.query_string_parameters or {},
            received_at=from_epoch_ms(event.request_context.time_epoch),
        )
    )
    metrics.add_metric("EventsAccepted", MetricUnit.Count, accepted.events)
    return json_response(200, {"success": True})


@app.get("/openapi.json")
def openapi() -> Response[str]:
    from nudge.entrypoints.openapi import openapi_document  # this route alone needs it

    return json_response(200, openapi_document())


@app.exception_handler(InvalidRequest)  # type: ignore[untyped-decorator]
def invalid_request(error: InvalidRequest) -> Response[str]:
    body = error_body(error)
    logger.info(
        "request refused",
        extra={"code": body["code"], "field": error.field, "reason": error.reason},
    )
    metrics.add_metric("RequestsRefused", MetricUnit.Count, 1)
    return json_response(status_of(error), body)


@app.exception_handler(Unavailable)  # type: ignore[untyped-decorator]
def storage_unavailable(error: Unavailable) -> Response[str]:
    logger.warning("storage refused writes", extra={"reason": str(error)})
    metrics.add_metric("RequestsUnavailable", MetricUnit.Count, 1)
    return unavailable()


@app.not_found
def not_found(_: Exception) -> Response[str]:
    path = app.current_event.path
    return json_response(404, {"code": "not_found", "message": f"no route {path}", "field": "path"})


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)


coldstart.ready()
