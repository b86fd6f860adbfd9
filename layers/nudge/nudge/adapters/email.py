"""Email through SES v2 as a whole MIME message (Raw content).

Building the MIME message here, rather than using SES's Simple content, keeps every
header ours — List-Unsubscribe, List-Unsubscribe-Post and Nudge's own — and the same
call works on SES and on moto (which drops Simple.Headers but keeps Raw messages whole).
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import TYPE_CHECKING

from nudge.adapters.aws_errors import aws_call
from nudge.service.delivery_ports import Outgoing

if TYPE_CHECKING:
    from mypy_boto3_sesv2 import SESV2Client

__all__ = ["EmailSender", "HeaderInjection", "Outgoing"]


class HeaderInjection(Exception):
    """A header value held a line break: refused rather than let it add headers."""


def build_message(outgoing: Outgoing, epoch_seconds: float) -> EmailMessage:
    for name, value in [
        ("From", outgoing.sender),
        ("To", outgoing.to),
        ("Subject", outgoing.content.subject),
        *outgoing.headers.items(),
    ]:
        if "\r" in value or "\n" in value:
            raise HeaderInjection(f"{name} contains a line break")
    message = EmailMessage()
    message["From"] = outgoing.sender
    message["To"] = outgoing.to
    message["Subject"] = outgoing.content.subject
    message["Date"] = formatdate(epoch_seconds, usegmt=True)
    message["Message-ID"] = make_msgid(domain=outgoing.sender.rpartition("@")[2] or None)
    # RFC 8058 one-click unsubscribe: mail clients POST "List-Unsubscribe=One-Click" to it.
    message["List-Unsubscribe"] = f"<{outgoing.unsubscribe_url}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    for name, value in outgoing.headers.items():
        message[name] = value
    message.set_content(outgoing.content.text)
    message.add_alternative(outgoing.content.html, subtype="html")
    return message


class EmailSender:
    def __init__(self, client: SESV2Client, configuration_set: str | None) -> None:
        self._client = client
        self._configuration_set = configuration_set

    def send(self, outgoing: Outgoing, epoch_seconds: float) -> str:
        """Sends; returns SES's message id. Raises Unavailable when SES says 'later'
        (throttling, a 5xx): the same message may be tried again."""
        raw = build_message(outgoing, epoch_seconds).as_bytes()
        request: dict[str, object] = {
            "FromEmailAddress": outgoing.sender,
            "Destination": {"ToAddresses": [outgoing.to]},
            "Content": {"Raw": {"Data": raw}},
        }
        if self._configuration_set:
            request["ConfigurationSetName"] = self._configuration_set
        if outgoing.tags:
            request["EmailTags"] = [{"Name": k, "Value": v} for k, v in outgoing.tags.items()]
        with aws_call("SES send_email"):
            response = self._client.send_email(**request)  # type: ignore[arg-type]
        return str(response.get("MessageId", ""))
