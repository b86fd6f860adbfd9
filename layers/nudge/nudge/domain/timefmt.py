"""One timestamp format everywhere: UTC, millisecond precision, fixed width, so it sorts."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["from_epoch_ms", "iso"]


def iso(moment: datetime) -> str:
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def from_epoch_ms(epoch_ms: int) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC)
