"""``python -m bench [NAME ...] [--json]``: attribution, best_hour, calls, churn_sweep, cost,
delivery, dynamodb, engine, experiments, faults, idle, imports, in_app, journey, layer, load,
predict, retrain, sdk_size, soak, sweep, throughput, train_scale.

Prints each benchmark's figures next to its baseline's in rich tables. With ``--json`` the
tables go to stderr and stdout gets every figure as one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence

from rich.console import Console

from bench import (
    attribution,
    best_hour,
    calls,
    churn_sweep,
    cost,
    delivery,
    dynamodb,
    engine,
    experiments,
    faults,
    idle,
    imports,
    in_app,
    journey,
    layer,
    load,
    predict,
    retrain,
    sdk_size,
    soak,
    sweep,
    throughput,
    train_scale,
)
from bench.common import Figures

BENCHMARKS: dict[str, Callable[[Console], Figures]] = {
    "attribution": attribution.run,
    "best_hour": best_hour.run,
    "calls": calls.run,
    "churn_sweep": churn_sweep.run,
    "cost": cost.run,
    "delivery": delivery.run,
    "dynamodb": dynamodb.run,
    "engine": engine.run,
    "experiments": experiments.run,
    "faults": faults.run,
    "idle": idle.run,
    "imports": imports.run,
    "in_app": in_app.run,
    "journey": journey.run,
    "layer": layer.run,
    "load": load.run,
    "predict": predict.run,
    "retrain": retrain.run,
    "sdk_size": sdk_size.run,
    "soak": soak.run,
    "sweep": sweep.run,
    "throughput": throughput.run,
    "train_scale": train_scale.run,
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="Nudge benchmarks, side by side with baselines."
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help=", ".join(BENCHMARKS))
    parser.add_argument(
        "--json", action="store_true", help="write all figures as one JSON object to stdout"
    )
    options = parser.parse_args(argv)
    names: list[str] = options.names or list(BENCHMARKS)
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown: {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    console = Console(stderr=options.json)
    report: dict[str, Figures] = {}
    for name in names:
        console.rule(f"[bold]{name}")
        started = time.monotonic()
        report[name] = BENCHMARKS[name](console)
        report[name]["bench_seconds"] = time.monotonic() - started
        console.print(f"  [dim]({report[name]['bench_seconds']:.0f} s)[/dim]\n")
    if options.json:
        json.dump(report, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
