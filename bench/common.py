"""What the benchmarks share: paths, the payloads they send, table helpers, and the local
stack as a child process."""

from __future__ import annotations

import collections
import contextlib
import json
import os
import queue
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import requests
from nudge.adapters import keys
from nudge.domain.person import PersonId
from rich.table import Table

__all__ = [
    "REPO",
    "STACK_WRITE_KEY",
    "Figures",
    "GroupProcess",
    "StackProcess",
    "event_item",
    "free_port",
    "group_processes",
    "percentile",
    "running_stack",
    "shipped_triggers",
    "side_by_side",
    "stop_group",
    "track_message",
]

REPO = Path(__file__).resolve().parent.parent
STACK_WRITE_KEY = "bench-write-key"  # the NUDGE_WRITE_KEY of the stack running_stack starts
STACK_START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0
_ENDPOINT_LINE = re.compile(r"local AWS\s+(http://127\.0\.0\.1:\d+)")

# One benchmark's numbers, as --json prints them.
Figures = dict[str, Any]


def track_message(user: str, index: int, tag: str, now: datetime | None = None) -> dict[str, Any]:
    """A track call the way analytics.js sends it (about 700 bytes of JSON)."""
    when = (now or datetime.now(UTC)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    product = 1000 + index % 97
    return {
        "type": "track",
        "event": "Product Viewed",
        "userId": user,
        "anonymousId": f"anon-{user}",
        "messageId": f"{tag}-{user}-{index:06d}",
        "timestamp": when,
        "sentAt": when,
        "properties": {
            "product_id": str(product),
            "sku": f"SKU-{product}",
            "name": f"Board game #{product}",
            "category": "Games",
            "price": 19.99 + index % 7,
            "currency": "USD",
        },
        "context": {
            "library": {"name": "analytics.js", "version": "next-1.72.0"},
            "page": {
                "path": f"/products/{product}",
                "url": f"https://shop.example.com/products/{product}",
                "title": f"Board game #{product} | Example Shop",
                "referrer": "https://www.google.com/",
            },
            "userAgent": (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
                "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
            ),
            "locale": "en-US",
            "timezone": "Europe/Berlin",
        },
    }


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else 0.0


def side_by_side(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> Table:
    table = Table(title=title, title_justify="left", show_lines=False)
    for index, name in enumerate(columns):
        table.add_column(name, justify="left" if index == 0 else "right")
    for row in rows:
        table.add_row(*row)
    return table


def event_item(
    message: dict[str, Any], retention: timedelta = timedelta(days=90)
) -> dict[str, Any]:
    """A track message as an item of the template's table (DynamoDB JSON), the plain way."""
    received = datetime.now(UTC)
    person = PersonId.of(message.get("userId"), message.get("anonymousId"))
    body = {**message, "receivedAt": received.isoformat()}
    return {
        **{
            name: {"S": value}
            for name, value in keys.event_key(person, message["messageId"]).items()
        },
        "kind": {"S": keys.EVENT_KIND},
        "type": {"S": message["type"]},
        "ts": {"S": message["timestamp"]},
        "body": {"S": json.dumps(body, ensure_ascii=False, separators=(",", ":"))},
        "expires_at": {"N": str(int((received + retention).timestamp()))},
    }


def shipped_triggers(turned_on: Sequence[str], *, alone: bool = False) -> Path:
    """A triggers folder for a stack: the shipped triggers with ``turned_on`` enabled (only
    those, with ``alone``), and the shipped templates."""
    folder = Path(tempfile.mkdtemp(prefix="nudge-bench-triggers-"))
    (folder / "templates").symlink_to(REPO / "triggers" / "templates")
    for path in sorted((REPO / "triggers").glob("*.yaml")):
        if alone and path.stem not in turned_on:
            continue
        text = path.read_text(encoding="utf-8")
        if path.stem in turned_on:
            text = text.replace("\nenabled: false\n", "\nenabled: true\n")
        (folder / path.name).write_text(text, encoding="utf-8")
    return folder


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class GroupProcess:
    """One process of a process group, as /proc/<pid>/stat reads."""

    pid: int
    state: str
    cpu_seconds: float  # utime + stime

    @property
    def alive(self) -> bool:
        return self.state not in ("Z", "X")  # a zombie has stopped; it only waits to be reaped


def group_processes(pgid: int) -> dict[int, GroupProcess]:
    """Every process whose pgrp is ``pgid`` (Linux: empty where there is no /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    found: dict[int, GroupProcess] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # it exited between the listing and the read
            continue
        # The command name, in parentheses, may hold spaces: fields are counted after it.
        fields = text[text.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid:
            pid = int(stat.parent.name)
            found[pid] = GroupProcess(pid, fields[0], (int(fields[11]) + int(fields[12])) / ticks)
    return found


def stop_group(process: subprocess.Popen[Any], timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM to the process group of a child started with ``start_new_session=True``, then
    SIGKILL to whatever of it is still alive after ``timeout``. Its own session: the group
    holds only what that child started."""
    deadline = time.monotonic() + timeout
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=timeout)
    while time.monotonic() < deadline and _group_alive(process.pid):
        time.sleep(0.1)
    if process.poll() is None or _group_alive(process.pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=5)


def _group_alive(pgid: int) -> bool:
    return any(member.alive for member in group_processes(pgid).values())


class StackProcess:
    """``python -m local`` as a child process on free 127.0.0.1 ports, in its own session;
    its stdout is read to the end (workers log there)."""

    def __init__(self, extra_env: Mapping[str, str] | None = None) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.moto_endpoint: str | None = None
        self.log_bytes = 0  # the functions' JSON log lines: what CloudWatch Logs would ingest
        self.tail: collections.deque[str] = collections.deque(maxlen=200)  # for errors
        self._found: queue.Queue[str] = queue.Queue()
        env = {
            **{name: value for name, value in os.environ.items() if not name.startswith("AWS_")},
            "PORT": str(self.port),
            "NUDGE_MOTO_PORT": str(free_port()),
            "NUDGE_WRITE_KEY": STACK_WRITE_KEY,
            "NUDGE_SOCKET_PORT": "0",  # a free port: two stacks may run at once
            "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
            **(extra_env or {}),
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "local"],
            cwd=str(REPO),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,  # the stack's own log too: shown when a run fails
            text=True,
            start_new_session=True,
        )
        assert self.process.stdout is not None
        threading.Thread(target=self._read, args=(self.process.stdout,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.tail.append(line)
            if line.startswith("{"):
                self.log_bytes += len(line.encode())
            match = _ENDPOINT_LINE.search(line)
            if match:
                self._found.put(match.group(1))

    def wait_ready(self) -> None:
        """Until the banner has named the moto endpoint and /_local/health answers 200."""
        deadline = time.monotonic() + STACK_START_TIMEOUT
        try:
            self.moto_endpoint = self._found.get(timeout=STACK_START_TIMEOUT)
        except queue.Empty:
            raise TimeoutError(
                "the local stack printed no banner; its last lines:\n" + "".join(self.tail)
            ) from None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the local stack exited with {self.process.returncode}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.base}/_local/health", timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise TimeoutError("the local stack did not answer /_local/health")

    def stop(self) -> None:
        stop_group(self.process)


@contextlib.contextmanager
def running_stack(extra_env: Mapping[str, str] | None = None) -> Iterator[StackProcess]:
    stack = StackProcess(extra_env)
    try:
        stack.wait_ready()
        yield stack
    finally:
        stack.stop()
