"""What the local stack shows of delivered email: SES's raw messages, read back as parts."""

from __future__ import annotations

from email import message_from_bytes, message_from_string
from email.message import Message
from email.policy import default
from typing import Any

__all__ = ["describe_email"]


def describe_email(raw: str | bytes, destinations: object) -> dict[str, Any]:
    """Channel, recipients, subject, both bodies and every header of one sent message."""
    message = (
        message_from_bytes(raw, policy=default)
        if isinstance(raw, bytes)
        else message_from_string(raw, policy=default)
    )
    return {
        "channel": "email",
        "to": _recipients(message, destinations),
        "from": message.get("From"),
        "subject": message.get("Subject"),
        "html": _part(message, "text/html"),
        "text": _part(message, "text/plain"),
        "headers": {name: str(value) for name, value in message.items()},
        "trigger": message.get("X-Nudge-Trigger"),
        "fire": message.get("X-Nudge-Fire"),
        "variant": message.get("X-Nudge-Variant"),
        "time": message.get("Date"),
        "delivered": True,
    }


def _recipients(message: Message, destinations: object) -> list[str]:
    if isinstance(destinations, list) and destinations:
        return list(dict.fromkeys(str(address) for address in destinations))
    if isinstance(destinations, dict):
        return [str(address) for address in destinations.get("ToAddresses", [])]
    to = message.get("To")
    return [to] if to else []


def _part(message: Message, content_type: str) -> str | None:
    for part in message.walk():
        if part.get_content_type() == content_type and not part.is_multipart():
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                return payload.decode(part.get_content_charset() or "utf-8", errors="replace")
    return None
