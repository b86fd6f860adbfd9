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
    [b'{"seconds": -5}', b'{"seconds": "86400"}', b'{"seconds": true}', b"not json", b"[86400]"],
    ids=["negative", "string", "boolean", "not JSON", "array"],
)
def test_bad_advance_is_a_400_json_error(stack: StackClient, body: bytes):
    """A negative, non-numeric or non-JSON advance is refused with a 400 JSON error."""
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
