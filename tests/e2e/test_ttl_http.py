"""DynamoDB's TTL in the running stack: advancing the clock past an item's ``expires_at``
deletes it at the next hourly sweep, for free, and Evaluate is not woken by it (the rules
themselves are tested in tests/integration/test_local_ttl.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.e2e.conftest import StackClient
from tests.e2e.shop import advance

pytestmark = pytest.mark.e2e


def _table(stack: StackClient) -> tuple[Any, str]:
    dynamodb = stack.aws("dynamodb")
    name = next(n for n in dynamodb.list_tables()["TableNames"] if n.endswith("-Table"))
    return dynamodb, name


def _put(stack: StackClient, sk: str, expires_in: timedelta) -> None:
    dynamodb, name = _table(stack)
    expires_at = int((stack.now() + expires_in).timestamp())
    dynamodb.put_item(
        TableName=name,
        Item={
            "pk": {"S": "P#u:ttl-e2e"},
            "sk": {"S": sk},
            "kind": {"S": "connection"},
            "expires_at": {"N": str(expires_at)},
        },
    )


def _present(stack: StackClient, sk: str) -> bool:
    dynamodb, name = _table(stack)
    key = {"pk": {"S": "P#u:ttl-e2e"}, "sk": {"S": sk}}
    return "Item" in dynamodb.get_item(TableName=name, Key=key, ConsistentRead=True)


def test_an_item_is_deleted_within_an_hour_of_its_ttl_and_one_not_due_is_kept(
    stack: StackClient,
):
    """Two hours on, the item that expired after 30 minutes is gone; the one due in a day
    is still there."""
    # given
    _put(stack, "W#soon", timedelta(minutes=30))
    _put(stack, "W#tomorrow", timedelta(days=1))
    stack.drain()
    # when
    advance(stack, timedelta(hours=2).total_seconds())
    # then
    assert not _present(stack, "W#soon")
    assert _present(stack, "W#tomorrow")


def test_a_ttl_deletion_costs_no_write_and_invokes_no_function(stack: StackClient):
    """The deletion is DynamoDB's own: the meter bills no write unit for it, and Evaluate's
    filter consumes its REMOVE record without an invocation (Evaluate runs only for the
    hourly sweep's schedule)."""
    # given
    _put(stack, "W#soon", timedelta(minutes=30))
    stack.drain()
    before = stack.get("/_local/meter").json()
    # when
    advance(stack, timedelta(hours=2).total_seconds())
    # then
    after = stack.get("/_local/meter").json()
    assert not _present(stack, "W#soon")
    assert after["dynamodb"]["writeUnits"] == before["dynamodb"]["writeUnits"]
    scheduled = after["schedulerInvocations"] - before["schedulerInvocations"]
    evaluations = after["lambda"]["Evaluate"]["invocations"] - _invocations(before, "Evaluate")
    assert evaluations == scheduled


def _invocations(meter: dict[str, Any], function: str) -> int:
    return int(meter["lambda"].get(function, {}).get("invocations", 0))
