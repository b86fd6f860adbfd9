"""Signed webhooks over real HTTP to receivers on 127.0.0.1: delivery, retries, redirects, TLS."""

from __future__ import annotations

import datetime as dt
import ssl
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from nudge.adapters.webhook import USER_AGENT, WebhookSender
from standardwebhooks import Webhook

from bench.receiver import CLOSE, HANG, Answer, Receiver, Redirect

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
LOCAL = frozenset({"127.0.0.1"})
PAYLOAD: dict[str, Any] = {"trigger": "cart-abandoned", "person": "u:42", "items": ["é", 3]}
HANG_SECONDS = 2.0  # how long a hanging receiver holds the request, at most


@pytest.fixture
def receivers() -> Iterator[Callable[[Answer], Receiver]]:
    """Starts receivers that give every request the same answer; stops them after the test."""
    started: list[Receiver] = []

    def start(answer: Answer) -> Receiver:
        started.append(Receiver(otherwise=answer, hang_seconds=HANG_SECONDS).start())
        return started[-1]

    yield start
    for receiver in started:
        receiver.stop()


@pytest.fixture
def sender() -> WebhookSender:
    return WebhookSender(SECRET, allow_hosts=LOCAL, timeout=0.5)


def test_a_2xx_receiver_gets_a_body_whose_signature_verifies(receivers, sender):
    """A receiver answering 204 gets the JSON payload, and the Standard Webhooks check passes."""
    # given
    receiver = receivers(204)

    # when
    result = sender.send(receiver.url, "msg_1", PAYLOAD)

    # then
    assert result.delivered
    assert (result.status, result.retryable) == (204, False)
    (request,) = receiver.requests
    assert Webhook(SECRET).verify(request.body, request.headers) == PAYLOAD
    assert request.headers["content-type"] == "application/json"
    assert request.headers["webhook-id"] == "msg_1"
    assert request.headers["user-agent"] == USER_AGENT
    assert "Nudge" in USER_AGENT


def test_the_timestamp_is_the_real_time_of_the_attempt(receivers, sender):
    """webhook-timestamp is the wall clock at the attempt, which the receiver's verify accepts."""
    # given
    receiver = receivers(200)
    before = int(datetime.now(UTC).timestamp())

    # when
    sender.send(receiver.url, "msg_real", PAYLOAD)

    # then
    after = int(datetime.now(UTC).timestamp())
    (request,) = receiver.requests
    assert before <= int(request.headers["webhook-timestamp"]) <= after
    assert Webhook(SECRET).verify(request.body, request.headers) == PAYLOAD


def test_the_timestamp_is_the_wall_clock_whatever_its_time_zone(receivers):
    """webhook-timestamp is the wall clock in Unix seconds, and signs correctly when not UTC."""
    # given
    receiver = receivers(200)
    attempted = datetime.now(UTC).astimezone(timezone(timedelta(hours=-5)))
    sender = WebhookSender(SECRET, allow_hosts=LOCAL, timeout=0.5, wall_clock=lambda: attempted)

    # when
    sender.send(receiver.url, "msg_tz", PAYLOAD)

    # then
    (request,) = receiver.requests
    assert request.headers["webhook-timestamp"] == str(int(attempted.timestamp()))
    Webhook(SECRET).verify(request.body, request.headers)


def test_a_retry_carries_the_same_webhook_id(receivers):
    """Sending the same message again (later) repeats its webhook-id so receivers can dedupe."""
    # given
    receiver = receivers(200)
    first = datetime.now(UTC)
    attempts = iter([first - dt.timedelta(seconds=30), first])
    sender = WebhookSender(
        SECRET, allow_hosts=LOCAL, timeout=0.5, wall_clock=lambda: next(attempts)
    )

    # when
    sender.send(receiver.url, "msg_retry", PAYLOAD)
    sender.send(receiver.url, "msg_retry", PAYLOAD)

    # then
    ids = [request.headers["webhook-id"] for request in receiver.requests]
    stamps = {request.headers["webhook-timestamp"] for request in receiver.requests}
    assert ids == ["msg_retry", "msg_retry"]
    assert len(stamps) == 2


def test_a_500_is_retryable_and_not_delivered(receivers, sender):
    """A receiver failing with 500 is worth retrying, and the message is not delivered."""
    # given
    receiver = receivers(500)

    # when
    result = sender.send(receiver.url, "msg_500", PAYLOAD)

    # then
    assert (result.delivered, result.status, result.retryable) == (False, 500, True)


@pytest.mark.parametrize(
    ("status", "retryable"), [(400, False), (404, False), (408, True), (429, True)]
)
def test_4xx_is_final_except_timeout_and_throttling(receivers, sender, status, retryable):
    """A 4xx is the receiver refusing for good, except 408 and 429, which ask to come back."""
    # given
    receiver = receivers(status)

    # when
    result = sender.send(receiver.url, "msg_4xx", PAYLOAD)

    # then
    assert (result.delivered, result.status, result.retryable) == (False, status, retryable)


def test_a_receiver_that_hangs_past_the_timeout_is_retryable(receivers, sender):
    """A receiver that holds the request beyond the timeout is given up on and retried later."""
    # given
    receiver = receivers(HANG)

    # when
    started = datetime.now(UTC)
    result = sender.send(receiver.url, "msg_hang", PAYLOAD)
    waited = datetime.now(UTC) - started

    # then
    assert (result.delivered, result.status, result.retryable) == (False, None, True)
    assert waited < dt.timedelta(seconds=HANG_SECONDS)


def test_a_redirect_to_loopback_is_not_followed(receivers, sender):
    """A 302 to another local receiver is reported, not delivered, not retried and not followed."""
    # given
    target = receivers(200)
    receiver = receivers(Redirect(target.url))

    # when
    result = sender.send(receiver.url, "msg_302", PAYLOAD)

    # then
    assert (result.delivered, result.status, result.retryable) == (False, 302, False)
    assert target.url in result.reason
    assert target.requests == []


def test_a_redirect_to_a_private_address_is_not_followed(receivers):
    """A 302 to a name for 10.0.0.1 is reported as a redirect; the name is never even looked up."""
    # given
    lookups: list[str] = []

    def resolve(host: str) -> list[str]:
        lookups.append(host)
        return ["10.0.0.1"]

    sender = WebhookSender(SECRET, allow_hosts=LOCAL, timeout=0.5, resolve=resolve)
    location = "http://internal.test/latest/meta-data/"
    receiver = receivers(Redirect(location))

    # when
    result = sender.send(receiver.url, "msg_302_private", PAYLOAD)

    # then
    assert (result.delivered, result.status, result.retryable) == (False, 302, False)
    assert location in result.reason
    assert lookups == []


def test_a_receiver_that_closes_without_answering_is_retryable(receivers, sender):
    """A connection closed before any response is a failed attempt worth retrying."""
    # given
    receiver = receivers(CLOSE)

    # when
    result = sender.send(receiver.url, "msg_closed", PAYLOAD)

    # then
    assert (result.delivered, result.status, result.retryable) == (False, None, True)
    assert len(receiver.requests) == 1


def test_a_refused_connection_is_retryable(receivers, sender):
    """Nothing listening at the port is a connection error worth retrying."""
    # given
    receiver = receivers(200)
    url = receiver.url
    receiver.stop()

    # when
    result = sender.send(url, "msg_refused", PAYLOAD)

    # then
    assert (result.delivered, result.status, result.retryable) == (False, None, True)


def test_the_host_is_resolved_once_and_sent_as_the_host_header(receivers):
    """An allow-listed name is looked up once; the checked address is dialled with its Host."""
    # given
    receiver = receivers(200)
    lookups: list[str] = []

    def resolve(host: str) -> list[str]:
        lookups.append(host)
        return ["127.0.0.1"]

    sender = WebhookSender(SECRET, allow_hosts=frozenset({"hooks.test"}), resolve=resolve)

    # when
    result = sender.send(f"http://hooks.test:{receiver.port}/in?x=1", "m", PAYLOAD)

    # then
    assert result.delivered
    assert lookups == ["hooks.test"]
    (request,) = receiver.requests
    assert request.headers["Host"] == f"hooks.test:{receiver.port}"
    assert request.path == "/in?x=1"


def test_https_names_the_host_in_sni_and_checks_its_certificate(tmp_path: Path):
    """Over https the checked address is dialled with SNI for the host; an untrusted cert fails."""
    # given
    seen: list[str | None] = []
    receiver = Receiver(otherwise=200).start(tls=_self_signed_tls("hooks.test", tmp_path, seen))
    sender = WebhookSender(
        SECRET, allow_hosts=frozenset({"hooks.test"}), timeout=0.5, resolve=lambda _: ["127.0.0.1"]
    )

    # when
    try:
        result = sender.send(f"https://hooks.test:{receiver.port}/", "m", PAYLOAD)
    finally:
        receiver.stop()

    # then
    assert (result.delivered, result.retryable) == (False, True)
    assert "TLS" in result.reason
    assert seen == ["hooks.test"]
    assert receiver.requests == []


def _self_signed_tls(host: str, where: Path, seen: list[str | None]) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    (where / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (where / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(where / "cert.pem", where / "key.pem")
    context.sni_callback = lambda _sock, server_name, _ctx: seen.append(server_name)
    return context


NEW_SECRET = "whsec_bmV3LXdlYmhvb2stc2lnbmluZy1zZWNyZXQ="


@pytest.mark.parametrize("receiver_holds", [NEW_SECRET, SECRET])
def test_during_a_rotation_a_receiver_holding_either_secret_verifies(receivers, receiver_holds):
    """With "new,old", the header carries a signature for each secret, so a receiver that
    has moved to the new secret and one that still has the old both accept the webhook."""
    # given
    receiver = receivers(200)
    sender = WebhookSender([NEW_SECRET, SECRET], allow_hosts=LOCAL, timeout=0.5)

    # when
    sender.send(receiver.url, "msg_rotation", PAYLOAD)

    # then
    (request,) = receiver.requests
    assert Webhook(receiver_holds).verify(request.body, request.headers) == PAYLOAD


def test_during_a_rotation_the_header_lists_one_signature_per_secret(receivers):
    """The spec's space-delimited list: the new secret's signature first, then the old one's."""
    # given
    receiver = receivers(200)
    at = datetime.now(UTC).replace(microsecond=0)
    sender = WebhookSender([NEW_SECRET, SECRET], allow_hosts=LOCAL, wall_clock=lambda: at)

    # when
    sender.send(receiver.url, "msg_listed", PAYLOAD)

    # then
    (request,) = receiver.requests
    body = request.body.decode()
    expected = [Webhook(s).sign("msg_listed", at, body) for s in (NEW_SECRET, SECRET)]
    assert request.headers["webhook-signature"].split(" ") == expected
