"""Privacy: a person's data exported, or erased for good, for operators with the admin key.

GET    /v1/users/{userId}/export   everything stored about the person, as one JSON document
DELETE /v1/users/{userId}          erase the person and their linked visitors; later events
                                   for them are dropped (service/privacy.py says what stays)

Both are idempotent. Logged without personal data: the request id and counts, never the
userId or what was stored.
"""

from __future__ import annotations

# First of all: the collector is paused until the handler is built (ready() below).
from nudge import coldstart  # isort: split

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
service = bootstrap.privacy_service()
ADMIN_KEY = bootstrap.admin_key()
_NO_STORE = {"Cache-Control": "no-store"}
_MAX_ID = 512  # as for the ids beacons carry


def _user_id(raw: str) -> str:
    require_admin(app.current_event.headers, ADMIN_KEY)
    if not raw or len(raw) > _MAX_ID:
        raise InvalidRequest("userId", f"a userId is 1 to {_MAX_ID} characters")
    return raw


@app.get("/v1/users/<user_id>/export")
def export(user_id: str) -> Response[str]:
    document = service.export(_user_id(user_id))
    metrics.add_metric("PersonsExported", MetricUnit.Count, 1)
    return json_response(200, document, _NO_STORE.copy())


@app.delete("/v1/users/<user_id>")
def forget(user_id: str) -> Response[str]:
    now = from_epoch_ms(app.current_event.request_context.time_epoch)
    summary = service.forget(_user_id(user_id), now)
    metrics.add_metric("PersonsForgotten", MetricUnit.Count, 1)
    logger.info("person forgotten", extra={"deleted": summary["deleted"]})  # counts only
    return json_response(200, summary, _NO_STORE.copy())


@app.exception_handler(InvalidRequest)  # type: ignore[untyped-decorator]
def invalid_request(error: InvalidRequest) -> Response[str]:
    headers = {
        **_NO_STORE,
        **({"WWW-Authenticate": "Bearer"} if isinstance(error, Unauthorized) else {}),
    }
    return json_response(status_of(error), error_body(error), headers)


@app.exception_handler(Unavailable)  # type: ignore[untyped-decorator]
def storage_unavailable(error: Unavailable) -> Response[str]:
    logger.warning("storage unavailable", extra={"reason": str(error)})
    return unavailable()


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)


coldstart.ready()
