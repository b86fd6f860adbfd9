"""The Train function's run on the simulator's data, against the memory and time the
template gives it (MemorySize 3008 MB, Timeout 900 s).

The simulated shop of ``bench/shop_truth.py`` (``NUDGE_BENCH_RETRAIN_PEOPLE`` shoppers, 2,000
by default: the figures docs/predictions.md quotes) is written as Segment messages to a
file; a child process runs ``service.retrain.Retrain`` over it, as the function does over
the table's Scan (both go through ``read_items``): every prediction trained with
``nudge train``'s defaults, the models written to a folder. The child's peak resident
memory (``ru_maxrss``) and its phases' times are the figures. The Scan itself is not
timed here (moto is not DynamoDB): docs/predictions.md gives its read units.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console

from bench.common import REPO, Figures, side_by_side
from bench.shop_truth import TruthMix, simulate_truth

__all__ = ["run"]

PEOPLE = int(os.environ.get("NUDGE_BENCH_RETRAIN_PEOPLE", "2000"))
MEMORY_MB = 3008  # template.yaml, Train's MemorySize
TIMEOUT_S = 900  # template.yaml, Train's Timeout

_CHILD = """
import json, sys, time
from datetime import UTC, datetime
from pathlib import Path
from nudge.adapters.model_store import FolderModels
from nudge.domain.predictions.loader import load_predictions
from nudge.service.retrain import Retrain

class FileEvents:
    def __init__(self, path):
        self.path = path
    def every_event(self):
        with open(self.path, encoding="utf-8") as lines:
            for line in lines:
                yield json.loads(line)

events_file, models_dir, predictions_dir = sys.argv[1:4]
started = time.perf_counter()
service = Retrain(
    events=FileEvents(events_file),
    models=FolderModels(Path(models_dir)),
    predictions=load_predictions(Path(predictions_dir)).predictions,
)
result = service.run(datetime(2026, 4, 10, tzinfo=UTC))
print(json.dumps({
    "seconds": time.perf_counter() - started,
    "events": result.events,
    "verdicts": [verdict.to_log() for verdict in result.verdicts],
}))
"""


def run(console: Console) -> Figures:
    shop = simulate_truth(TruthMix(people=PEOPLE))
    with tempfile.TemporaryDirectory() as scratch:
        events_file = Path(scratch) / "events.jsonl"
        events_file.write_text("".join(json.dumps(m) + "\n" for m in shop.messages))
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, str(events_file), scratch, str(REPO / "predictions")],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONPATH": f"{REPO / 'layers' / 'nudge'}:{REPO}"},
        )
        wall = time.perf_counter() - started
    report = json.loads(done.stdout.strip().splitlines()[-1])
    # The largest child's peak: the only child this process has started is the run above
    # (ru_maxrss is in KB on Linux).
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    console.print(
        side_by_side(
            f"Train on {PEOPLE:,} simulated shoppers ({report['events']:,} events)",
            ["measure", "measured", "the template gives"],
            [
                ["peak memory (MB)", f"{peak_mb:,.0f}", f"{MEMORY_MB:,}"],
                ["run time (s), read + train every prediction", f"{wall:,.0f}", f"{TIMEOUT_S}"],
            ],
        )
    )
    for verdict in report["verdicts"]:
        console.print(
            f"  {verdict['prediction']}: {verdict['decision']}"
            f" (new quality {verdict['new_quality']}; {verdict['reason'][:80]})"
        )
    return {
        "people": PEOPLE,
        "events": report["events"],
        "peak_memory_mb": peak_mb,
        "run_seconds": wall,
        "memory_size_mb": MEMORY_MB,
        "timeout_seconds": TIMEOUT_S,
        "verdicts": report["verdicts"],
    }
