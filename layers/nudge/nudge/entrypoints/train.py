"""``nudge train PREDICTION``: read the definition and the recorded events (a file, or the
deployed table with AWS credentials), train, print the quality against random (and, on the
simulator, against the true probabilities), and write the artefact only when training
succeeded."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from nudge.domain.intake import Event
from nudge.domain.person import PersonId
from nudge.domain.predictions.loader import load_predictions
from nudge.domain.predictions.model import EventLabel, InactiveLabel
from nudge.domain.predictions.sample import TRAINING_PEOPLE, PeopleSample
from nudge.service.recorded_events import read_events, read_items

__all__ = ["EventSource", "TrainOptions", "run_train"]


@dataclass(frozen=True)
class EventSource:
    """Where the events come from: a file (``--events``) or a table (``--table``, by
    default $NUDGE_TABLE_NAME)."""

    file: Path | None = None
    table: str | None = None


@dataclass(frozen=True)
class TrainOptions:
    cutoffs: int = 8
    every: timedelta = timedelta(days=7)
    held_out: int = 2
    out: Path | None = None
    truth: Path | None = None
    trees: int = 200
    depth: int = 6
    people: int = TRAINING_PEOPLE


def run_train(
    prediction_id: str, source: EventSource, predictions_dir: Path, options: TrainOptions
) -> int:
    from nudge.adapters.gbdt import GbdtParams
    from nudge.service.train import Plan, TooLittleData, train

    loaded = load_predictions(predictions_dir) if predictions_dir.is_dir() else None
    if loaded is None or loaded.problems:
        for problem in loaded.problems if loaded else [f"{predictions_dir}: no such folder"]:
            sys.stderr.write(f"{problem}\n")
        return 2
    prediction = loaded.get(prediction_id)
    if prediction is None:
        known = ", ".join(p.id for p in loaded.predictions) or "none"
        sys.stderr.write(f"no prediction {prediction_id!r} in {predictions_dir} (known: {known})\n")
        return 2
    sample = PeopleSample(options.people)
    read = _read(source, sample)
    if read is None:
        return 2
    events, skipped = read
    truth = _truth(options.truth, prediction.label) if options.truth else None
    plan = Plan(
        cutoffs=options.cutoffs,
        every=options.every,
        held_out=options.held_out,
        params=GbdtParams(trees=options.trees, depth=options.depth),
    )
    result = train(prediction, events, plan, datetime.now(UTC), truth)
    if isinstance(result, TooLittleData):
        sys.stderr.write(f"{result.message}\n")
        return 1
    out = options.out or Path("models") / f"{prediction.id}.json"
    _write(out, result.artefact)
    _print(result.report.to_json(), len(events), len(skipped), out, options.truth is not None)
    if len(sample.seen) > len(sample.kept):
        sys.stdout.write(
            f"trained on a sample of {len(sample.kept):,} of {len(sample.seen):,} people"
            " (--people)\n"
        )
    return 0


def _read(source: EventSource, sample: PeopleSample) -> tuple[list[Event], list[str]] | None:
    """The sampled people's events and the lines (or items) skipped, the same way from a
    file or a table."""
    if source.file is not None:
        with source.file.open(encoding="utf-8") as lines:
            return read_events(lines, sample)
    table = source.table or os.environ.get("NUDGE_TABLE_NAME")
    if not table:
        sys.stderr.write("name the events: --events FILE, --table or NUDGE_TABLE_NAME\n")
        return None
    from nudge.bootstrap import stored_events

    return read_items(stored_events(table_name=table).every_event(), sample)


def _truth(
    path: Path, label: InactiveLabel | EventLabel
) -> Callable[[PersonId, datetime], float | None]:
    """The simulator's true probabilities (bench/shop_truth.py writes them), by person and
    cut-off, for this label: a line with ``"event": E`` holds the chance of E in the horizon,
    one without holds the chance of no event at all (churn). None where it has none
    (another label or horizon, a cut-off it was not computed at)."""
    wanted = label.event if isinstance(label, EventLabel) else None
    table: dict[str, dict[str, float]] = {}
    with path.open(encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            if (
                record.get("horizon_seconds") == label.horizon.total_seconds()
                and record.get("event") == wanted
            ):
                table[str(record["userId"])] = record["at"]

    def lookup(person: PersonId, cutoff: datetime) -> float | None:
        value = table.get(person.value, {}).get(cutoff.isoformat())
        return None if value is None else float(value)

    return lookup


def _write(out: Path, artefact: dict[str, Any]) -> None:
    """All or nothing: a half-written artefact would replace a good one."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    partial.write_text(json.dumps(artefact, separators=(",", ":")), encoding="utf-8")
    os.replace(partial, out)


def _print(report: dict[str, Any], events: int, skipped: int, out: Path, truth: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(
        f"{events} events ({skipped} skipped); trained on {report['train_rows']} rows"
        f" ({report['train_positives']} positive) at cut-offs {', '.join(report['train_cutoffs'])};"
        f" held out {report['held_out_rows']} rows ({report['held_out_positives']} positive)"
        f" at {', '.join(report['held_out_cutoffs'])}"
    )
    quality = Table(title="held-out quality")
    for column in ("measure", "model", "true probabilities (ceiling)"):
        quality.add_column(column)
    ceiling = report["ceiling_auc"] is not None
    quality.add_row(
        "AUC",
        f"{report['auc']:.3f}",
        f"{report['ceiling_auc']:.3f}" if ceiling else _no_ceiling(truth),
    )
    quality.add_row(
        "prediction quality (average lift over random)",
        f"{report['quality']:.0%}",
        f"{report['ceiling_quality']:.0%}" if ceiling else "n/a",
    )
    console.print(quality)
    bins = Table(title="calibration (held out)")
    for column in ("predicted", "people", "mean predicted", "observed"):
        bins.add_column(column)
    for row in report["calibration"]:
        bins.add_row(
            f"{row['low']:.0%}-{row['high']:.0%}",
            str(row["count"]),
            f"{row['predicted']:.1%}",
            f"{row['observed']:.1%}",
        )
    console.print(bins)
    features = Table(title="features that matter most (share of split gain)")
    features.add_column("feature")
    features.add_column("share")
    for name, share in report["importance"][:8]:
        features.add_row(name, f"{share:.1%}")
    console.print(features)
    console.print(f"wrote {out}")


def _no_ceiling(truth: bool) -> str:
    if not truth:
        return "n/a (no --truth)"
    return "n/a (not in --truth)"  # no line of this label, or not at these cut-offs
