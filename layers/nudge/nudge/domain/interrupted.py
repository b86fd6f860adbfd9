"""An email whose attempt died after claiming it: send again, wait for SES's receipt, or
give up saying why. Pure: the caller looks up the receipt and the receipt pipeline's
failures, and passes the time in.

SES v2 has no idempotency key, so the only word on whether it accepted the dead attempt's
email is its Send event, which Feedback records as a receipt (adapters/receipts.py). A
redelivery that finds no receipt cannot tell "SES never got it" from "the receipt is not in
yet", so it resends only once a receipt would have arrived:

- ``RECEIPT_SETTLE`` after the claim. SES publishes events to EventBridge within seconds;
  EventBridge invokes Feedback asynchronously, and Lambda retries a failed asynchronous
  invocation twice, about one and then two minutes apart
  (https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html), so a
  receipt that is coming has come, or has failed for good, well within ten minutes. (The
  template caps Feedback's event age at 8 minutes, on Lambda and on the EventBridge rule, so
  a throttled Feedback does not hold a receipt for Lambda's 6 hours either.)
- and only while no receipt has failed for good. A receipt Feedback could not record waits
  in its failure queue (template.yaml, ``FeedbackFailureQueue``), alarmed; it may be this
  email's. Then the copy keeps waiting, looking again every ``RECHECK``, until an operator
  redrives that queue (docs/operations.md) and the receipt lands, or ``RECEIPT_PATIENCE``
  has passed since the claim, when it goes to the dead-letter queue with the reason: a
  refusal, never a second email nobody can vouch for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from nudge.domain.timefmt import iso

__all__ = [
    "RECEIPT_PATIENCE",
    "RECEIPT_SETTLE",
    "RECHECK",
    "AwaitReceipt",
    "GiveUp",
    "after_interruption",
]

RECEIPT_SETTLE = timedelta(minutes=10)
RECHECK = timedelta(minutes=15)  # SQS's longest DelaySeconds: the queue itself brings it back
# Under the contact record's memory of fires (three days, domain/policy.py), so the claim's
# time is still there to measure from; a day leaves an operator time to answer the alarm.
RECEIPT_PATIENCE = timedelta(hours=24)


@dataclass(frozen=True)
class AwaitReceipt:
    until: datetime
    reason: str


@dataclass(frozen=True)
class GiveUp:
    reason: str


def after_interruption(
    claimed_at: datetime, now: datetime, failed_receipts: Callable[[], int]
) -> AwaitReceipt | GiveUp | None:
    """What to do with an email whose attempt claimed it at ``claimed_at`` and died, when
    no receipt of it has been found: None to send it again. ``failed_receipts`` counts the
    receipts waiting in Feedback's failure queue; it is asked only once the receipt has had
    time to arrive."""
    interrupted = f"the attempt that claimed it at {iso(claimed_at)} was interrupted"
    settled = claimed_at + RECEIPT_SETTLE
    if now < settled:
        return AwaitReceipt(
            settled, f"{interrupted}; waiting until {iso(settled)} for SES's receipt of it"
        )
    failed = failed_receipts()
    if failed == 0:
        return None
    waiting = f"{failed} SES receipt(s) Feedback could not record wait in FeedbackFailureQueue"
    if now - claimed_at >= RECEIPT_PATIENCE:
        return GiveUp(
            f"{interrupted} and {waiting}, one of which may be its own: not sent again, as"
            " SES may have sent it. Redrive FeedbackFailureQueue, then this message"
        )
    again = now + RECHECK
    return AwaitReceipt(
        again, f"{interrupted} and {waiting}; looking again at {iso(again)} (redrive that queue)"
    )
