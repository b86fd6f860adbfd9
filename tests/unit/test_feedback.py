"""SES feedback: which bounces and complaints suppress an address; Send events leave receipts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from nudge.service.delivery_ports import Receipt
from nudge.service.feedback import FeedbackService

from tests.fakes import InMemoryExperiments

AT = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


class _Suppressions:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str]] = []

    def suppress(self, channel: str, address: str, reason: str, at: datetime) -> bool:
        self.calls.append((channel, address, reason))
        return True

    def is_suppressed(self, channel: str, address: str) -> bool:
        return any(call[:2] == (channel, address) for call in self.calls)


class _Receipts:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, datetime]] = []

    def record(self, fire_id: str, message_id: str, at: datetime) -> None:
        self.calls.append((fire_id, message_id, at))

    def find(self, fire_id: str) -> Receipt | None:
        return next((Receipt(f, m, a.isoformat()) for f, m, a in self.calls if f == fire_id), None)


def _service() -> tuple[FeedbackService, _Suppressions]:
    service, suppressions, _ = _service_with_receipts()
    return service, suppressions


def _service_with_receipts() -> tuple[FeedbackService, _Suppressions, _Receipts]:
    suppressions, receipts = _Suppressions(), _Receipts()
    return FeedbackService(suppressions, receipts, InMemoryExperiments()), suppressions, receipts


def _send_event(headers: list[dict[str, str]]) -> dict[str, Any]:
    return {"eventType": "Send", "mail": {"messageId": "ses-1", "headers": headers}, "send": {}}


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


def test_a_send_event_records_a_receipt_for_the_fire_its_header_names() -> None:
    """SES accepted a message carrying X-Nudge-Fire: the fire gets a receipt."""
    # given
    service, _, receipts = _service_with_receipts()
    headers = [{"name": "Subject", "value": "Hi"}, {"name": "X-Nudge-Fire", "value": "f1"}]
    # when
    fire_id = service.on_send_event(_send_event(headers), AT)
    # then
    assert fire_id == "f1"
    assert receipts.calls == [("f1", "ses-1", AT)]


def test_a_send_event_reads_the_header_name_in_any_case() -> None:
    """Header names are case-insensitive in mail, so x-nudge-fire counts too."""
    # given
    service, _, receipts = _service_with_receipts()
    # when
    service.on_send_event(_send_event([{"name": "x-nudge-fire", "value": "f2"}]), AT)
    # then
    assert [call[0] for call in receipts.calls] == ["f2"]


def test_a_send_event_without_the_header_records_nothing() -> None:
    """A message that is not Nudge's (or whose headers SES truncated) leaves no receipt."""
    # given
    service, suppressions, receipts = _service_with_receipts()
    # when
    fire_id = service.on_send_event(_send_event([{"name": "Subject", "value": "Hi"}]), AT)
    # then
    assert fire_id is None
    assert receipts.calls == []
    assert suppressions.calls == []


def test_a_send_event_reads_the_fire_from_its_tag_first() -> None:
    """SES never truncates tags: the nudge_fire tag names the fire even without headers."""
    # given
    service, _, receipts = _service_with_receipts()
    detail = {"eventType": "Send", "mail": {"messageId": "ses-2", "tags": {"nudge_fire": ["f3"]}}}
    # when
    fire_id = service.on_send_event(detail, AT)
    # then
    assert fire_id == "f3"
    assert receipts.calls == [("f3", "ses-2", AT)]
