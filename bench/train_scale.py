"""Training at scale: ``nudge train churn`` on an export of 100,000 simulated shoppers.

The simulated shop of ``bench/shop_truth.py`` is generated 10,000 shoppers at a time (each
block its own seed, its ids prefixed so none repeat) and written as one JSON line a message,
as an export of the table would be: ``NUDGE_BENCH_TRAIN_PEOPLE`` shoppers, 100,000 by
default, 90 days, about 11 million events and 3 GB. Then the command a user runs, in a fresh
process, with its default sample of 10,000 people (``--people``): wall time and peak memory
(the process's resident high-water mark).

Baseline, side by side: the same command on an export of 10,000 shoppers, whom the default
sample keeps whole. What sampling from ten times the people costs is the difference: reading
the larger file, not training.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console

from bench.common import REPO, Figures, side_by_side
from bench.shop_truth import TruthMix, simulate_truth

__all__ = ["run"]

PEOPLE = int(os.environ.get("NUDGE_BENCH_TRAIN_PEOPLE", "100000"))
BLOCK = 10_000  # shoppers simulated at a time: the messages of a block fit in memory
BASELINE = 10_000
# The CLI in a fresh interpreter, reporting its own peak RSS (ru_maxrss: KB on Linux).
_CHILD = (
    "import resource, sys\n"
    "from nudge.entrypoints.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "print('maxrss_kb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
    "sys.exit(code)\n"
)


def run(console: Console) -> Figures:
    with tempfile.TemporaryDirectory(prefix="nudge-train-scale-") as scratch:
        folder = Path(scratch)
        figures: Figures = {}
        for name, people in (("baseline", BASELINE), ("nudge", PEOPLE)):
            export = folder / f"{name}.jsonl"
            started = time.perf_counter()
            events = _write_export(export, people)
            written = time.perf_counter() - started
            figures[name] = {
                "people": people,
                "events": events,
                "export MB": round(export.stat().st_size / 1e6),
                "simulate and write s": round(written, 1),
                **_train(export, folder / f"{name}.json"),
            }
            export.unlink()
    _print(console, figures)
    return figures


def _write_export(path: Path, people: int) -> int:
    events = 0
    with path.open("w", encoding="utf-8") as out:
        for block, first in enumerate(range(0, people, BLOCK)):
            size = min(BLOCK, people - first)
            shop = simulate_truth(TruthMix(people=size, seed=1000 + block))
            for message in shop.messages:
                message["userId"] = f"b{block}-{message['userId']}"
                out.write(json.dumps(message, separators=(",", ":")) + "\n")
            events += len(shop.messages)
    return events


def _train(export: Path, artefact: Path) -> dict[str, float]:
    command = [sys.executable, "-c", _CHILD, "train", "churn", "--events", str(export)]
    command += ["--out", str(artefact), "--predictions", str(REPO / "predictions")]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=REPO)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"nudge train failed ({done.returncode}):\n{done.stderr[-2000:]}")
    peak = next(line for line in done.stdout.splitlines() if line.startswith("maxrss_kb"))
    quality = json.loads(artefact.read_text(encoding="utf-8"))["metrics"]
    return {
        "train s": round(seconds, 1),
        "peak MB": round(int(peak.split()[1]) / 1024),
        "held-out AUC": round(float(quality["auc"]), 3),
    }


def _print(console: Console, figures: Figures) -> None:
    measures = [
        "people",
        "events",
        "export MB",
        "simulate and write s",
        "train s",
        "peak MB",
        "held-out AUC",
    ]
    console.print(
        side_by_side(
            "nudge train churn, default sample (10,000 people)",
            ["", f"{PEOPLE:,} shoppers", f"baseline: {BASELINE:,} shoppers"],
            [[m, str(figures["nudge"][m]), str(figures["baseline"][m])] for m in measures],
        )
    )
