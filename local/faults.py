"""Faults the local stack can inject into its fake AWS, to show what Nudge does with them.

Only moto is touched: the functions run unchanged and see the same errors SES would send.
"""

from __future__ import annotations

import threading
from typing import Any

from moto.core.exceptions import JsonRESTError

from local.template import ACCOUNT

__all__ = ["SesFaults"]


class _Throttled(JsonRESTError):
    code = 429

    def __init__(self) -> None:
        super().__init__(
            "TooManyRequestsException",
            "Maximum sending rate exceeded (injected by the local stack).",
        )


class SesFaults:
    """``throttle(n)``: the next n SES sends answer TooManyRequestsException."""

    def __init__(self, region: str) -> None:
        self._region = region
        self._lock = threading.Lock()
        self._throttle = 0
        self._installed = False

    def throttle(self, count: int) -> None:
        with self._lock:
            self._throttle = max(0, count)
            self._install()

    def clear(self) -> None:
        with self._lock:
            self._throttle = 0

    def pending(self) -> dict[str, int]:
        with self._lock:
            return {"throttle": self._throttle}

    def _install(self) -> None:
        if self._installed:
            return
        from moto.sesv2.models import sesv2_backends

        backend = sesv2_backends[ACCOUNT][self._region]
        original = backend.send_raw_email

        def send_raw_email(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                if self._throttle > 0:
                    self._throttle -= 1
                    raise _Throttled()
            return original(*args, **kwargs)

        backend.send_raw_email = send_raw_email  # type: ignore[method-assign]
        self._installed = True
