"""Local stack idle: the CPU the stack burns while nobody sends it anything.

``python -m local`` runs as a subprocess in its own session on free 127.0.0.1 ports, so its
process group is the stack's main process plus what it spawns: the function workers and
multiprocessing's resource tracker ("workers" below). Once /_local/health answers 200 and
the workers have gone quiet (they import their handlers after the stack already answers),
the CPU time (utime + stime in /proc/<pid>/stat) of every process of that group is read
before and after an idle window, and reported as a share of one core: in all, for the main
process, and for the workers. The baseline, measured the same way over the same window, is
a bare moto server (``ThreadedMotoServer`` in an interpreter that only sleeps): the floor,
since the stack serves moto in its main process. Linux only (/proc).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import requests
from rich.console import Console

from bench.common import (
    REPO,
    Figures,
    GroupProcess,
    free_port,
    group_processes,
    running_stack,
    side_by_side,
    stop_group,
)

__all__ = ["run"]

IDLE_SECONDS = 30.0  # NUDGE_BENCH_IDLE_SECONDS may shorten it for a quick run
SETTLE_SECONDS = 5.0  # at least, after /_local/health answers; then until the workers are quiet
SETTLE_TIMEOUT = 60.0
QUIET_CPU = 0.01  # CPU seconds a worker may use in one second and count as quiet (1 tick)
GOAL_PERCENT = 2.0  # of one core, the whole stack idle
MOTO_START_TIMEOUT = 30.0
_MOTO_ALONE = """\
import sys, threading
from moto.server import ThreadedMotoServer
ThreadedMotoServer(ip_address="127.0.0.1", port=int(sys.argv[1]), verbose=False).start()
threading.Event().wait()
"""


@dataclass(frozen=True)
class Idle:
    """CPU seconds of one process group over the window, split main process / the rest."""

    main_seconds: float
    worker_seconds: float
    workers: int
    exited: int  # processes gone by the end: their CPU in the window is not counted
    window: float

    def figures(self) -> dict[str, Any]:
        return {
            "total_percent": self.percent(self.main_seconds + self.worker_seconds),
            "main_percent": self.percent(self.main_seconds),
            "workers_percent": self.percent(self.worker_seconds),
            "main_cpu_seconds": self.main_seconds,
            "workers_cpu_seconds": self.worker_seconds,
            "workers": self.workers,
            "exited_during_window": self.exited,
            "window_seconds": self.window,
        }

    def percent(self, cpu_seconds: float) -> float:
        return 100 * cpu_seconds / self.window


def _idle_seconds() -> float:
    wanted = os.environ.get("NUDGE_BENCH_IDLE_SECONDS")
    if not wanted:
        return IDLE_SECONDS
    seconds = float(wanted)
    if not 0 < seconds <= IDLE_SECONDS:
        raise ValueError(f"NUDGE_BENCH_IDLE_SECONDS: from 0 to {IDLE_SECONDS:g}, got {wanted}")
    return seconds


@contextlib.contextmanager
def _moto_alone() -> Iterator[subprocess.Popen[bytes]]:
    """A bare moto server on a free port, in its own session, answering HTTP."""
    port = free_port()
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_")}
    process = subprocess.Popen(
        [sys.executable, "-c", _MOTO_ALONE, str(port)],
        cwd=str(REPO),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + MOTO_START_TIMEOUT
        while not _answers(f"http://127.0.0.1:{port}/moto-api/"):
            if process.poll() is not None:
                raise RuntimeError(f"the moto server exited with {process.returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError("the moto server did not answer /moto-api/")
            time.sleep(0.2)
        yield process
    finally:
        stop_group(process)


def _answers(url: str) -> bool:
    with contextlib.suppress(requests.RequestException):
        return requests.get(url, timeout=2).status_code == 200
    return False


def _idle(
    pgid: int, before: dict[int, GroupProcess], after: dict[int, GroupProcess], window: float
) -> Idle:
    """A process that started during the window counts from 0; one that ended is lost."""
    if pgid not in after or not after[pgid].alive:
        raise RuntimeError(f"process {pgid} exited while it was measured idle")
    used = {
        pid: process.cpu_seconds - (before[pid].cpu_seconds if pid in before else 0.0)
        for pid, process in after.items()
        if process.alive
    }
    main = used.pop(pgid)
    return Idle(
        main_seconds=main,
        worker_seconds=sum(used.values(), 0.0),
        workers=len(used),
        exited=len(set(before) - set(used) - {pgid}),
        window=window,
    )


def _settle(pgids: list[int]) -> tuple[float, bool]:
    """SETTLE_SECONDS, then until no process but the groups' leaders used more than QUIET_CPU
    in a second: the stack answers /_local/health while its workers still import their
    handlers, which on a loaded machine goes on for seconds. Returns the seconds it took
    and whether the workers went quiet before SETTLE_TIMEOUT."""
    started = time.monotonic()
    time.sleep(SETTLE_SECONDS)
    previous = [group_processes(pgid) for pgid in pgids]
    while time.monotonic() - started < SETTLE_TIMEOUT:
        time.sleep(1.0)
        current = [group_processes(pgid) for pgid in pgids]
        busy = [
            pid
            for pgid, before, after in zip(pgids, previous, current, strict=True)
            for pid, process in after.items()
            if pid != pgid
            and pid in before
            and round(process.cpu_seconds - before[pid].cpu_seconds, 3) > QUIET_CPU
        ]
        if not busy and all(set(a) == set(b) for a, b in zip(previous, current, strict=True)):
            return time.monotonic() - started, True
        previous = current
    return time.monotonic() - started, False


def _measure(pgids: list[int], seconds: float) -> list[Idle]:
    """Every group over the same window, read back to back."""
    before = [group_processes(pgid) for pgid in pgids]
    started = time.monotonic()
    time.sleep(seconds)
    after = [group_processes(pgid) for pgid in pgids]
    window = time.monotonic() - started
    return [
        _idle(pgid, first, last, window)
        for pgid, first, last in zip(pgids, before, after, strict=True)
    ]


def _percent(value: float) -> str:
    return f"{value:.2f} %"


def run(console: Console) -> Figures:
    seconds = _idle_seconds()
    with _moto_alone() as moto, running_stack() as stack:
        groups = [stack.process.pid, moto.pid]
        settle_seconds, settled = _settle(groups)
        nudge, baseline = _measure(groups, seconds)
    load = os.getloadavg()
    stack_figures, moto_figures = nudge.figures(), baseline.figures()
    met = stack_figures["total_percent"] < GOAL_PERCENT
    goal = f"< {GOAL_PERCENT:g} %: {'met' if met else 'not met'}"
    rows = [
        [
            "total, % of one core",
            _percent(stack_figures["total_percent"]),
            _percent(moto_figures["total_percent"]),
            goal,
        ],
        [
            "main process, % of one core",
            _percent(stack_figures["main_percent"]),
            _percent(moto_figures["main_percent"]),
            "",
        ],
        [
            "workers (sum), % of one core",
            f"{_percent(stack_figures['workers_percent'])} ({nudge.workers} child processes)",
            f"{_percent(moto_figures['workers_percent'])} ({baseline.workers} child processes)",
            "",
        ],
        [
            "CPU seconds in the window",
            f"{nudge.main_seconds + nudge.worker_seconds:.2f}",
            f"{baseline.main_seconds + baseline.worker_seconds:.2f}",
            "",
        ],
    ]
    console.print(
        side_by_side(
            f"Idle CPU over {nudge.window:.0f} s, once /_local/health answered and the workers"
            f" went quiet ({settle_seconds:.0f} s later; utime + stime of each process group)",
            ["", "Nudge: local stack", "baseline: moto server alone", "goal"],
            rows,
        )
    )
    if not settled:
        console.print(
            f"  [yellow]the workers were still busy after {SETTLE_TIMEOUT:g} s:"
            " measured anyway, read the workers' row with care[/yellow]"
        )
    console.print(
        f"  load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores"
        + (
            f"; {nudge.exited + baseline.exited} processes exited during the window (not counted)"
            if nudge.exited + baseline.exited
            else ""
        )
    )
    return {
        "idle_seconds": nudge.window,
        "settle_seconds": settle_seconds,
        "settled": settled,
        "goal_percent": GOAL_PERCENT,
        "goal_met": met,
        "load_average": list(load),
        "stack": stack_figures,
        "moto_alone": moto_figures,
    }
