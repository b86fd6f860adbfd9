"""Settings read from the environment once, at cold start, and checked there."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from nudge.domain.durations import parse_duration
from nudge.domain.intake import Limits

__all__ = ["ConfigError", "Settings"]


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
