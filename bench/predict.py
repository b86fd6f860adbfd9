"""Predictions: what scoring costs per event, how big the artefact is, how long training
takes, and how close the model comes to the truth.

The simulated shop of ``bench/shop_truth.py`` (``NUDGE_BENCH_PREDICT_PEOPLE`` shoppers, 3,000
by default, over 90 days) goes through ``read_events`` (the parsing ``nudge train`` does)
and ``nudge.service.train.train`` with the shipped ``churn`` and ``purchase`` predictions: 8
weekly cut-offs, the latest 2 held out. Churn's ceiling is the closed-form truth; purchase's
is the simulator's Monte Carlo (``Shopper.order_probability``, ``NUDGE_BENCH_PREDICT_DRAWS``
futures a row at most, 400 by default), computed twice with two seeds so the Monte Carlo
error shows beside the model's gap. Then a second model of 200 trees of full depth 6 (no
leaf cap, 5 people a leaf at least: the most nodes a row can walk) is fitted on churn's
training rows, and churn's held-out rows are scored one at a time: by the pure-Python
scorer from its JSON artefact (what Evaluate loads) and by the library's ``predict_proba``
on a one-row array (what a Lambda with scikit-learn would call per event; the first 500
held-out rows). The pure scorer is timed both ways: walking the arrays, and compiled to
one Python function of nested ifs (what ``ScoreModel.score`` uses; compiled on first use,
timed too). Median per row, each row timed alone with ``perf_counter``. Last, what explain pays to
take one score apart (``domain/predictions/contributions.py``, exact TreeSHAP): per row,
for the shipped ``models/churn.json`` and for the 200-tree depth-6 model, beside walking
the same model once (what one score costs).
"""

from __future__ import annotations

import functools
import gzip
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from nudge.adapters.gbdt import GbdtParams, fit
from nudge.adapters.model_file import load_model
from nudge.domain.predictions.contributions import attribute
from nudge.domain.predictions.loader import load_predictions
from nudge.domain.predictions.metrics import auc, prediction_quality
from nudge.domain.predictions.score import ScoreModel, parse_model
from nudge.service.recorded_events import read_events
from nudge.service.train import Plan, Trained, TrainingReport, train
from rich.console import Console
from threadpoolctl import threadpool_limits

from bench.common import Figures, side_by_side
from bench.shop_truth import ORDER_DRAWS, TruthMix, TruthShop, simulate_truth

__all__ = ["run"]

ROOT = Path(__file__).resolve().parents[1]
PEOPLE = int(os.environ.get("NUDGE_BENCH_PREDICT_PEOPLE", "3000"))
WORST_CASE = GbdtParams(trees=200, depth=6, leaves=None, min_leaf=5)
# Futures per held-out row for the purchase truth (more: a closer ceiling, linearly slower).
DRAWS = int(os.environ.get("NUDGE_BENCH_PREDICT_DRAWS", str(ORDER_DRAWS)))


def run(console: Console) -> Figures:
    loaded = load_predictions(ROOT / "predictions")
    churn, purchase = loaded.get("churn"), loaded.get("purchase")
    assert churn is not None
    assert purchase is not None
    started = time.perf_counter()
    shop = simulate_truth(TruthMix(people=PEOPLE))
    simulated = time.perf_counter()
    events, _ = read_events(json.dumps(message) for message in shop.messages)
    parsed = time.perf_counter()
    result = train(
        churn,
        events,
        Plan(),
        datetime.now(UTC),
        truth=lambda person, cutoff: shop.truth(person.value, cutoff, churn.horizon),
    )
    trained = time.perf_counter()
    bought = train(purchase, events, Plan(), datetime.now(UTC))
    bought_at = time.perf_counter()
    assert isinstance(result, Trained)
    assert isinstance(bought, Trained)
    ceilings = _purchase_ceilings(shop, purchase.horizon, bought)
    timings = {
        "simulate": simulated - started,
        "read events": parsed - simulated,
        "churn: features, fit, report": trained - parsed,
        "purchase: features, fit, report": bought_at - trained,
        f"purchase truth, {len(bought.split.held_out):,} rows ({DRAWS} draws at most)": (
            ceilings.seconds
        ),
    }
    figures: Figures = {"people": PEOPLE, "events": len(events), "training_seconds": timings}
    figures["quality"] = _quality(console, result.report, bought.report, ceilings)
    figures["scoring"], worst = _scoring(console, result)
    figures["explaining"] = _explaining(
        console, worst, [row.features for row in result.split.held_out]
    )
    figures["import_ms"] = _import_ms()
    console.print(
        side_by_side(
            f"Training time, {PEOPLE:,} shoppers, {len(events):,} events, 90 days",
            ["step", "seconds"],
            [[step, f"{seconds:.1f}"] for step, seconds in timings.items()],
        )
    )
    console.print(
        f"  importing the scorer in a fresh interpreter: {figures['import_ms']:.1f} ms"
        " (beyond json, math and dataclasses)"
    )
    return figures


@dataclass(frozen=True)
class Ceiling:
    """The purchase truth's AUC and quality on the held-out rows it has (a session going on
    at the cut-off has none), from the shipped seed and from another one."""

    rows: int
    auc: float
    quality: float
    other_seed_auc: float
    other_seed_quality: float
    seconds: float  # the shipped seed's Monte Carlo alone


def _purchase_ceilings(shop: TruthShop, horizon: timedelta, trained: Trained) -> Ceiling:
    measures: list[tuple[float, float]] = []
    seconds: list[float] = []
    for replica in (0, 1):
        started = time.perf_counter()
        known = [
            (value, row.label)
            for row in trained.split.held_out
            if (
                value := shop.shoppers[row.person.value].order_probability(
                    row.cutoff, horizon, draws=DRAWS, replica=replica
                )
            )
            is not None
        ]
        seconds.append(time.perf_counter() - started)
        chances, labels = [value for value, _ in known], [label for _, label in known]
        measures.append((auc(chances, labels), prediction_quality(chances, labels)))
    return Ceiling(len(known), *measures[0], *measures[1], seconds[0])


def _quality(
    console: Console, churn: TrainingReport, purchase: TrainingReport, ceiling: Ceiling
) -> Figures:
    console.print(
        side_by_side(
            f"Held-out quality at {len(churn.held_out_cutoffs)} cut-offs: churn"
            f" {churn.held_out_rows:,} rows (train {churn.train_rows:,}), purchase"
            f" {purchase.held_out_rows:,} rows (train {purchase.train_rows:,}; the truth"
            f" for {ceiling.rows:,})",
            ["measure", "model (200 trees, depth 6, 31 leaves)", "true probabilities"],
            [
                ["churn AUC", f"{churn.auc:.3f}", f"{churn.ceiling_auc or 0:.3f}"],
                [
                    "churn prediction quality",
                    f"{churn.quality:.1%}",
                    f"{churn.ceiling_quality or 0:.1%}",
                ],
                [
                    "purchase AUC",
                    f"{purchase.auc:.3f}",
                    f"{ceiling.auc:.4f} (another seed {ceiling.other_seed_auc:.4f})",
                ],
                [
                    "purchase prediction quality",
                    f"{purchase.quality:.1%}",
                    f"{ceiling.quality:.2%} (another seed {ceiling.other_seed_quality:.2%})",
                ],
            ],
        )
    )
    return {
        "auc": churn.auc,
        "ceiling_auc": churn.ceiling_auc,
        "quality": churn.quality,
        "ceiling_quality": churn.ceiling_quality,
        "held_out_rows": churn.held_out_rows,
        "train_rows": churn.train_rows,
        "purchase": {
            "auc": purchase.auc,
            "quality": purchase.quality,
            "held_out_rows": purchase.held_out_rows,
            "held_out_positives": purchase.held_out_positives,
            "train_rows": purchase.train_rows,
            "draws": DRAWS,
            "ceiling": asdict(ceiling),
        },
    }


def _scoring(console: Console, result: Trained) -> tuple[Figures, ScoreModel]:
    rows = [row.features for row in result.split.train]
    labels = [row.label for row in result.split.train]
    booster = fit(rows, labels, WORST_CASE)
    artefact = json.dumps(
        {**result.artefact, "base": booster.base, "trees": booster.trees}, separators=(",", ":")
    )
    model = parse_model(artefact)
    assert isinstance(model, ScoreModel)
    held_out = [row.features for row in result.split.held_out]
    started = time.perf_counter()
    model.fast_probability(held_out[0])  # the first call compiles the trees
    compile_ms = (time.perf_counter() - started) * 1000
    compiled = _per_row_us(model.fast_probability, held_out)
    walked = _per_row_us(model.probability, held_out)
    library = booster.model
    # One thread, as in training: a one-row predict gains nothing from more, and on a busy
    # machine OpenMP's waiting threads would be what is measured.
    with threadpool_limits(limits=1):
        library.predict_proba(_one_row(held_out[0]))  # warm the library once
        theirs = _per_row_us(lambda row: library.predict_proba(_one_row(row)), held_out[:500])
    nodes = sum(len(tree["feature"]) for tree in booster.trees)
    size = len(artefact.encode())
    zipped = len(gzip.compress(artefact.encode(), 9))
    console.print(
        side_by_side(
            f"Scoring one row, 200 trees of depth 6 ({nodes:,} nodes), median µs",
            ["scorer", "µs per row"],
            [
                ["pure Python, compiled (Evaluate's after 3,000 rows)", f"{compiled:.1f}"],
                ["pure Python, walking the arrays (its first 3,000)", f"{walked:.1f}"],
                ["scikit-learn predict_proba, one-row array", f"{theirs:.1f}"],
            ],
        )
    )
    console.print(
        f"  artefact {size / 1024:.0f} KB of JSON ({zipped / 1024:.0f} KB gzipped);"
        f" compiling its trees on first use: {compile_ms:.0f} ms"
    )
    figures = {
        "compiled_us": compiled,
        "walked_us": walked,
        "library_us": theirs,
        "compile_ms": compile_ms,
        "artefact_bytes": size,
        "gzip_bytes": zipped,
        "nodes": nodes,
    }
    return figures, model


EXPLAINED_ROWS = 200  # a person a row: explain takes apart one score at a time


def _explaining(console: Console, worst: ScoreModel, held_out: list[list[float | None]]) -> Figures:
    """Contributions per row against one walk of the same trees, median ms."""
    shipped = load_model(ROOT / "models" / "churn.json")
    assert isinstance(shipped, ScoreModel)
    rows = held_out[:EXPLAINED_ROWS]
    figures: Figures = {}
    table = []
    for name, model in (("shipped churn.json", shipped), ("200 trees of depth 6", worst)):
        nodes = sum(len(tree.feature) for tree in model.trees)
        explained = _per_row_us(functools.partial(attribute, model), rows) / 1000
        walked = _per_row_us(model.log_odds, rows) / 1000
        figures[name] = {"nodes": nodes, "contributions_ms": explained, "walked_ms": walked}
        table.append(
            [
                f"{name} ({len(model.trees)} trees, {nodes:,} nodes)",
                f"{explained:.1f}",
                f"{walked:.2f}",
            ]
        )
    console.print(
        side_by_side(
            f"Taking one score apart (explain), {len(rows)} held-out rows, median ms",
            ["model", "contributions (TreeSHAP)", "one score, walked"],
            table,
        )
    )
    return figures


def _one_row(row: list[float | None]) -> Any:
    import numpy

    return numpy.array([[numpy.nan if x is None else x for x in row]])


def _per_row_us(
    score: Callable[[list[float | None]], object], rows: list[list[float | None]]
) -> float:
    timings = []
    for row in rows:
        started = time.perf_counter()
        score(row)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings) * 1e6


def _import_ms() -> float:
    """Median of 5 fresh interpreters importing the scorer, less 5 importing only what it
    imports from the standard library (json, math, dataclasses: Evaluate has them already)."""
    path = os.pathsep.join([str(ROOT / "layers" / "nudge"), str(ROOT)])
    env = {**os.environ, "PYTHONPATH": path}

    def once(code: str) -> float:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, env=env)
        return time.perf_counter() - started

    scorer = statistics.median(once("import nudge.domain.predictions.score") for _ in range(5))
    empty = statistics.median(once("import json, math, dataclasses") for _ in range(5))
    return (scorer - empty) * 1000
