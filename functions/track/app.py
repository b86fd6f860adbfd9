"""Track: the links in an email. Open pixel, click redirect, unsubscribe page and one-click."""

from __future__ import annotations

# First of all: the collector is paused until the handler is built (ready() below).
from nudge import coldstart  # isort: split

from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext
from nudge import bootstrap
from nudge.domain import segment  # noqa: F401  (the message models: every click is a Track)
from nudge.domain.errors import InvalidRequest, TokenRefused
from nudge.domain.timefmt import from_epoch_ms
from nudge.entrypoints.http_errors import error_body, json_response, status_of, unavailable
from nudge.entrypoints.track_pages import (
    PAGE_HEADERS,
    PIXEL_GIF,
    invalid_link_page,
    unsubscribe_confirm_page,
    unsubscribed_page,
)
from nudge.service.ports import Unavailable

logger = Logger()
metrics = Metrics()
app = APIGatewayHttpResolver()
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
service = bootstrap.track_service()

_HTML = "text/html; charset=utf-8"


def _html(status: int, page: str) -> Response[str]:
    return Response(status, _HTML, page, PAGE_HEADERS.copy())


def _at() -> datetime:
    return from_epoch_ms(app.current_event.request_context.time_epoch)


def _user_agent() -> str | None:
    return app.current_event.request_context.http.user_agent or None


def _unrecorded(what: str) -> None:
    logger.warning("tracking event not stored", extra={"event": what})
    metrics.add_metric("TrackingEventsLost", MetricUnit.Count, 1)


@app.get("/o/<token>")
def email_opened(token: str) -> Response[bytes]:
    if not service.open(token, _at(), _user_agent()):
        _unrecorded("open")
    metrics.add_metric("EmailsOpened", MetricUnit.Count, 1)
    return Response(200, "image/gif", PIXEL_GIF, {"Cache-Control": "no-store"})


@app.get("/c/<token>")
def link_clicked(token: str) -> Response[str]:
    click = service.click(token, _at(), _user_agent())
    if not click.recorded:
        _unrecorded("click")
    metrics.add_metric("LinksClicked", MetricUnit.Count, 1)
    return Response(302, None, "", {**PAGE_HEADERS, "Location": click.url})


@app.get("/u/<token>")
def unsubscribe_page(token: str) -> Response[str]:
    try:
        page = service.unsubscribe_page(token)
    except TokenRefused as error:
        _refused(error)
        return _html(400, invalid_link_page())
    metrics.add_metric("UnsubscribePagesShown", MetricUnit.Count, 1)
    return _html(200, unsubscribe_confirm_page(page.email))


@app.post("/u/<token>")
def unsubscribe(token: str) -> Response[str]:
    # Any POST with a valid token unsubscribes: RFC 8058 clients send the body
    # List-Unsubscribe=One-Click, and the confirm page's form sends the same.
    done = service.unsubscribe(token, _at(), _user_agent())
    metrics.add_metric("Unsubscribes", MetricUnit.Count, 1)
    return _html(200, unsubscribed_page(done.email))


def _refused(error: InvalidRequest) -> None:
    logger.info("link refused", extra={"code": error_body(error)["code"], "reason": error.reason})
    metrics.add_metric("LinksRefused", MetricUnit.Count, 1)


@app.exception_handler(InvalidRequest)  # type: ignore[untyped-decorator]
def invalid_request(error: InvalidRequest) -> Response[str]:
    _refused(error)
    # The reason stays in the log: the caller learns only which part was wrong.
    message = "invalid or altered link" if isinstance(error, TokenRefused) else error.message
    return json_response(status_of(error), error_body(error, message), PAGE_HEADERS.copy())


@app.exception_handler(Unavailable)  # type: ignore[untyped-decorator]
def storage_unavailable(error: Unavailable) -> Response[str]:
    logger.warning("storage refused writes", extra={"reason": str(error)})
    response = unavailable()
    response.headers.update(PAGE_HEADERS)
    return response


def store_queued(record: SQSRecord) -> None:
    """A link event the table refused when its link was followed, stored now."""
    service.store_queued(record.body)
    metrics.add_metric("TrackingEventsStoredLater", MetricUnit.Count, 1)


@logger.inject_lambda_context
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """The HTTP API's link requests, and the retry queue's batches of link events."""
    if event.get("Records"):
        return dict(
            process_partial_response(
                event=event, record_handler=store_queued, processor=processor, context=context
            )
        )
    return app.resolve(event, context)


coldstart.ready()
