"""API Gateway's route throttling on the local stack: the admin routes' lower limit
(AdminThrottleBurstLimit, 20 at once) answers 429 as API Gateway does, and passes again as
the bucket refills."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.e2e.conftest import REQUEST_TIMEOUT, StackClient

pytestmark = pytest.mark.e2e

ROUTE = "/v1/reports/triggers"
AT_ONCE = 60  # three times the admin burst
REFILL_DEADLINE = 30.0  # seconds for the bucket to let a request through again (2 s at 10/s)


def _get(stack: StackClient) -> requests.Response:
    return requests.get(stack.url(ROUTE), timeout=REQUEST_TIMEOUT)


def test_an_admin_route_past_its_burst_is_throttled_then_recovers(stack: StackClient):
    """Sixty requests at once on an admin route: some get API Gateway's 429 with its JSON
    body, the others reach the function (401 without a key); soon after, it answers again."""
    # when
    with ThreadPoolExecutor(max_workers=AT_ONCE) as pool:
        answers = list(pool.map(lambda _: _get(stack), range(AT_ONCE)))

    # then
    throttled = [answer for answer in answers if answer.status_code == 429]
    assert throttled
    assert {answer.json()["message"] for answer in throttled} == {"Too Many Requests"}
    assert {answer.status_code for answer in answers} == {401, 429}
    deadline = time.monotonic() + REFILL_DEADLINE
    while (later := _get(stack)).status_code == 429 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert later.status_code == 401
