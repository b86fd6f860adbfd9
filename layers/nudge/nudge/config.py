"""Settings read from the environment once, at cold start, and checked there."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from nudge.domain.durations import parse_duration
from nudge.domain.intake import Limits

__all__ = [
    "ConfigError",
    "DeliverySettings",
    "EngineSettings",
    "ReadSettings",
    "Settings",
    "TrackingSettings",
    "TrainSettings",
    "bundled_triggers",
    "tracking_secrets",
    "webhook_secrets",
]


class ConfigError(Exception):
    """A deploy-time mistake: the function refuses to start rather than misbehave."""


@dataclass(frozen=True)
class Settings:
    table_name: str
    write_keys: frozenset[str]
    retention: timedelta
    limits: Limits
    sweep_shards: int = 1  # by_seen_hour partitions per hour; may be raised, never lowered

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        table = env.get("NUDGE_TABLE_NAME", "")
        if not table:
            raise ConfigError("NUDGE_TABLE_NAME is not set")
        try:
            retention = timedelta(days=int(env.get("NUDGE_RETENTION_DAYS", "90")))
            max_past = parse_duration(env.get("NUDGE_MAX_PAST", "30d"))
            max_future = parse_duration(env.get("NUDGE_MAX_FUTURE", "1h"))
        except ValueError as error:
            raise ConfigError(str(error)) from None
        if retention <= timedelta(0):
            raise ConfigError("NUDGE_RETENTION_DAYS must be a positive number of days")
        shards = _sweep_shards(env.get("NUDGE_SWEEP_SHARDS", "1"))
        keys = frozenset(
            key.strip() for key in env.get("NUDGE_WRITE_KEY", "").split(",") if key.strip()
        )
        return cls(
            table_name=table,
            write_keys=keys,
            retention=retention,
            limits=Limits(max_past=max_past, max_future=max_future),
            sweep_shards=shards,
        )


MAX_SWEEP_SHARDS = 32


def _sweep_shards(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_SWEEP_SHARDS:
        raise ConfigError(f"NUDGE_SWEEP_SHARDS must be 1 to {MAX_SWEEP_SHARDS} (got {text!r})")
    return int(text)


def bundled_triggers() -> Path:
    """The trigger files shipped beside the package (in the layer: /opt/python/triggers)."""
    return Path(__file__).resolve().parent.parent / "triggers"


def bundled(folder: str) -> Path:
    """A folder shipped beside the package, as the triggers are (predictions, models)."""
    return Path(__file__).resolve().parent.parent / folder


@dataclass(frozen=True)
class EngineSettings:
    send_queue_url: str
    schedule_group: str
    scheduler_role_arn: str
    decision_ttl: timedelta
    triggers_dir: Path
    # The predictions scored on every event, and their trained artefacts (<id>.json).
    predictions_dir: Path
    models_dir: Path
    # On AWS the models are in this bucket (models/<id>.json), and models_dir is not read.
    models_bucket: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> EngineSettings:
        missing = [
            name
            for name in ("NUDGE_SEND_QUEUE_URL", "NUDGE_SCHEDULE_GROUP", "NUDGE_SCHEDULER_ROLE_ARN")
            if not env.get(name)
        ]
        if missing:
            raise ConfigError(f"{', '.join(missing)} not set")
        return cls(
            send_queue_url=env["NUDGE_SEND_QUEUE_URL"],
            schedule_group=env["NUDGE_SCHEDULE_GROUP"],
            scheduler_role_arn=env["NUDGE_SCHEDULER_ROLE_ARN"],
            decision_ttl=_decision_ttl(env),
            triggers_dir=Path(env.get("NUDGE_TRIGGERS_DIR") or bundled_triggers()),
            predictions_dir=_folder(env, "NUDGE_PREDICTIONS_DIR", "predictions"),
            models_dir=_folder(env, "NUDGE_MODELS_DIR", "models"),
            models_bucket=env.get("NUDGE_MODELS_BUCKET", ""),
        )


@dataclass(frozen=True)
class TrainSettings:
    """The Train function's: the predictions to retrain and the bucket their models live in."""

    predictions_dir: Path
    models_bucket: str
    people: int  # trained on a sample of at most this many people (``PeopleSample``)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> TrainSettings:
        from nudge.domain.predictions.sample import TRAINING_PEOPLE

        bucket = env.get("NUDGE_MODELS_BUCKET", "")
        if not bucket:
            raise ConfigError("NUDGE_MODELS_BUCKET is not set")
        try:
            people = int(env.get("NUDGE_TRAIN_PEOPLE") or TRAINING_PEOPLE)
        except ValueError as error:
            raise ConfigError(f"NUDGE_TRAIN_PEOPLE: {error}") from None
        if people < 1:
            raise ConfigError("NUDGE_TRAIN_PEOPLE: at least 1")
        return cls(
            predictions_dir=_folder(env, "NUDGE_PREDICTIONS_DIR", "predictions"),
            models_bucket=bucket,
            people=people,
        )


def _folder(env: Mapping[str, str], variable: str, shipped: str) -> Path:
    return Path(env.get(variable) or bundled(shipped))


def _decision_ttl(env: Mapping[str, str]) -> timedelta:
    try:
        return timedelta(days=int(env.get("NUDGE_DECISION_TTL_DAYS", "30")))
    except ValueError as error:
        raise ConfigError(f"NUDGE_DECISION_TTL_DAYS: {error}") from None


@dataclass(frozen=True)
class ReadSettings:
    """Reading the table back (`nudge explain`, the local stack's control API) needs none
    of a function's wiring, so it works from a laptop with credentials and a table name.
    The decision TTL is here because the engine store that reads decisions also writes them.
    The predictions and models are Evaluate's (the same variables, the same defaults), so
    explain takes a score apart with the model that gave it."""

    decision_ttl: timedelta
    predictions_dir: Path
    models_dir: Path
    models_bucket: str = ""  # as Evaluate's: when set, the models are read from it

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ReadSettings:
        return cls(
            decision_ttl=_decision_ttl(env),
            predictions_dir=_folder(env, "NUDGE_PREDICTIONS_DIR", "predictions"),
            models_dir=_folder(env, "NUDGE_MODELS_DIR", "models"),
            models_bucket=env.get("NUDGE_MODELS_BUCKET", ""),
        )


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
