"""Durations written the way people say them: ``30s``, ``30m``, ``24h``, ``7d``, ``2w``."""

from __future__ import annotations

import re
from datetime import timedelta

__all__ = ["parse_duration", "words"]

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^\s*([0-9]+)\s*([smhdw])\s*$")


def parse_duration(text: str | int) -> timedelta:
    """A bare integer means seconds, so environment variables can stay plain numbers."""
    if isinstance(text, int) or re.fullmatch(r"[0-9]+", text.strip()):
        return timedelta(seconds=int(text))
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration such as 30m, 24h or 7d")
    amount, unit = match.groups()
    return timedelta(seconds=int(amount) * _UNIT_SECONDS[unit])


def words(span: timedelta) -> str:
    """The shortest plain form: 24h, 7d, 90m, 45s."""
    seconds = int(span.total_seconds())
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
