"""SES feedback: which bounces and complaints suppress an address."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from nudge.service.feedback import FeedbackService

AT = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


class _Suppressions:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []

    def suppress(self, channel: str, address: str, reason: str, at: datetime) -> bool:
        self.calls.append((channel, address, reason))
        return True


def _service() -> tuple[FeedbackService, _Suppressions]:
    suppressions = _Suppressions()
    return FeedbackService(suppressions), suppressions  # type: ignore[arg-type]


def _bounce(kind: str) -> dict[str, Any]:
    return {
        "eventType": "Bounce",
        "bounce": {"bounceType": kind, "bouncedRecipients": [{"emailAddress": "a@example.com"}]},
    }


def test_a_permanent_bounce_suppresses_the_address() -> None:
    """A hard bounce means the address does not exist: no more email to it."""
    # given
    service, suppressions = _service()
    # when
    suppressed = service.on_ses_event(_bounce("Permanent"), AT)
    # then
    assert suppressed == ["a@example.com"]
    assert suppressions.calls[0][:2] == ("email", "a@example.com")


def test_a_transient_bounce_suppresses_nothing() -> None:
    """A full mailbox is tried again another day, not suppressed."""
    # given
    service, suppressions = _service()
    # when
    suppressed = service.on_ses_event(_bounce("Transient"), AT)
    # then
    assert suppressed == []
    assert suppressions.calls == []


def test_a_complaint_suppresses_every_complaining_recipient() -> None:
    """Marking a message as spam stops email to that person."""
    # given
    service, suppressions = _service()
    detail = {
        "eventType": "Complaint",
        "complaint": {
            "complainedRecipients": [
                {"emailAddress": "x@example.com"},
                {"emailAddress": "y@example.com"},
            ]
        },
    }
    # when
    suppressed = service.on_ses_event(detail, AT)
    # then
    assert suppressed == ["x@example.com", "y@example.com"]
    assert [reason for _, _, reason in suppressions.calls] == ["complained (marked as spam)"] * 2


def test_other_ses_events_are_ignored() -> None:
    """A delivery or open event from SES changes nothing."""
    # given
    service, suppressions = _service()
    # when
    suppressed = service.on_ses_event({"eventType": "Delivery"}, AT)
    # then
    assert suppressed == []
    assert suppressions.calls == []
