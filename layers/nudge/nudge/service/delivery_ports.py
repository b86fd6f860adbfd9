"""The ports only delivery uses: the mailer and the webhook poster (Send), SES's receipts
(recorded by Feedback, read by Send), and the values they speak in. Ports as in
``ports.py``, whose errors they raise; apart from it so that the functions that deliver
nothing, Evaluate first, do not build these classes at cold start (bench/README.md,
"Handler import time")."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from nudge.domain.render import EmailContent

__all__ = [
    "Mailer",
    "Outgoing",
    "Receipt",
    "ReceiptFailures",
    "Receipts",
    "WebhookPoster",
    "WebhookResult",
]


@dataclass(frozen=True)
class Receipt:
    """SES's word that it accepted a fire's email."""

    fire_id: str
    message_id: str
    at: str


@dataclass(frozen=True)
class Outgoing:
    """One email, rendered and addressed."""

    sender: str
    to: str
    content: EmailContent
    unsubscribe_url: str
    headers: dict[str, str]  # extra headers, e.g. X-Nudge-Trigger
    tags: dict[str, str] = field(default_factory=dict)  # SES message tags, in SES's events


@dataclass(frozen=True)
class WebhookResult:
    """What became of one webhook attempt."""

    delivered: bool  # a 2xx within the timeout
    status: int | None  # the HTTP status, when the receiver answered
    retryable: bool  # worth sending again later (same webhook-id)
    reason: str


class Receipts(Protocol):
    """SES's receipts of accepted emails, by fire id (recorded by Feedback, read by Send)."""

    def record(self, fire_id: str, message_id: str, at: datetime) -> None:
        """Idempotent: recording the same receipt twice keeps one."""
        ...

    def find(self, fire_id: str) -> Receipt | None: ...


class ReceiptFailures(Protocol):
    """SES events Feedback could not record (its failure queue): any may be a receipt."""

    def waiting(self) -> int: ...


class Mailer(Protocol):
    def send(self, outgoing: Outgoing, epoch_seconds: float) -> str:
        """Sends; returns the provider's message id. Raises Unavailable when the provider
        says 'later' (throttling, a 5xx): the same message may be tried again."""
        ...


class WebhookPoster(Protocol):
    @property
    def timeout(self) -> float:
        """The longest one attempt waits for the receiver, in seconds."""
        ...

    def send(self, url: str, message_id: str, payload: dict[str, Any]) -> WebhookResult:
        """Posts once, signed, with ``message_id`` as its webhook-id; a refused URL, no
        answer or a non-2xx is in the result, never raised."""
        ...
