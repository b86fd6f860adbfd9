"""Which way a fire to be tried again goes back on the send queue: SQS's own delay when it
is due within 15 minutes, a one-time schedule when it is due later."""

from __future__ import annotations

import pytest
from nudge.service.send import EMAIL_BACKOFF, WEBHOOK_BACKOFF, queue_delay


@pytest.mark.parametrize(
    ("seconds", "delay"),
    [(0, 0), (-3.0, 0), (4.2, 5), (5, 5), (60, 60), (300, 300), (899.5, 900), (900, 900)],
)
def test_a_retry_due_within_fifteen_minutes_is_an_sqs_delay(seconds: float, delay: int) -> None:
    """Up to 900 s the fire waits in the queue, rounded up so it is never tried early."""
    # given / when / then
    assert queue_delay(seconds) == delay


@pytest.mark.parametrize("seconds", [900.001, 901, 1800, 36000])
def test_a_retry_due_later_is_left_to_a_schedule(seconds: float) -> None:
    """Beyond SQS's longest delay there is no queue delay: a schedule brings the fire back."""
    # given / when / then
    assert queue_delay(seconds) is None


def test_webhook_retries_of_five_seconds_and_five_minutes_wait_in_the_queue() -> None:
    """The backoff's first two steps are SQS delays (5 s is 5 s); from 30 min on, schedules."""
    # given
    backoff = WEBHOOK_BACKOFF

    # when
    delays = [queue_delay(seconds) for seconds in backoff]

    # then
    assert delays == [5, 300, None, None, None, None]
    assert [queue_delay(seconds) for seconds in EMAIL_BACKOFF] == [60, 300, None, None, None]
