"""SES's word on delivered mail: a permanent bounce or a complaint suppresses the address."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from nudge.adapters.suppression import SuppressionStore

__all__ = ["FeedbackService"]


class FeedbackService:
    def __init__(self, suppression: SuppressionStore) -> None:
        self._suppression = suppression

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
