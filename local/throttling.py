"""API Gateway's route throttling, locally: a token bucket per route, as the stage's
DefaultRouteSettings and RouteSettings declare (ThrottlingRateLimit, ThrottlingBurstLimit).

API Gateway "throttles requests to your API using the token bucket algorithm, where a token
counts for a request" (docs/architecture.md, Security, links the page): a bucket holds at
most the burst limit, refills at the rate limit per second, and a request that finds it
empty is answered 429 before any function runs. Throttling is by real time, not the stack's
virtual clock: it limits the load the stack takes, not business time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = ["RouteThrottle", "Throttles"]


@dataclass(frozen=True)
class RouteThrottle:
    rate: float  # requests per second, steady state
    burst: int  # the bucket's size: requests at once


class _Bucket:
    def __init__(self, limit: RouteThrottle, now: float) -> None:
        self._limit = limit
        self._tokens = float(limit.burst)  # a fresh stage starts with a full bucket
        self._at = now

    def take(self, now: float) -> bool:
        elapsed = max(0.0, now - self._at)
        self._tokens = min(float(self._limit.burst), self._tokens + elapsed * self._limit.rate)
        self._at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


class Throttles:
    """One bucket per route key; a route without settings of its own uses the stage's
    default, and with neither it is not throttled (as API Gateway, the account's limit
    aside)."""

    def __init__(
        self,
        default: RouteThrottle | None,
        routes: Mapping[str, RouteThrottle],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._default = default
        self._routes = dict(routes)
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def admit(self, route_key: str) -> bool:
        """Whether a request on this route is let through now (and its token spent)."""
        limit = self._routes.get(route_key, self._default)
        if limit is None:
            return True
        with self._lock:
            now = self._clock()
            bucket = self._buckets.get(route_key)
            if bucket is None:
                bucket = self._buckets[route_key] = _Bucket(limit, now)
            return bucket.take(now)
