"""An email whose attempt died holding its claim: sent again only once SES's receipt would
have come and none has failed to be recorded; otherwise it waits, and after a day it is
refused with the reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from nudge.domain.interrupted import (
    RECEIPT_PATIENCE,
    RECEIPT_SETTLE,
    RECHECK,
    AwaitReceipt,
    GiveUp,
    after_interruption,
)

CLAIMED = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


class FailedReceipts:
    """What Feedback's failure queue holds, and how often it was asked."""

    def __init__(self, waiting: int) -> None:
        self.held = waiting
        self.asked = 0

    def __call__(self) -> int:
        self.asked += 1
        return self.held


def test_a_receipt_that_may_still_come_is_waited_for() -> None:
    """Three minutes after the claim the receipt may be on its way: wait until ten."""
    # when
    verdict = after_interruption(CLAIMED, CLAIMED + timedelta(minutes=3), FailedReceipts(0))

    # then
    assert isinstance(verdict, AwaitReceipt)
    assert verdict.until == CLAIMED + RECEIPT_SETTLE
    assert "waiting until 2026-11-28T12:10:00.000Z for SES's receipt" in verdict.reason


def test_the_failure_queue_is_not_asked_while_the_receipt_may_still_come() -> None:
    """Before the receipt is due, nothing is counted: one SQS request saved."""
    # given
    failed = FailedReceipts(3)

    # when
    after_interruption(CLAIMED, CLAIMED + timedelta(minutes=3), failed)

    # then
    assert failed.asked == 0


def test_no_receipt_when_one_would_have_come_and_none_failed_sends_again() -> None:
    """Ten minutes on, no receipt and no failed ones: SES never got it; send again."""
    # when
    verdict = after_interruption(CLAIMED, CLAIMED + RECEIPT_SETTLE, FailedReceipts(0))

    # then
    assert verdict is None


def test_a_receipt_feedback_failed_to_record_keeps_the_email_waiting() -> None:
    """A receipt waits in Feedback's failure queue and may be this one: look again later."""
    # given
    now = CLAIMED + timedelta(minutes=12)

    # when
    verdict = after_interruption(CLAIMED, now, FailedReceipts(2))

    # then
    assert isinstance(verdict, AwaitReceipt)
    assert verdict.until == now + RECHECK
    assert "2 SES receipt(s) Feedback could not record" in verdict.reason


def test_a_day_of_failed_receipts_gives_up_saying_what_to_redrive() -> None:
    """A day after the claim, receipts still failing: refused, never sent twice."""
    # when
    verdict = after_interruption(CLAIMED, CLAIMED + RECEIPT_PATIENCE, FailedReceipts(1))

    # then
    assert isinstance(verdict, GiveUp)
    assert verdict.reason.endswith("Redrive FeedbackFailureQueue, then this message")


def test_a_day_later_with_no_failed_receipts_it_is_sent_again() -> None:
    """Patience only runs out on failed receipts: with none, a late copy is simply sent."""
    # when
    verdict = after_interruption(CLAIMED, CLAIMED + RECEIPT_PATIENCE, FailedReceipts(0))

    # then
    assert verdict is None
