"""Local stack soak: a steady rate for a while, memory and handles watched.

``python -m local`` runs as a subprocess on free 127.0.0.1 ports. One client sends
``/v1/batch`` requests of 10 analytics.js-shaped track events (200 users in turn) at a
steady rate, and every ``CLOCK_EVERY`` seconds advances the virtual clock by an hour, so
timers fire, the hourly sweep runs and DynamoDB Streams' 24-hour retention passes many
times over (the stream poller drops images older than that: a stack that kept them grew
about 1 GB a minute). Every ``SAMPLE_EVERY`` seconds it reads, for each process of the
stack's group, the resident memory (``VmRSS``), threads (``Threads``) and open file
descriptors (``/proc/<pid>/fd``). Reported per process: the value after warm-up beside the
value at the end (the baseline is the stack's own state once warm), and the memory slope in
MB a minute, least squares over the second half of the run. Then ``POST /_local/drain``
must leave nothing behind. Linux only (/proc).

Events are kept one day (the template's ``RetentionDays`` at its minimum, passed as
``NUDGE_RETENTION_DAYS``), so from the 24th virtual hour (the 4th minute) the stack's TTL
sweep (local/ttl.py) deletes events as fast as they arrive, as DynamoDB's TTL would.

``NUDGE_SOAK_MINUTES`` sets the length (3 by default; the published run is 30).
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import requests
from rich.console import Console

from bench.common import (
    STACK_WRITE_KEY,
    Figures,
    group_processes,
    running_stack,
    side_by_side,
    track_message,
)

__all__ = ["run"]

REQUESTS_PER_SECOND = 5
EVENTS_PER_REQUEST = 10
USERS = 200
SAMPLE_EVERY = 15.0
CLOCK_EVERY = 10.0
CLOCK_STEP = timedelta(hours=1)
WARM_UP = 60.0
RETENTION_DAYS = 1


@dataclass
class Sample:
    at: float  # seconds since the start
    rss_mb: float
    threads: int
    fds: int


@dataclass
class Soak:
    samples: dict[int, list[Sample]] = field(default_factory=lambda: defaultdict(list))
    names: dict[int, str] = field(default_factory=dict)
    accepted: int = 0
    refused: int = 0
    virtual_hours: int = 0
    drain_seconds: float = 0.0


def run(console: Console) -> Figures:
    minutes = float(os.environ.get("NUDGE_SOAK_MINUTES", "3"))
    soak = _soak(minutes * 60)
    rows = [_row(soak, pid) for pid in sorted(soak.samples)]
    console.print(
        side_by_side(
            f"Soak: {minutes:g} min at {REQUESTS_PER_SECOND * EVENTS_PER_REQUEST} events/s, "
            f"{soak.accepted:,} accepted, {soak.refused} refused, clock +{soak.virtual_hours} h, "
            f"drained in {soak.drain_seconds:.1f} s",
            ["process", "RSS MB warm → end", "MB/min (2nd half)", "threads", "fds"],
            rows,
        )
    )
    return {
        "minutes": minutes,
        "accepted": soak.accepted,
        "refused": soak.refused,
        "virtual_hours": soak.virtual_hours,
        "drain_seconds": soak.drain_seconds,
        "processes": {
            soak.names[pid]: {
                "rss_mb": [s.rss_mb for s in samples],
                "slope_mb_per_min": _slope(samples),
                "threads": [samples[0].threads, samples[-1].threads],
                "fds": [samples[0].fds, samples[-1].fds],
            }
            for pid, samples in soak.samples.items()
        },
    }


def _soak(seconds: float) -> Soak:
    soak = Soak()
    retention = {"NUDGE_RETENTION_DAYS": str(RETENTION_DAYS)}
    with running_stack(retention) as stack, requests.Session() as http:
        http.auth = (STACK_WRITE_KEY, "")
        now = datetime.fromisoformat(http.get(f"{stack.base}/_local/clock").json()["now"])
        started = time.monotonic()
        next_sample = next_clock = 0.0
        index = 0
        while (elapsed := time.monotonic() - started) < seconds:
            if elapsed >= next_clock:
                now = _advance(http, stack.base, CLOCK_STEP)
                soak.virtual_hours += 1
                next_clock += CLOCK_EVERY
            if elapsed >= next_sample:
                _sample(soak, stack.process.pid, elapsed)
                next_sample += SAMPLE_EVERY
            index = _send(http, stack.base, now, index, soak)
            time.sleep(max(0.0, 1 / REQUESTS_PER_SECOND - (time.monotonic() - started - elapsed)))
        _sample(soak, stack.process.pid, time.monotonic() - started)
        drain = time.monotonic()
        http.post(f"{stack.base}/_local/drain", timeout=None).raise_for_status()
        soak.drain_seconds = time.monotonic() - drain
    return soak


def _send(http: requests.Session, base: str, now: datetime, index: int, soak: Soak) -> int:
    batch = [
        track_message(f"soak-{(index + n) % USERS}", index + n, "soak", now)
        for n in range(EVENTS_PER_REQUEST)
    ]
    answer = http.post(f"{base}/v1/batch", json={"batch": batch}, timeout=30)
    if answer.status_code == 200:
        soak.accepted += len(batch)
    else:
        soak.refused += len(batch)
    return index + EVENTS_PER_REQUEST


def _advance(http: requests.Session, base: str, step: timedelta) -> datetime:
    answer = http.post(
        f"{base}/_local/clock/advance", json={"seconds": step.total_seconds()}, timeout=None
    )
    answer.raise_for_status()
    return datetime.fromisoformat(answer.json()["now"])


def _sample(soak: Soak, pgid: int, elapsed: float) -> None:
    for pid in group_processes(pgid):
        status = _status(pid)
        if status is None:
            continue
        try:
            fds = len(os.listdir(f"/proc/{pid}/fd"))
        except OSError:
            continue
        soak.names.setdefault(pid, _name(pid))
        soak.samples[pid].append(
            Sample(elapsed, int(status["VmRSS"].split()[0]) / 1024, int(status["Threads"]), fds)
        )


def _status(pid: int) -> dict[str, str] | None:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in lines if ":" in line)
    return {name: value.strip() for name, value in fields.items()} if "VmRSS" in fields else None


def _name(pid: int) -> str:
    command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    role = "stack (moto, poller, gateway)" if command.endswith("-m local") else "worker"
    return f"{pid} {role}"


def _slope(samples: list[Sample]) -> float:
    """MB a minute, least squares over the second half of the run (after warm-up)."""
    half = samples[len(samples) // 2 :]
    if len(half) < 2:
        return 0.0
    mean_t = sum(s.at for s in half) / len(half)
    mean_m = sum(s.rss_mb for s in half) / len(half)
    spread = sum((s.at - mean_t) ** 2 for s in half)
    if spread == 0:
        return 0.0
    per_second = sum((s.at - mean_t) * (s.rss_mb - mean_m) for s in half) / spread
    return per_second * 60


def _row(soak: Soak, pid: int) -> list[str]:
    samples = soak.samples[pid]
    warm = next((s for s in samples if s.at >= WARM_UP), samples[0])
    last = samples[-1]
    return [
        soak.names[pid],
        f"{warm.rss_mb:.0f} → {last.rss_mb:.0f}",
        f"{_slope(samples):+.2f}",
        f"{warm.threads} → {last.threads}",
        f"{warm.fds} → {last.fds}",
    ]
