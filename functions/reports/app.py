"""Reports: each trigger's experiment results, for operators holding the admin key.

GET /v1/reports/triggers        every trigger's report
GET /v1/reports/triggers/{id}   one trigger's (``?version=`` for an earlier experiment)

Authorised by ``Authorization: Bearer <admin key>``, the key kept in an SSM SecureString
parameter; never by the public write key, which every visitor's browser holds.
"""

from __future__ import annotations

# First of all: the collector is paused until the handler is built (ready() below).
from nudge import coldstart  # isort: split

from datetime import date
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from nudge import bootstrap
from nudge.domain.errors import InvalidRequest, Unauthorized
from nudge.domain.timefmt import from_epoch_ms
from nudge.entrypoints.admin import require_admin
from nudge.entrypoints.http_errors import error_body, json_response, status_of, unavailable
from nudge.service.ports import Unavailable

logger = Logger()
metrics = Metrics()
app = APIGatewayHttpResolver()
service = bootstrap.reporting()
ADMIN_KEY = bootstrap.admin_key()
_NO_STORE = {"Cache-Control": "no-store"}


def _today() -> date:
    """The request's day (UTC), as API Gateway stamped it: no clock read here."""
    return from_epoch_ms(app.current_event.request_context.time_epoch).date()


def _authorize() -> None:
    require_admin(app.current_event.headers, ADMIN_KEY)


@app.get("/v1/reports/triggers")
def all_triggers() -> Response[str]:
    _authorize()
    metrics.add_metric("ReportsServed", MetricUnit.Count, 1)
    return json_response(200, {"triggers": service.triggers(_today())}, _NO_STORE.copy())


@app.get("/v1/reports/triggers/<trigger_id>")
def one_trigger(trigger_id: str) -> Response[str]:
    _authorize()
    version = (app.current_event.query_string_parameters or {}).get("version")
    report = service.trigger(trigger_id, _today(), version)
    metrics.add_metric("ReportsServed", MetricUnit.Count, 1)
    return json_response(200, report, _NO_STORE.copy())


@app.exception_handler(InvalidRequest)  # type: ignore[untyped-decorator]
def invalid_request(error: InvalidRequest) -> Response[str]:
    metrics.add_metric("ReportsRefused", MetricUnit.Count, 1)
    headers = {
        **_NO_STORE,
        **({"WWW-Authenticate": "Bearer"} if isinstance(error, Unauthorized) else {}),
    }
    return json_response(status_of(error), error_body(error), headers)


@app.exception_handler(Unavailable)  # type: ignore[untyped-decorator]
def storage_unavailable(error: Unavailable) -> Response[str]:
    logger.warning("counters unreadable", extra={"reason": str(error)})
    return unavailable()


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)


coldstart.ready()
