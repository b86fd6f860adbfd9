"""Settings read from the environment once, at cold start, and checked there."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from nudge.domain.durations import parse_duration
from nudge.domain.intake import Limits

__all__ = ["ConfigError", "EngineSettings", "Settings", "bundled_triggers"]


class ConfigError(Exception):
    """A deploy-time mistake: the function refuses to start rather than misbehave."""


@dataclass(frozen=True)
class Settings:
    table_name: str
    write_keys: frozenset[str]
    retention: timedelta
    limits: Limits

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
        keys = frozenset(
            key.strip() for key in env.get("NUDGE_WRITE_KEY", "").split(",") if key.strip()
        )
        return cls(
            table_name=table,
            write_keys=keys,
            retention=retention,
            limits=Limits(max_past=max_past, max_future=max_future),
        )


def bundled_triggers() -> Path:
    """The trigger files shipped beside the package (in the layer: /opt/python/triggers)."""
    return Path(__file__).resolve().parent.parent / "triggers"


@dataclass(frozen=True)
class EngineSettings:
    send_queue_url: str
    schedule_group: str
    scheduler_role_arn: str
    decision_ttl: timedelta
    triggers_dir: Path

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> EngineSettings:
        missing = [
            name
            for name in ("NUDGE_SEND_QUEUE_URL", "NUDGE_SCHEDULE_GROUP", "NUDGE_SCHEDULER_ROLE_ARN")
            if not env.get(name)
        ]
        if missing:
            raise ConfigError(f"{', '.join(missing)} not set")
        try:
            ttl = timedelta(days=int(env.get("NUDGE_DECISION_TTL_DAYS", "30")))
        except ValueError as error:
            raise ConfigError(f"NUDGE_DECISION_TTL_DAYS: {error}") from None
        return cls(
            send_queue_url=env["NUDGE_SEND_QUEUE_URL"],
            schedule_group=env["NUDGE_SCHEDULE_GROUP"],
            scheduler_role_arn=env["NUDGE_SCHEDULER_ROLE_ARN"],
            decision_ttl=ttl,
            triggers_dir=Path(env.get("NUDGE_TRIGGERS_DIR") or bundled_triggers()),
        )
