"""The local stack's virtual clock, driven over the control API."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from tests.e2e.conftest import REQUEST_TIMEOUT, StackClient

pytestmark = pytest.mark.e2e


def _advance(stack: StackClient, body: bytes):
    return stack.session.post(
        stack.url("/_local/clock/advance"),
        data=body,
        headers={"Content-Type": "application/json"},
        timeout=REQUEST_TIMEOUT,
    )


def test_advance_moves_the_clock_forward_by_a_day(stack: StackClient):
    """Advancing by 86,400 seconds moves GET /_local/clock forward by a day."""
    # given
    before = stack.now()

    # when
    response = _advance(stack, b'{"seconds": 86400}')

    # then
    assert response.status_code == 200, response.text
    after = stack.now()
    assert timedelta(days=1) <= after - before < timedelta(days=1, minutes=1)


def test_advance_returns_the_new_time(stack: StackClient):
    """The advance call answers with the clock's new time."""
    # given
    before = stack.now()

    # when
    response = _advance(stack, b'{"seconds": 86400}')

    # then
    assert response.status_code == 200, response.text
    returned = datetime.fromisoformat(response.json()["now"])
    assert timedelta(days=1) <= returned - before < timedelta(days=1, minutes=1)
    assert returned <= stack.now()


@pytest.mark.parametrize(
    "body",
    [
        b'{"seconds": -5}',
        b'{"seconds": -1}',
        b'{"seconds": "86400"}',
        b'{"seconds": true}',
        b'{"seconds": NaN}',
        b'{"seconds": Infinity}',
        b'{"seconds": 34560001}',
        b'{"seconds": null}',
        b"{}",
        b"not json",
        b"\xff\xfe",
        b"[" * 100_000,
        b"[86400]",
    ],
    ids=[
        "negative",
        "minus one",
        "string",
        "boolean",
        "NaN",
        "infinity",
        "over 400 days",
        "null",
        "missing",
        "not JSON",
        "not UTF-8",
        "nested past the parser",
        "array",
    ],
)
def test_bad_advance_is_a_400_json_error(stack: StackClient, body: bytes):
    """A negative, non-numeric, non-finite, over-400-days or non-JSON advance is refused
    with a 400 JSON error, and the clock stays where it was."""
    # given
    before = stack.get("/_local/clock").json()["offsetSeconds"]

    # when
    response = _advance(stack, body)

    # then
    assert response.status_code == 400, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    error = response.json()
    assert error["code"] == "invalid_request"
    assert error["field"] in ("body", "seconds")
    assert stack.get("/_local/clock").json()["offsetSeconds"] == before


def test_an_advance_of_zero_drains_and_keeps_the_time(stack: StackClient):
    """An advance of 0 leaves the offset alone and processes what was written before it."""
    # given
    offset = stack.get("/_local/clock").json()["offsetSeconds"]
    stored = stack.post("/v1/track", {"userId": "zero-advance", "event": "Signed Up"})
    assert stored.status_code == 200, stored.text

    # when
    response = _advance(stack, b'{"seconds": 0}')

    # then
    assert response.status_code == 200, response.text
    assert response.json()["complete"] is True
    assert stack.get("/_local/clock").json()["offsetSeconds"] == offset
    profile = stack.get("/_local/users/zero-advance").json()["profile"]
    assert profile["events"] == 1


def test_an_advance_past_its_work_budget_stops_at_a_finished_moment(budget_stack: StackClient):
    """With no budget, an advance of a day stops after the first due moment (the hourly
    sweep's first run), says so, and the next call goes on from there."""
    # given
    stack = budget_stack
    before = stack.now()

    # when
    first = _advance(stack, b'{"seconds": 86400}').json()
    second = _advance(stack, b'{"seconds": 86400}').json()

    # then
    assert first["complete"] is False
    reached = datetime.fromisoformat(first["now"])
    assert before < reached < datetime.fromisoformat(first["target"])
    assert first["moments"] == 1
    assert "advance again" in first["message"]
    assert second["moments"] == 1
    assert datetime.fromisoformat(second["now"]) - reached >= timedelta(minutes=59)
