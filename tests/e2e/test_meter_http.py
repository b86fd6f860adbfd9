"""GET /_local/meter: what the stack's traffic would cost on AWS, counted at its AWS
endpoint (the billing rules themselves are tested in tests/integration/test_aws_meter.py)."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import StackClient
from tests.e2e.shop import new_id, track

pytestmark = pytest.mark.e2e


def test_a_reset_stack_has_billed_nothing(stack: StackClient):
    # given a fresh stack (every test starts from a reset)
    # when
    meter = stack.get("/_local/meter").json()
    # then
    assert meter["dynamodb"]["writeUnits"] == 0
    assert meter["apiGatewayRequests"] == 0
    assert meter["lambda"] == {}


def test_one_tracked_event_is_one_request_one_event_write_and_its_invocations(
    stack: StackClient,
):
    # given
    user = new_id("meter")
    # when
    track(stack, user, "Item Viewed", {"sku": "42"})
    stack.drain()
    meter = stack.get("/_local/meter").json()
    # then: the beacon, Ingest and Evaluate once each, and the event's one write unit
    assert meter["apiGatewayRequests"] == 1
    assert meter["lambda"]["Ingest"]["invocations"] == 1
    assert meter["lambda"]["Evaluate"]["invocations"] == 1
    assert meter["dynamodb"]["writeUnitsByKind"]["event"] == 1
    assert meter["dynamodb"]["writtenItems"]["profile"] == 1
    assert meter["requests"]["functions"]["dynamodb"]["BatchWriteItem"] >= 1
