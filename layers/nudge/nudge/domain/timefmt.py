"""One timestamp format everywhere: UTC, millisecond precision, fixed width, so it sorts."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["from_epoch_ms", "hour_of", "iso"]


def iso(moment: datetime) -> str:
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def hour_of(moment: datetime) -> datetime:
    """The UTC hour a moment falls in: people are indexed by the hour they were last seen."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def from_epoch_ms(epoch_ms: int) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
