"""Cold-start import time of each function's handler module, in a fresh interpreter.

Each run is a new process with the function's environment from the template, its CodeUri
and layers on sys.path (as Lambda lays them out), fake credentials, and AWS_ENDPOINT_URL
pointing at a closed 127.0.0.1 port: the modules build their boto3 clients at import time,
which is measured, but no call is made. The one call made at import, Reports' and Privacy's
read of the admin key from SSM, goes to a stand-in on 127.0.0.1 (``AWS_ENDPOINT_URL_SSM``)
that answers every GetParameter with a fixed key. Every run reads compiled .pyc files that the
first, unmeasured run wrote to a temporary PYTHONPYCACHEPREFIX, whatever the caller's
PYTHONDONTWRITEBYTECODE says (with it set, Nudge's own modules, which have no .pyc of their
own, were compiled from source in every run, and the third-party packages were not).
Baselines: ``import boto3`` alone, and Powertools with a bare APIGatewayHttpResolver handler.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from rich.console import Console

from bench.common import REPO, Figures, median, side_by_side
from local.template import load_template

__all__ = ["run"]

RUNS = 5
PROFILED = 3  # -X importtime runs; self times are the median of these, per package
TIMEOUT = 60.0
MARK = "BENCH_IMPORT_SECONDS"

_TIMED = """
import sys, time
sys.path[:0] = {paths!r}
started = time.perf_counter()
{body}
print({mark!r}, time.perf_counter() - started)
"""

_FUNCTION_BODY = (
    "import importlib; handler = getattr(importlib.import_module({module!r}), {attribute!r})"
)
_BOTO3_BODY = "import boto3"
_POWERTOOLS_BODY = """
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
app = APIGatewayHttpResolver()
@app.post("/v1/<route>")
def beacon(route):
    return {"success": True}
def handler(event, context):
    return app.resolve(event, context)
"""


@dataclass(frozen=True)
class Subject:
    name: str
    body: str
    paths: tuple[str, ...]
    env: dict[str, str]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # released on close: nothing listens there


class _Parameter(BaseHTTPRequestHandler):
    """SSM's GetParameter, answered with a fixed SecureString value (and nothing else)."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        body = json.dumps(
            {"Parameter": {"Name": "bench", "Type": "SecureString", "Value": "bench-admin-key"}}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # quiet: no request lines
        return


@contextlib.contextmanager
def _parameter_store() -> Iterator[str]:
    """A stand-in for SSM on a free 127.0.0.1 port, for as long as the block runs."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Parameter)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _base_env(pycache: str) -> dict[str, str]:
    keep = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AWS_", "POWERTOOLS_")) and name != "PYTHONDONTWRITEBYTECODE"
    }
    return {
        **keep,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{_closed_port()}",
        "PYTHONPATH": "",
        "PYTHONPYCACHEPREFIX": pycache,  # written by the warm-up run, read by the others
    }


def _subjects(ssm_endpoint: str, pycache: str) -> list[Subject]:
    template = load_template(
        REPO / "template.yaml",
        {"WriteKey": "bench-write-key", "TrackingSecret": "bench-tracking-secret"},
    )
    base = {**_base_env(pycache), "AWS_ENDPOINT_URL_SSM": ssm_endpoint}
    subjects = []
    for spec in template.functions.values():
        module, _, attribute = spec.handler.rpartition(".")
        subjects.append(
            Subject(
                name=spec.logical_id,
                body=_FUNCTION_BODY.format(module=module, attribute=attribute),
                paths=(str(spec.code_uri), *(str(path) for path in spec.layer_paths)),
                env={**base, **spec.environment},
            )
        )
        if spec.logical_id == "Evaluate":
            # Scoring off: no predictions folder, so no prediction, model or feature code
            # loads; the difference to the row above is what scoring adds to a cold start.
            subjects.append(
                replace(
                    subjects[-1],
                    name="Evaluate, scoring off",
                    env={**subjects[-1].env, "NUDGE_PREDICTIONS_DIR": "/nonexistent"},
                )
            )
    return subjects


def _baselines(pycache: str) -> list[Subject]:
    base = _base_env(pycache)
    return [
        Subject("import boto3", _BOTO3_BODY, (), base),
        Subject(
            "powertools + bare resolver",
            _POWERTOOLS_BODY,
            (),
            {**base, "POWERTOOLS_SERVICE_NAME": "bare"},
        ),
    ]


def _once(subject: Subject, extra: Sequence[str] = ()) -> subprocess.CompletedProcess[str]:
    script = _TIMED.format(paths=list(subject.paths), body=subject.body, mark=MARK)
    result = subprocess.run(
        [sys.executable, *extra, "-c", script],
        env=subject.env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=str(REPO / "bench"),  # not the repo root: nothing importable by accident
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{subject.name}: import failed\n{result.stderr[-2000:]}")
    return result


def _seconds(output: str) -> float:
    for line in output.splitlines():
        if line.startswith(MARK):
            return float(line.split()[1])
    raise RuntimeError("the timed script printed no figure")


def _self_times(stderr: str) -> dict[str, float]:
    """``-X importtime`` self times (ms), summed per top-level package: where the time goes."""
    by_package: dict[str, float] = defaultdict(float)
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        fields = line.removeprefix("import time:").split("|")
        if len(fields) != 3:
            continue
        package = fields[2].strip().split(".")[0]
        by_package[package] += int(fields[0]) / 1000
    return by_package


def _measure(subject: Subject) -> dict[str, object]:
    _once(subject)  # the first run writes .pyc files; Lambda's layer is read-only (see README)
    samples = [_seconds(_once(subject).stdout) for _ in range(RUNS)]
    profiles = [_self_times(_once(subject, ["-X", "importtime"]).stderr) for _ in range(PROFILED)]
    packages = {package for profile in profiles for package in profile}
    by_package = {
        package: median([profile.get(package, 0.0) for profile in profiles]) for package in packages
    }
    top = sorted(by_package.items(), key=lambda pair: -pair[1])[:5]
    return {
        "median_ms": median(samples) * 1000,
        "min_ms": min(samples) * 1000,
        "max_ms": max(samples) * 1000,
        "runs": RUNS,
        "nudge_self_ms": by_package.get("nudge", 0.0),
        "top_imports_ms": dict(top),
    }


def _top_text(top: Mapping[str, float]) -> str:
    return ", ".join(f"{name} {ms:.0f}" for name, ms in top.items())


def run(console: Console) -> Figures:
    with _parameter_store() as ssm_endpoint, tempfile.TemporaryDirectory() as pycache:
        subjects = _subjects(ssm_endpoint, pycache)
        functions = {subject.name: _measure(subject) for subject in subjects}
        baselines = {subject.name: _measure(subject) for subject in _baselines(pycache)}
    boto3_ms = float(str(baselines["import boto3"]["median_ms"]))
    bare_ms = float(str(baselines["powertools + bare resolver"]["median_ms"]))
    rows = []
    for name, figures in functions.items():
        ours = float(str(figures["median_ms"]))
        top = figures["top_imports_ms"]
        rows.append(
            [
                f"{name} (app.handler)",
                f"{ours:.0f}",
                f"{boto3_ms:.0f}",
                f"{bare_ms:.0f}",
                f"{ours - boto3_ms - bare_ms:+.0f}",
                f"{float(str(figures['nudge_self_ms'])):.0f}",
                _top_text(top) if isinstance(top, dict) else "",
            ]
        )
    for name, figures in baselines.items():
        top = figures["top_imports_ms"]
        rows.append(
            [
                f"[dim]baseline: {name}[/dim]",
                "",
                f"{boto3_ms:.0f}" if name == "import boto3" else "",
                f"{bare_ms:.0f}" if name != "import boto3" else "",
                "",
                "",
                _top_text(top) if isinstance(top, dict) else "",
            ]
        )
    console.print(
        side_by_side(
            f"Handler import time, fresh interpreter, median of {RUNS} (ms); self times: "
            f"median of {PROFILED} -X importtime runs",
            [
                "module",
                "Nudge",
                "boto3 alone",
                "powertools bare",
                "Nudge - both",
                "nudge self",
                "top 5 by self time (ms)",
            ],
            rows,
        )
    )
    return {"functions": functions, "baselines": baselines}
