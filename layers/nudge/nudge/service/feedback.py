"""SES's word on mail: a permanent bounce or a complaint suppresses the address, and a
Send event (SES accepted a message) leaves a receipt for the fire it carried."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from nudge.domain.fire_marks import FIRE_HEADER, FIRE_TAG
from nudge.service.delivery_ports import Receipts
from nudge.service.ports import ExperimentRecords, SuppressionList

__all__ = ["FeedbackService"]


class FeedbackService:
    def __init__(
        self, suppression: SuppressionList, receipts: Receipts, experiments: ExperimentRecords
    ) -> None:
        self._suppression = suppression
        self._receipts = receipts
        self._experiments = experiments

    def on_send_event(self, detail: Mapping[str, Any], at: datetime) -> str | None:
        """Records that SES accepted the fire's email; returns the fire id, if it had one."""
        mail = detail.get("mail") or {}
        fire_id = _tag(mail.get("tags"), FIRE_TAG) or _header(mail.get("headers"), FIRE_HEADER)
        if fire_id is None:
            return None  # not a message of Nudge's
        self._receipts.record(fire_id, str(mail.get("messageId", "")), at)
        return fire_id

    def on_ses_event(self, detail: Mapping[str, Any], at: datetime) -> list[str]:
        """Suppresses whom the event names; returns those addresses."""
        kind = detail.get("eventType")
        if kind == "Bounce":
            bounce = detail.get("bounce") or {}
            if bounce.get("bounceType") != "Permanent":
                return []  # a full mailbox or a greylist is tried again another day
            recipients = bounce.get("bouncedRecipients") or []
            reason = f"bounced ({bounce.get('bounceSubType', 'permanent')})"
        elif kind == "Complaint":
            recipients = (detail.get("complaint") or {}).get("complainedRecipients") or []
            reason = "complained (marked as spam)"
            self._count_complaint(detail.get("mail") or {}, at)
        else:
            return []
        addresses = [
            str(r["emailAddress"])
            for r in recipients
            if isinstance(r, dict) and r.get("emailAddress")
        ]
        for address in addresses:
            self._suppression.suppress("email", address, reason, at)
        return addresses

    def _count_complaint(self, mail: Mapping[str, Any], at: datetime) -> None:
        """A complaint counts once for the fire it is about, where its send was counted
        (a mail without Nudge's fire tag, or never counted as sent, counts nowhere)."""
        fire_id = _tag(mail.get("tags"), FIRE_TAG) or _header(mail.get("headers"), FIRE_HEADER)
        under = self._experiments.sent_as(fire_id) if fire_id else None
        if fire_id is None or under is None:
            return
        self._experiments.count_fire(fire_id, "complained", under, at)


def _tag(tags: Any, name: str) -> str | None:
    """A tag's value from SES's ``mail.tags`` ({name: [values]})."""
    values = tags.get(name) if isinstance(tags, dict) else None
    return str(values[0]) if isinstance(values, list) and values else None


def _header(headers: Any, name: str) -> str | None:
    """A header's value from SES's ``mail.headers`` list of {name, value}."""
    if not isinstance(headers, list):
        return None
    for header in headers:
        if isinstance(header, dict) and str(header.get("name", "")).lower() == name.lower():
            value = str(header.get("value", "")).strip()
            return value or None
    return None
