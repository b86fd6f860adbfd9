"""Faults the local stack can inject into its fake AWS and its Lambda runtime, to show what
Nudge does with them.

Only moto and the local runtime are touched: the functions run unchanged and see what they
would see on AWS (an error from SES or DynamoDB, their own process dying, a message
delivered twice).
"""

from __future__ import annotations

import json
import threading
import uuid
import zlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from moto.core.exceptions import JsonRESTError

from local.template import ACCOUNT

__all__ = [
    "DYNAMODB_WRITES",
    "FAULT_KINDS",
    "FaultCounts",
    "QueueFaults",
    "SesFaults",
    "TableFaults",
    "WsgiApp",
    "dynamodb_write",
]

# What POST /_local/faults accepts: service -> the kinds of fault it can inject.
FAULT_KINDS: dict[str, tuple[str, ...]] = {
    "ses": ("throttle", "serverError", "acceptThenCrash"),
    "sqs": ("duplicate",),
    "dynamodb": ("throttle",),
}

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

# The calls that spend a table's write capacity, so the ones DynamoDB refuses when writes
# are throttled; reads, scans and the table's own management go through.
DYNAMODB_WRITES = frozenset(
    {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
)
# The JSON protocol names the call in a header (Streams has its own prefix, and is not a write).
_DYNAMODB_TARGET = "DynamoDB_20120810"
_THROTTLED_BODY = {
    "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
    # An on-demand table's words (the template's table is PAY_PER_REQUEST).
    "message": "Throughput exceeds the current capacity of your table or index. DynamoDB is"
    " automatically scaling your table or index so please try again shortly."
    " (injected by the local stack)",
}


class _Throttled(JsonRESTError):
    code = 429

    def __init__(self) -> None:
        super().__init__(
            "TooManyRequestsException",
            "Maximum sending rate exceeded (injected by the local stack).",
        )


class _ServerError(JsonRESTError):
    code = 500

    def __init__(self) -> None:
        super().__init__(
            "InternalFailure",
            "The request processing has failed (injected by the local stack).",
        )


class FaultCounts:
    """Counters of faults still to inject, one per kind, shared by threads: what the
    stack's ``faults`` mapping holds for each service."""

    def __init__(self, kinds: tuple[str, ...]) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(kinds, 0)

    def set(self, kind: str, count: int) -> None:
        with self._lock:
            if kind not in self._counts:
                raise KeyError(kind)
            self._counts[kind] = max(0, count)

    def take(self, kind: str, most: int = 1) -> int:
        """Uses up to ``most`` of the kind's count; returns how many were used."""
        with self._lock:
            taken = min(most, self._counts[kind])
            self._counts[kind] -= taken
            return taken

    def clear(self) -> None:
        with self._lock:
            self._counts = dict.fromkeys(self._counts, 0)

    def pending(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


class SesFaults(FaultCounts):
    """The next n SES sends, per kind:

    - ``throttle``: answer TooManyRequestsException (429), as SES under load;
    - ``serverError``: answer InternalFailure (500), a 5xx;
    - ``acceptThenCrash``: are accepted (the message is kept, as SES would send it), then the
      process of the function that asked dies before it hears back: ``crash`` kills it.
      That is "SES accepted, and the function crashed before writing its ledger".
    """

    def __init__(self, region: str, crash: Callable[[], int]) -> None:
        super().__init__(FAULT_KINDS["ses"])
        self._region = region
        self._crash = crash
        self._installed = False
        self._install_lock = threading.Lock()

    def set(self, kind: str, count: int) -> None:
        super().set(kind, count)
        self._install()

    def _install(self) -> None:
        with self._install_lock:
            if self._installed:
                return
            from moto.sesv2.models import sesv2_backends

            backend = sesv2_backends[ACCOUNT][self._region]
            original = backend.send_raw_email

            def send_raw_email(*args: Any, **kwargs: Any) -> Any:
                if self.take("throttle"):
                    raise _Throttled()
                if self.take("serverError"):
                    raise _ServerError()
                accepted = original(*args, **kwargs)
                if self.take("acceptThenCrash"):
                    # Killed before moto answers: the sender never learns SES accepted.
                    self._crash()
                return accepted

            backend.send_raw_email = send_raw_email  # type: ignore[method-assign]
            self._installed = True


class QueueFaults(FaultCounts):
    """``duplicate``: the next n messages a queue poller receives are delivered twice, as
    SQS's at-least-once delivery may: the same message, handed out again before it was
    deleted."""

    def __init__(self) -> None:
        super().__init__(FAULT_KINDS["sqs"])


def dynamodb_write(environ: Mapping[str, Any]) -> str | None:
    """The DynamoDB write call a WSGI request makes (``PutItem``, ...); None for any other."""
    service, _, action = str(environ.get("HTTP_X_AMZ_TARGET", "")).partition(".")
    return action if service == _DYNAMODB_TARGET and action in DYNAMODB_WRITES else None


class TableFaults(FaultCounts):
    """``throttle``: the next n DynamoDB write calls (API calls, however many items each
    carries) are refused with ProvisionedThroughputExceededException, as DynamoDB answers
    them over HTTP when a table's write throughput is exceeded. The SDK retries each itself,
    so n beyond its attempts is what reaches the function."""

    def __init__(self) -> None:
        super().__init__(FAULT_KINDS["dynamodb"])

    def wrap(self, app: WsgiApp) -> WsgiApp:
        """moto's WSGI app with throttled writes answered before moto sees them: DynamoDB
        writes nothing of a refused call, and neither does moto."""

        def throttling(
            environ: dict[str, Any], start_response: Callable[..., Any]
        ) -> Iterable[bytes]:
            if dynamodb_write(environ) and self.take("throttle"):
                return _throttled(environ, start_response)
            return app(environ, start_response)

        return throttling


def _throttled(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    # Read the request to its end, or its unread body would be taken for the next request
    # on the SDK's kept-alive connection.
    environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    body = json.dumps(_THROTTLED_BODY).encode()
    start_response(
        "400 Bad Request",
        [
            ("Content-Type", "application/x-amz-json-1.0"),
            ("Content-Length", str(len(body))),
            ("x-amzn-RequestId", uuid.uuid4().hex.upper()),
            # DynamoDB checksums every answer; SDKs that check it see a whole one.
            ("x-amz-crc32", str(zlib.crc32(body))),
        ],
    )
    return [body]
