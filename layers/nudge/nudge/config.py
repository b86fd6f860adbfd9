"""Settings read from the environment once, at cold start, and checked there.

Delivery's (Send, Track, Socket: addresses, caps, link and webhook secrets) are in
``nudge/delivery_config.py``: the other functions, Evaluate first, do not build them at cold
start (bench/README.md, "Handler import time")."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from nudge.domain.durations import parse_duration
from nudge.domain.intake import Limits

__all__ = [
    "ConfigError",
    "EngineSettings",
    "ReadSettings",
    "Settings",
    "TrainSettings",
    "bundled_triggers",
]


class ConfigError(Exception):
    """A deploy-time mistake: the function refuses to start rather than misbehave."""


@dataclass(frozen=True)
class Settings:
    """What every function that touches the table reads: its name, write keys, retention and
    the limits on an event's timestamp."""

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
    """Evaluate's: where fires and timers go, how long decisions are kept, and the triggers,
    predictions and models it runs."""

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
