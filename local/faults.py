"""Faults the local stack can inject into its fake AWS and its Lambda runtime, to show what
Nudge does with them.

Only moto and the local runtime are touched: the functions run unchanged and see what they
would see on AWS (an error from SES, their own process dying, a message delivered twice).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from moto.core.exceptions import JsonRESTError

from local.template import ACCOUNT

__all__ = ["FAULT_KINDS", "FaultCounts", "QueueFaults", "SesFaults"]

# What POST /_local/faults accepts: service -> the kinds of fault it can inject.
FAULT_KINDS: dict[str, tuple[str, ...]] = {
    "ses": ("throttle", "serverError", "acceptThenCrash"),
    "sqs": ("duplicate",),
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
