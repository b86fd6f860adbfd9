"""The local stack's clock: real time plus an offset that only ever grows.

Handlers never read it directly; it reaches them the way AWS time does, inside the
events (API Gateway's requestContext.timeEpoch, a stream record's creation time, an SQS
message's timestamps, a schedule's scheduled time).
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

__all__ = ["VirtualClock"]


class VirtualClock:
    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.epoch_seconds(), tz=UTC)

    def epoch_seconds(self) -> float:
        with self._lock:
            return time.time() + self._offset

    def epoch_ms(self) -> int:
        return int(self.epoch_seconds() * 1000)

    @property
    def offset_seconds(self) -> float:
        with self._lock:
            return self._offset

    def advance(self, seconds: float) -> datetime:
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._offset += seconds
        return self.now()

    def move_to(self, moment: datetime) -> datetime:
        """Forward to ``moment``; a moment already passed leaves the clock where it is."""
        with self._lock:
            ahead = moment.timestamp() - (time.time() + self._offset)
            self._offset += max(ahead, 0.0)
        return self.now()
