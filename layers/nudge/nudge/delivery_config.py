"""Delivery's settings: Send's addresses, caps and webhook, the link-signing secrets (Send
and Track), the WebSocket endpoint (Socket). Read from the environment once, at cold start,
and checked there, as ``nudge.config``'s; apart from them so that the functions that deliver
nothing (Evaluate, Ingest, Reports...) do not build these classes on their cold start."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from nudge.config import ConfigError
from nudge.domain.durations import parse_duration

__all__ = [
    "MAX_WEBHOOK_TIMEOUT",
    "DeliverySettings",
    "SocketSettings",
    "TrackingSettings",
    "tracking_secrets",
    "webhook_secrets",
]


@dataclass(frozen=True)
class TrackingSettings:
    """The key that signs and verifies the tokens in email links (open, click, unsubscribe),
    and the retired keys that still verify them while a rotation runs its course."""

    secret: bytes
    retired: tuple[bytes, ...] = ()

    @classmethod
    def of(cls, value: str) -> TrackingSettings:
        """From the tracking secret parameter's value, ``new,old``."""
        current, *retired = tracking_secrets(value)
        return cls(secret=current.encode("utf-8"), retired=tuple(r.encode() for r in retired))


def tracking_secrets(value: str) -> list[str]:
    """``new,old``: the first signs links, every one verifies (a rotation keeps the links
    already sent working until the old key is dropped). At least one."""
    secrets = [part.strip() for part in value.split(",") if part.strip()]
    if not secrets:
        raise ConfigError("the tracking secret parameter holds no secret")
    return secrets


def webhook_secrets(value: str) -> tuple[str, ...]:
    """``new,old``: every webhook carries a signature made with each (Standard Webhooks'
    header is a list of signatures for that reason), so a receiver holding either one
    verifies it while a rotation runs. At least one, each ``whsec_<base64>``."""
    secrets = tuple(part.strip() for part in value.split(",") if part.strip())
    if not secrets:
        raise ConfigError("the webhook secret parameter holds no secret")
    if not all(secret.startswith("whsec_") for secret in secrets):
        raise ConfigError("a webhook secret has the form whsec_<base64>")
    return secrets


@dataclass(frozen=True)
class SocketSettings:
    socket_endpoint: str  # the WebSocket API's URL with its stage (wss://.../live)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SocketSettings:
        endpoint = env.get("NUDGE_SOCKET_ENDPOINT", "")
        if not endpoint.startswith(("wss://", "ws://")):
            raise ConfigError(f"NUDGE_SOCKET_ENDPOINT must be a wss:// URL (got {endpoint!r})")
        return cls(socket_endpoint=endpoint)


@dataclass(frozen=True)
class DeliverySettings:
    from_email: str
    public_url: str
    # SSM SecureString parameters, read once per process by the composition root.
    tracking_secret_parameter: str
    crm_webhook_url: str | None
    webhook_secret_parameter: str | None  # None: no webhook URL, so no secret to read
    webhook_allow_hosts: frozenset[str]
    webhook_timeout: float  # seconds for a receiver to answer; slower counts as not delivered
    configuration_set: str | None
    send_queue_arn: str
    dead_letter_url: str
    receipt_failures_url: str  # Feedback's failure queue: receipts it could not record
    email_per_day: int
    webhook_per_day: int
    in_app_per_day: int
    socket_endpoint: str | None  # the WebSocket API's wss:// URL with its stage; None: no in-app
    trigger_per_day: int
    cooldown: timedelta
    quiet_hours: tuple[str, str]
    default_timezone: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> DeliverySettings:
        required = (
            "NUDGE_FROM_EMAIL",
            "NUDGE_PUBLIC_URL",
            "NUDGE_TRACKING_SECRET_PARAMETER",
            "NUDGE_SEND_QUEUE_ARN",
            "NUDGE_SEND_DLQ_URL",
            "NUDGE_RECEIPT_FAILURES_URL",
        )
        missing = [name for name in required if not env.get(name)]
        if missing:
            raise ConfigError(f"{', '.join(missing)} not set")
        quiet = env.get("NUDGE_QUIET_HOURS", "21:00-08:00").split("-")
        if len(quiet) != 2:
            raise ConfigError("NUDGE_QUIET_HOURS must look like 21:00-08:00")
        zone = env.get("NUDGE_DEFAULT_TIMEZONE", "UTC")
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"NUDGE_DEFAULT_TIMEZONE: {zone!r} is not a time zone") from None
        webhook_url = env.get("NUDGE_CRM_WEBHOOK_URL") or None
        webhook_secret = env.get("NUDGE_WEBHOOK_SECRET_PARAMETER") or None
        if webhook_url and not webhook_secret:
            raise ConfigError(
                "NUDGE_CRM_WEBHOOK_URL is set but NUDGE_WEBHOOK_SECRET_PARAMETER is not"
            )
        allow = frozenset(
            h.strip() for h in env.get("NUDGE_WEBHOOK_ALLOW_HOSTS", "").split(",") if h.strip()
        )
        _check_webhook_url(env.get("NUDGE_CRM_WEBHOOK_URL") or "", allow)
        timeout = _webhook_timeout(env.get("NUDGE_WEBHOOK_TIMEOUT", "5"))
        try:
            return cls(
                from_email=env["NUDGE_FROM_EMAIL"],
                public_url=env["NUDGE_PUBLIC_URL"],
                tracking_secret_parameter=env["NUDGE_TRACKING_SECRET_PARAMETER"],
                crm_webhook_url=webhook_url,
                webhook_secret_parameter=webhook_secret if webhook_url else None,
                webhook_allow_hosts=allow,
                webhook_timeout=timeout,
                configuration_set=env.get("NUDGE_SES_CONFIGURATION_SET") or None,
                send_queue_arn=env["NUDGE_SEND_QUEUE_ARN"],
                dead_letter_url=env["NUDGE_SEND_DLQ_URL"],
                receipt_failures_url=env["NUDGE_RECEIPT_FAILURES_URL"],
                email_per_day=int(env.get("NUDGE_EMAIL_PER_DAY", "3")),
                webhook_per_day=int(env.get("NUDGE_WEBHOOK_PER_DAY", "50")),
                in_app_per_day=int(env.get("NUDGE_IN_APP_PER_DAY", "10")),
                socket_endpoint=env.get("NUDGE_SOCKET_ENDPOINT") or None,
                trigger_per_day=int(env.get("NUDGE_TRIGGER_PER_DAY", "1")),
                cooldown=parse_duration(env.get("NUDGE_COOLDOWN", "0")),
                quiet_hours=(quiet[0].strip(), quiet[1].strip()),
                default_timezone=env.get("NUDGE_DEFAULT_TIMEZONE", "UTC"),
            )
        except ValueError as error:
            raise ConfigError(str(error)) from None


MAX_WEBHOOK_TIMEOUT = 20.0  # Send's own timeout is 30 s, and a batch may hold other work


def _webhook_timeout(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise ConfigError(f"NUDGE_WEBHOOK_TIMEOUT: {text!r} is not a number of seconds") from None
    if not 0 < seconds <= MAX_WEBHOOK_TIMEOUT:
        raise ConfigError(
            f"NUDGE_WEBHOOK_TIMEOUT must be more than 0 and at most {MAX_WEBHOOK_TIMEOUT:g}"
            f" seconds (got {text})"
        )
    return seconds


def _check_webhook_url(url: str, allow_hosts: frozenset[str]) -> None:
    """Refused at cold start, before any fire: a webhook URL that is not public HTTPS.

    Each attempt still resolves and checks the address (adapters/webhook.py); this only
    catches what the URL itself gives away."""
    if not url:
        return
    parsed = urlsplit(url)
    host = (parsed.hostname or "").lower()
    if host in allow_hosts:
        return
    if parsed.scheme != "https":
        raise ConfigError(
            f"NUDGE_CRM_WEBHOOK_URL must be https (got {parsed.scheme or 'no scheme'}://)"
        )
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return  # a name: checked when it is resolved, on every attempt
    if not address.is_global:
        raise ConfigError(
            f"NUDGE_CRM_WEBHOOK_URL points at {address}, which is not a public address"
        )
