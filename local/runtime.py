"""Run each function the way Lambda does: its own process, its own environment, its
handler imported from CodeUri (with the layers on sys.path), invoked with a context.

A worker process per concurrent execution keeps functions from sharing environment
variables or module state, and gives each a real cold start.
"""

from __future__ import annotations

import importlib
import json
import multiprocessing
import os
import queue
import sys
import threading
import time
import traceback
import uuid
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from local.meter import AwsMeter
from local.template import FunctionSpec, LocalNames

__all__ = ["FunctionPool", "Invocation", "InvocationContext"]


@dataclass(frozen=True)
class Invocation:
    payload: Any
    error: dict[str, Any] | None
    duration_ms: float

    @property
    def failed(self) -> bool:
        return self.error is not None


class InvocationContext:
    """What Powertools and handlers read from Lambda's context object, with a real
    deadline: the function's timeout from the start of the invocation."""

    def __init__(self, function_name: str, arn: str, memory: int, timeout: int) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = arn
        self.memory_limit_in_mb = memory
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout

    @classmethod
    def of(cls, names: LocalNames, spec: FunctionSpec) -> InvocationContext:
        """For an invocation of the template's function, starting now."""
        return cls(
            names.physical(spec.logical_id),
            names.function_arn(spec.logical_id),
            spec.memory,
            spec.timeout,
        )

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _worker_main(connection: Connection, setup: dict[str, Any]) -> None:
    os.environ.update(setup["environment"])
    for path in reversed([setup["code_uri"], *setup["layer_paths"]]):
        sys.path.insert(0, path)
    module_name, _, function_name = setup["handler"].rpartition(".")
    try:
        handler = getattr(importlib.import_module(module_name), function_name)
    except Exception as error:  # an init error is reported on every invoke, as Lambda does
        init_error = _error_payload(error)
        while True:
            connection.recv()
            connection.send(("error", init_error))
    while True:
        event_json = connection.recv()
        context = InvocationContext(setup["name"], setup["arn"], setup["memory"], setup["timeout"])
        try:
            result = handler(json.loads(event_json), context)
            connection.send(("ok", json.dumps(result, default=str)))
        except Exception as error:
            connection.send(("error", _error_payload(error)))


def _error_payload(error: BaseException) -> dict[str, Any]:
    return {
        "errorType": type(error).__name__,
        "errorMessage": str(error),
        "stackTrace": traceback.format_exception(error),
    }


class _Worker:
    def __init__(self, setup: dict[str, Any]) -> None:
        self._setup = setup
        self._start()

    def _start(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._connection, child = context.Pipe()
        self._process = context.Process(target=_worker_main, args=(child, self._setup), daemon=True)
        self._process.start()

    def invoke(self, event: Any, timeout: float) -> tuple[str, Any]:
        if not self._process.is_alive():  # crashed between invocations: a cold start
            self.restart()
        self._connection.send(json.dumps(event))
        if not self._connection.poll(timeout):
            self.restart()
            return "error", {
                "errorType": "Sandbox.Timedout",
                "errorMessage": f"Task timed out after {timeout:.2f} seconds",
            }
        try:
            status, payload = self._connection.recv()
        except EOFError:
            self.restart()
            return "error", {
                "errorType": "Runtime.ExitError",
                "errorMessage": "the function's process exited",
            }
        return status, json.loads(payload) if status == "ok" else payload

    def restart(self) -> None:
        self.stop()
        self._start()

    def crash(self) -> None:
        """Kills the process mid-invocation; ``invoke`` sees it exit and starts a new one."""
        self._process.kill()

    def stop(self) -> None:
        self._process.kill()
        self._process.join(timeout=5)


class FunctionPool:
    """Up to ``concurrency`` warm workers for one function; callers wait for a free one."""

    def __init__(
        self,
        spec: FunctionSpec,
        names: LocalNames,
        base_env: dict[str, str],
        concurrency: int = 1,
        meter: AwsMeter | None = None,
    ):
        self.spec = spec
        self._meter = meter
        self.arn = names.function_arn(spec.logical_id)
        setup = {
            "name": names.physical(spec.logical_id),
            "arn": self.arn,
            "handler": spec.handler,
            "code_uri": str(spec.code_uri),
            "layer_paths": [str(path) for path in spec.layer_paths],
            "memory": spec.memory,
            "timeout": spec.timeout,
            "environment": {
                **base_env,
                **spec.environment,
                "AWS_LAMBDA_FUNCTION_NAME": names.physical(spec.logical_id),
            },
        }
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._workers = [_Worker(setup) for _ in range(concurrency)]
        for worker in self._workers:
            self._idle.put(worker)
        self._busy: set[_Worker] = set()
        self._busy_lock = threading.Lock()

    def invoke(self, event: Any) -> Invocation:
        worker = self._idle.get()
        with self._busy_lock:
            self._busy.add(worker)
        started = time.perf_counter()
        try:
            status, payload = worker.invoke(event, timeout=self.spec.timeout)
        finally:
            with self._busy_lock:
                self._busy.discard(worker)
            self._idle.put(worker)
        duration = (time.perf_counter() - started) * 1000
        if self._meter is not None:
            self._meter.invocation(self.spec.logical_id, self.spec.memory, duration)
        if status == "ok":
            return Invocation(payload=payload, error=None, duration_ms=duration)
        return Invocation(payload=None, error=payload, duration_ms=duration)

    def crash_running(self) -> int:
        """Kills the process of every invocation in progress, as a crash would (out of
        memory, a segfault): the invocation fails with Runtime.ExitError. Returns how many."""
        with self._busy_lock:
            running = list(self._busy)
        for worker in running:
            worker.crash()
        return len(running)

    def stop(self) -> None:
        for worker in self._workers:
            worker.stop()
