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

Issue #13's goal is Nudge's own share, the ``-X importtime`` self times of the ``nudge``
modules, under 50 ms for every function. Beside it, the same figures for the tree at
``BEFORE`` (the last commit before that work, read with ``git archive`` into a temporary
folder), measured in the same run with the runs of both interleaved, so load from anything
else on the machine falls on both alike. The handler module is imported with an ``import``
statement (``-X importtime`` does not see ``importlib.import_module``), so its own self time,
the "handler body" column, is measured too: the work its module-level code calls (clients,
settings, Evaluate's trigger files), which would hide there if a change only moved work out
of the ``nudge`` modules' bodies.

``NUDGE_BENCH_IMPORTS_FUNCTIONS`` (logical ids, comma-separated, e.g. ``Evaluate``) measures
those functions only, with their extra rows ("Evaluate, every trigger on", "Train, import +
first event"), and the baselines: a run for one function's work takes a minute or two instead
of six or seven. ``NUDGE_BENCH_IMPORTS_BEFORE``
(a commit) measures that tree in the "before" columns in place of ``BEFORE``, for the figures
of one change beside the tree it started from.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from rich.console import Console

from bench.common import REPO, Figures, median, side_by_side
from local.template import load_template

__all__ = ["run"]

RUNS = 9
PROFILED = 7  # -X importtime runs; self times are the median of these, per package
GOAL_MS = 50.0  # issue #13: the nudge modules' self time, every function
# The last commit before the import-time work: its tree is measured beside this one.
BEFORE = "2684d06c0dce7fc6732d14c09b4aad155ecd560c"
FUNCTIONS_VARIABLE = "NUDGE_BENCH_IMPORTS_FUNCTIONS"
EVERY_TRIGGER_ON = "Evaluate, every trigger on"
TRAIN_FIRST_EVENT = "Train, import + first event"
BEFORE_VARIABLE = "NUDGE_BENCH_IMPORTS_BEFORE"
TIMEOUT = 60.0
MARK = "BENCH_IMPORT_SECONDS"
CPU_MARK = "BENCH_CPU_SELF_MS"
AFTER_MARK = "BENCH_AFTER_IMPORT"  # a full collection's seconds, then resident bytes

_TIMED = """
import sys, time
sys.path[:0] = {paths!r}
started, started_cpu = time.perf_counter(), time.process_time()
{body}
print({mark!r}, time.perf_counter() - started, time.process_time() - started_cpu)
# After the import, untimed: what the first full collection would walk, and the memory.
import gc, os
started = time.perf_counter()
gc.collect()
collected = time.perf_counter() - started
with open("/proc/self/statm") as statm:
    resident = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
print({after!r}, collected, resident)
"""

# An import statement, not importlib.import_module: -X importtime reports only the former,
# and the handler module's own self time is one of the figures.
_FUNCTION_BODY = "import {module} as _handler_module\nhandler = _handler_module.{attribute}"
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

# Train's cold start always runs exactly one event (its schedule is every 14 days): the handler
# called once after the import, as Lambda calls it, on a small stream kept in memory (the
# table and the bucket are replaced; the predictions are the function's). What a run imports
# beyond the cold start (scikit-learn, numpy) is billed to this row, and any nudge module
# loaded only by the run shows in its nudge self time. Five trees a model, not the function's
# 200, and 60 people: enough to fit both shipped predictions, while a run's own time (about
# 60 s on the table) is bench/retrain.py's figure, not this row's.
_TRAIN_FIRST_EVENT_BODY = """
import os as _os, random as _random
from datetime import UTC as _UTC, datetime as _datetime, timedelta as _timedelta
from types import SimpleNamespace as _Namespace
from nudge.adapters.gbdt import GbdtParams as _GbdtParams
from nudge.config import TrainSettings as _TrainSettings
from nudge.domain.predictions.loader import load_predictions as _load_predictions
from nudge.service.retrain import Retrain as _Retrain
from nudge.service.train import Plan as _Plan

def _stream(people, days, seed=0):
    draw = _random.Random(seed)
    start = _datetime(2026, 9, 1, tzinfo=_UTC)
    for person in range(people):
        leaves, day = draw.uniform(14, days * 1.5), draw.uniform(0, 7)
        while day < min(leaves, days):
            kinds = ["page"] * draw.randint(1, 4)
            if draw.random() < 0.4:
                kinds += ["Product Added"] + (["Order Completed"] if draw.random() < 0.5 else [])
            for minute, kind in enumerate(kinds):
                at = (start + _timedelta(days=day, minutes=minute)).isoformat()
                named = {"name": "home"} if kind == "page" else {"event": kind}
                kind_of = "page" if kind == "page" else "track"
                yield {"type": kind_of, "userId": f"u{person}", "timestamp": at, **named}
            day += draw.expovariate(1 / 4)

class _Table:
    def every_event(self):
        return iter(list(_stream(60, 84)))

class _Bucket:
    def __init__(self):
        self.models = {}
    def read(self, prediction):
        return self.models.get(prediction)
    def write(self, prediction, artefact):
        self.models[prediction] = artefact

_handler_module.service = _Retrain(
    events=_Table(),
    models=_Bucket(),
    predictions=_load_predictions(_TrainSettings.from_env(_os.environ).predictions_dir).predictions,
    plan=_Plan(params=_GbdtParams(trees=5)),
)
_context = _Namespace(
    function_name="Train", memory_limit_in_mb=3008, aws_request_id="bench",
    invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:Train",
)
_answer = handler({"time": "2026-11-24T03:00:00Z"}, _context)
assert _answer["models"] == {"churn": "replaced", "purchase": "replaced"}, _answer
"""


@dataclass(frozen=True)
class Subject:
    name: str
    body: str
    paths: tuple[str, ...]
    env: dict[str, str]
    handler_package: str = ""  # the handler module's top-level name, for its own self time


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


def _chosen_functions() -> frozenset[str]:
    """The logical ids ``NUDGE_BENCH_IMPORTS_FUNCTIONS`` names; empty for every function."""
    listed = os.environ.get(FUNCTIONS_VARIABLE, "")
    return frozenset(name.strip() for name in listed.split(",") if name.strip())


def _every_trigger_on(root: Path, scratch: Path) -> Path:
    """A copy of the tree's trigger folder (templates too) with every trigger enabled: the
    shipped journey and score triggers are off, and what they load is loaded only for them."""
    folder = Path(tempfile.mkdtemp(dir=scratch)) / "triggers"
    shutil.copytree(root / "triggers", folder)
    for path in folder.glob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        path.write_text(text.replace("\nenabled: false\n", "\nenabled: true\n"), encoding="utf-8")
    return folder


def _subjects(ssm_endpoint: str, pycache: str, scratch: Path, root: Path = REPO) -> list[Subject]:
    template = load_template(
        root / "template.yaml",
        {"WriteKey": "bench-write-key", "TrackingSecret": "bench-tracking-secret"},
    )
    base = {**_base_env(pycache), "AWS_ENDPOINT_URL_SSM": ssm_endpoint}
    chosen = _chosen_functions()
    unknown = chosen - set(template.functions)
    if unknown:
        raise ValueError(
            f"{FUNCTIONS_VARIABLE} names {', '.join(sorted(unknown))}, not functions of the"
            f" template ({', '.join(template.functions)})"
        )
    subjects = []
    for spec in template.functions.values():
        if chosen and spec.logical_id not in chosen:
            continue
        module, _, attribute = spec.handler.rpartition(".")
        subjects.append(
            Subject(
                name=spec.logical_id,
                body=_FUNCTION_BODY.format(module=module, attribute=attribute),
                paths=(str(spec.code_uri), *(str(path) for path in spec.layer_paths)),
                env={**base, **spec.environment},
                handler_package=module.split(".")[0],
            )
        )
        if spec.logical_id == "Evaluate":
            # Every shipped trigger on, churn_risk's score and cart_recovery_series' journey
            # too: what a cold start costs when the code loaded only for them is loaded. The
            # models are read from the folder (no models bucket: no S3 client, no call).
            env = dict(subjects[-1].env)
            env.pop("NUDGE_MODELS_BUCKET", None)
            env["NUDGE_TRIGGERS_DIR"] = str(_every_trigger_on(root, scratch))
            subjects.append(replace(subjects[-1], name=EVERY_TRIGGER_ON, env=env))
        if spec.logical_id == "Train":
            body = subjects[-1].body + _TRAIN_FIRST_EVENT_BODY
            subjects.append(replace(subjects[-1], name=TRAIN_FIRST_EVENT, body=body))
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


# CPU self time per module, beside -X importtime's wall clock: a process that waits for a
# core on a busy machine adds wall time to whichever module it was importing, and CPU time
# not. The import statement calls importlib._bootstrap._find_and_load by name, so wrapping
# it sees every import, nested ones included; a module's self time is its own less its
# imports'.
_CPU_SELF = """
import importlib._bootstrap as _bootstrap, json as _json, time as _time
_find_and_load = _bootstrap._find_and_load
_nested = [0.0]
_cpu_self_ms = {}
def _timed_find_and_load(name, import_):
    _nested.append(0.0)
    started = _time.process_time()
    try:
        return _find_and_load(name, import_)
    finally:
        spent = (_time.process_time() - started) * 1000
        _cpu_self_ms[name] = _cpu_self_ms.get(name, 0.0) + spent - _nested.pop()
        _nested[-1] += spent
_bootstrap._find_and_load = _timed_find_and_load
"""
_CPU_REPORT = "\nprint({mark!r}, _json.dumps(_cpu_self_ms))"


def _once(
    subject: Subject, extra: Sequence[str] = (), *, cpu: bool = False
) -> subprocess.CompletedProcess[str]:
    body = _CPU_SELF + subject.body + _CPU_REPORT.format(mark=CPU_MARK) if cpu else subject.body
    script = _TIMED.format(paths=list(subject.paths), body=body, mark=MARK, after=AFTER_MARK)
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
    return _figures_after(output, MARK)[0]


def _cpu_seconds(output: str) -> float:
    return _figures_after(output, MARK)[1]


def _figures_after(output: str, mark: str) -> list[float]:
    for line in output.splitlines():
        if line.startswith(mark + " "):
            return [float(value) for value in line.split()[1:]]
    raise RuntimeError(f"the timed script printed no {mark}")


def _cpu_self_times(stdout: str) -> dict[str, float]:
    """The CPU self times (ms) the wrapped import reported, summed per top-level package."""
    by_package: dict[str, float] = defaultdict(float)
    for line in stdout.splitlines():
        if line.startswith(CPU_MARK):
            for module, ms in json.loads(line.removeprefix(CPU_MARK)).items():
                by_package[module.split(".")[0]] += float(ms)
    return by_package


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


def _measure(subjects: Sequence[Subject]) -> list[dict[str, object]]:
    """Every subject's figures, their runs interleaved (one run of each in turn), so that a
    busy spell on the machine falls on all of them rather than on one."""
    for subject in subjects:
        _once(subject)  # the first run writes .pyc files; Lambda's layer is read-only (see README)
    samples: list[list[float]] = [[] for _ in subjects]
    cpu_samples: list[list[float]] = [[] for _ in subjects]
    after: list[list[list[float]]] = [[] for _ in subjects]
    profiles: list[list[dict[str, float]]] = [[] for _ in subjects]
    cpu_profiles: list[list[dict[str, float]]] = [[] for _ in subjects]
    for _ in range(RUNS):
        for index, subject in enumerate(subjects):
            output = _once(subject).stdout
            samples[index].append(_seconds(output))
            cpu_samples[index].append(_cpu_seconds(output))
            after[index].append(_figures_after(output, AFTER_MARK))
    for _ in range(PROFILED):
        for index, subject in enumerate(subjects):
            profiled = _once(subject, ["-X", "importtime"], cpu=True)
            profiles[index].append(_self_times(profiled.stderr))
            cpu_profiles[index].append(_cpu_self_times(profiled.stdout))
    return [
        {
            **_figures(subject, timed, wall, cpu_self),
            "cpu_median_ms": median(cpu) * 1000,
            "full_collection_after_ms": median([run[0] for run in later]) * 1000,
            "resident_after_mb": median([run[1] for run in later]) / 2**20,
        }
        for subject, timed, cpu, later, wall, cpu_self in zip(
            subjects, samples, cpu_samples, after, profiles, cpu_profiles, strict=True
        )
    ]


def _figures(
    subject: Subject,
    samples: Sequence[float],
    profiles: Sequence[Mapping[str, float]],
    cpu_profiles: Sequence[Mapping[str, float]],
) -> dict[str, object]:
    packages = {package for profile in profiles for package in profile}
    by_package = {
        package: median([profile.get(package, 0.0) for profile in profiles]) for package in packages
    }
    top = sorted(
        ((name, ms) for name, ms in by_package.items() if name != subject.handler_package),
        key=lambda pair: -pair[1],
    )[:5]
    return {
        "median_ms": median(samples) * 1000,
        "min_ms": min(samples) * 1000,
        "max_ms": max(samples) * 1000,
        "runs": RUNS,
        "profiled_runs": PROFILED,
        "nudge_self_ms": by_package.get("nudge", 0.0),
        "nudge_self_runs_ms": [profile.get("nudge", 0.0) for profile in profiles],
        "nudge_cpu_self_ms": median([profile.get("nudge", 0.0) for profile in cpu_profiles]),
        "nudge_cpu_self_runs_ms": [profile.get("nudge", 0.0) for profile in cpu_profiles],
        "handler_body_ms": by_package.get(subject.handler_package, 0.0),
        "top_imports_ms": dict(top),
    }


@contextlib.contextmanager
def _tree_at(commit: str) -> Iterator[Path | None]:
    """The repository's files at ``commit`` in a temporary folder; None where git or the
    commit is not there (a copy of the tree without its history)."""
    with tempfile.TemporaryDirectory() as folder:
        try:
            archive = subprocess.run(
                ["git", "-C", str(REPO), "archive", commit],
                capture_output=True,
                timeout=TIMEOUT,
                check=True,
            )
            subprocess.run(
                ["tar", "-x", "-C", folder], input=archive.stdout, timeout=TIMEOUT, check=True
            )
        except (OSError, subprocess.SubprocessError):
            yield None
            return
        yield Path(folder)


def _top_text(top: object) -> str:
    if not isinstance(top, dict):
        return ""
    return ", ".join(f"{name} {ms:.0f}" for name, ms in top.items())


def _ms(figures: Mapping[str, object] | None, key: str, spec: str = ".0f") -> str:
    return format(float(str(figures[key])), spec) if figures else "-"


def _function_rows(
    functions: Mapping[str, Mapping[str, object]], before: Mapping[str, Mapping[str, object]]
) -> list[list[str]]:
    rows = []
    for name, figures in functions.items():
        nudge = float(str(figures["nudge_self_ms"]))
        mark = "[green]" if nudge < GOAL_MS else "[red]"
        rows.append(
            [
                name,
                _ms(figures, "median_ms"),
                _ms(before.get(name), "median_ms"),
                _ms(figures, "cpu_median_ms"),
                _ms(before.get(name), "cpu_median_ms"),
                f"{mark}{nudge:.0f}[/]",
                _ms(before.get(name), "nudge_self_ms"),
                f"{GOAL_MS:.0f}",
                _ms(figures, "nudge_cpu_self_ms"),
                _ms(before.get(name), "nudge_cpu_self_ms"),
                _ms(figures, "handler_body_ms"),
                _ms(before.get(name), "handler_body_ms"),
                _ms(figures, "full_collection_after_ms", ".1f"),
                _ms(before.get(name), "full_collection_after_ms", ".1f"),
                _ms(figures, "resident_after_mb", ".1f"),
                _ms(before.get(name), "resident_after_mb", ".1f"),
                _top_text(figures["top_imports_ms"]),
            ]
        )
    return rows


def run(console: Console) -> Figures:
    before_commit = os.environ.get(BEFORE_VARIABLE) or BEFORE
    with (
        _parameter_store() as ssm_endpoint,
        tempfile.TemporaryDirectory() as pycache,
        tempfile.TemporaryDirectory() as scratch,
        _tree_at(before_commit) as before_root,
    ):
        subjects = _subjects(ssm_endpoint, pycache, Path(scratch))
        earlier = (
            _subjects(ssm_endpoint, pycache, Path(scratch), before_root) if before_root else []
        )
        baselines = _baselines(pycache)
        measured = iter(_measure([*subjects, *earlier, *baselines]))
    # _measure answers in the order it was given: this tree's, the earlier tree's, baselines.
    functions = {subject.name: next(measured) for subject in subjects}
    before = {subject.name: next(measured) for subject in earlier}
    baseline_figures = {subject.name: next(measured) for subject in baselines}
    console.print(
        side_by_side(
            f"Handler import time, fresh interpreter (ms): median of {RUNS}; self times: median "
            f"of {PROFILED} -X importtime runs; before: commit {before_commit[:7]}, same run, "
            "interleaved",
            [
                "function (app.handler)",
                "import",
                "before",
                "import CPU",
                "before",
                "nudge self",
                "before",
                "goal",
                "nudge CPU self",
                "before",
                "handler body",
                "before",
                "full GC after",
                "before",
                "RSS MB",
                "before",
                "top 5 other packages by self time",
            ],
            _function_rows(functions, before),
        )
    )
    if before_root is None:
        console.print(
            f"[yellow]commit {before_commit[:7]} not in this clone: no 'before' columns[/]"
        )
    console.print(
        side_by_side(
            "Baselines (ms): median import time; top 5 packages by self time",
            ["baseline", "import", "top 5 by self time"],
            [
                [name, _ms(figures, "median_ms"), _top_text(figures["top_imports_ms"])]
                for name, figures in baseline_figures.items()
            ],
        )
    )
    return {
        "functions": functions,
        "before": {"commit": before_commit, "functions": before},
        "goal_nudge_self_ms": GOAL_MS,
        "baselines": baseline_figures,
    }
