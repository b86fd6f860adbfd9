"""The local API gateway's route throttling: API Gateway's token bucket per route (burst
at once, refilled at the rate per second), the admin routes' lower limits read from
template.yaml, and the 429 API Gateway answers."""

from __future__ import annotations

import json

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from local.api_gateway import ApiGateway
from local.stack import LocalStack, StackConfig
from local.template import load_template
from local.throttling import RouteThrottle, Throttles
from tests.conftest import REPO

TEMPLATE = load_template(REPO / "template.yaml", {"WriteKey": "k"})
ADMIN_ROUTES = {
    "GET /v1/reports/triggers",
    "GET /v1/reports/triggers/{id}",
    "GET /v1/users/{userId}/export",
    "DELETE /v1/users/{userId}",
}


class FakeClock:
    """Seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _admitted(throttles: Throttles, route: str, count: int) -> int:
    return sum(throttles.admit(route) for _ in range(count))


def test_a_burst_passes_and_the_next_request_is_refused() -> None:
    """With a full bucket, burst requests at once pass and the one after is throttled."""
    # given
    throttles = Throttles(RouteThrottle(rate=2, burst=5), {}, FakeClock())

    # when
    admitted = _admitted(throttles, "POST /v1/batch", 6)

    # then
    assert admitted == 5


def test_the_bucket_refills_at_the_rate_per_second() -> None:
    """An empty bucket lets through rate requests per second that passes, no more."""
    # given
    clock = FakeClock()
    throttles = Throttles(RouteThrottle(rate=2, burst=5), {}, clock)
    _admitted(throttles, "POST /v1/batch", 5)

    # when
    clock.now += 1.5

    # then
    assert _admitted(throttles, "POST /v1/batch", 5) == 3


def test_the_bucket_never_holds_more_than_the_burst() -> None:
    """A long quiet spell refills the bucket to the burst limit, not beyond."""
    # given
    clock = FakeClock()
    throttles = Throttles(RouteThrottle(rate=100, burst=5), {}, clock)
    _admitted(throttles, "POST /v1/batch", 5)

    # when
    clock.now += 3600

    # then
    assert _admitted(throttles, "POST /v1/batch", 10) == 5


def test_each_route_has_a_bucket_of_its_own() -> None:
    """Exhausting one route leaves another route's requests untouched."""
    # given
    throttles = Throttles(RouteThrottle(rate=1, burst=2), {}, FakeClock())
    _admitted(throttles, "GET /v1/reports/triggers", 5)

    # when
    admitted = _admitted(throttles, "POST /v1/batch", 2)

    # then
    assert admitted == 2


def test_a_route_setting_overrides_the_stage_default() -> None:
    """A route with settings of its own is throttled by them, not by the default."""
    # given
    throttles = Throttles(
        RouteThrottle(rate=500, burst=1000),
        {"DELETE /v1/users/{userId}": RouteThrottle(rate=1, burst=3)},
        FakeClock(),
    )

    # when
    admitted = _admitted(throttles, "DELETE /v1/users/{userId}", 10)

    # then
    assert admitted == 3


def test_without_any_setting_a_route_is_not_throttled() -> None:
    """No default and no route setting: every request passes."""
    # given
    throttles = Throttles(None, {}, FakeClock())

    # when
    admitted = _admitted(throttles, "POST /v1/batch", 10_000)

    # then
    assert admitted == 10_000


def test_the_public_routes_take_the_stage_defaults_from_the_template() -> None:
    """DefaultRouteSettings: ThrottleRateLimit and ThrottleBurstLimit (500/s, 1000)."""
    # then
    assert TEMPLATE.api.default_throttle == RouteThrottle(rate=500, burst=1000)


def test_the_admin_routes_take_the_lower_admin_limits_from_the_template() -> None:
    """RouteSettings: every admin route at AdminThrottleRateLimit/BurstLimit (10/s, 20)."""
    # then
    assert TEMPLATE.api.route_throttles == dict.fromkeys(
        ADMIN_ROUTES, RouteThrottle(rate=10, burst=20)
    )


def test_every_route_setting_names_a_route_the_functions_serve() -> None:
    """A RouteSettings key that matches no route fails the deploy ("Unable to find Route by
    key"), so each one is a method and path some function's HttpApi event declares."""
    # given
    served = {
        f"{method} {path}"
        for spec in TEMPLATE.functions.values()
        for method, path in spec.http_routes
    }

    # then
    assert set(TEMPLATE.api.route_throttles) <= served


@pytest.fixture
def stack() -> LocalStack:
    """A local stack that is built but not started: no function can run in it."""
    return LocalStack(StackConfig(moto_port=1, socket_port=1))


def test_a_throttled_request_gets_api_gateways_429_and_runs_no_function(
    stack: LocalStack,
) -> None:
    """Past the route's burst the gateway answers 429 {"message":"Too Many Requests"} itself,
    before any function (none is running here: invoking one would fail)."""
    # given
    gateway = ApiGateway(stack, Throttles(None, {"DELETE /v1/users/{userId}": RouteThrottle(1, 0)}))
    request = Request(EnvironBuilder(method="DELETE", path="/v1/users/ada").get_environ())

    # when
    response = gateway.answer(request)

    # then
    assert response.status_code == 429
    assert json.loads(response.get_data()) == {"message": "Too Many Requests"}
