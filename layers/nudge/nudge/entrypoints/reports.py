"""`nudge backtest`, `nudge explain` and `nudge report`: terminal reports (rich) or JSON."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nudge.config import ConfigError
from nudge.domain.predictions.live import Scoring
from nudge.domain.triggers.loader import load_triggers
from nudge.domain.triggers.model import Trigger
from nudge.domain.triggers.scores import uses_scores
from nudge.service.backtest import backtest
from nudge.service.recorded_events import read_events

__all__ = ["run_backtest", "run_explain", "run_report"]


def _scoring(triggers: list[Trigger], triggers_dir: Path) -> Scoring | None:
    """The predictions beside the triggers, scored as Evaluate scores them, when a trigger
    reads a score (else scoring every replayed event would only cost time)."""
    from nudge.adapters.model_file import load_scoring

    if not any(uses_scores(trigger) for trigger in triggers if trigger.enabled):
        return None
    folder = triggers_dir.parent
    scoring, problems = load_scoring(folder / "predictions", folder / "models")
    for problem in problems:
        sys.stderr.write(f"scoring: {problem}\n")
    return scoring


def run_backtest(events_path: Path, triggers_dir: Path, *, as_json: bool) -> int:
    loaded = load_triggers(triggers_dir)
    if loaded.problems:
        for problem in loaded.problems:
            sys.stderr.write(f"{problem}\n")
        return 1
    with events_path.open(encoding="utf-8") as lines:
        events, skipped = read_events(lines)
    scoring = _scoring(loaded.triggers, triggers_dir)
    show_progress = not as_json and sys.stderr.isatty() and len(events) > 1000
    if show_progress:
        from rich.progress import Progress

        with Progress(transient=True) as bar:
            task = bar.add_task("replaying", total=len(events))
            report = backtest(
                events,
                loaded.triggers,
                progress=lambda done: bar.update(task, completed=done),
                scoring=scoring,
            )
    else:
        report = backtest(events, loaded.triggers, scoring=scoring)
    report.skipped = skipped
    if as_json:
        sys.stdout.write(json.dumps(report.to_json(), ensure_ascii=False) + "\n")
    else:
        _print_backtest(report.to_json(), skipped)
    return 0


def _print_backtest(summary: dict[str, Any], skipped: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(
        f"replayed {summary['events']} events up to {summary['clock']}; skipped {len(skipped)}"
    )
    fires = Table(title="fires per trigger")
    for column in ("trigger", "fires", "busiest day"):
        fires.add_column(column)
    for trigger, report in summary["triggers"].items():
        days = report["per_day"]
        busiest = max(days.items(), key=lambda item: item[1]) if days else None
        fires.add_row(
            trigger, str(report["fires"]), f"{busiest[0]}: {busiest[1]}" if busiest else "-"
        )
    console.print(fires)
    thresholds = Table(title="what the thresholds measure, in this data")
    for column in ("trigger", "quantity", "count", "p10", "p50", "p90", "p99"):
        thresholds.add_column(column)
    for trigger, report in summary["triggers"].items():
        for label, spread in report["thresholds"].items():
            row = [str(spread.get(key, "-")) for key in ("count", "p10", "p50", "p90", "p99")]
            thresholds.add_row(trigger, label, *row)
    console.print(thresholds)
    rescored = summary.get("sweep_rescored")
    if rescored is not None:
        console.print(
            f"the hourly sweep re-scored quiet people {rescored['people']} times and rewrote"
            f" {rescored['kept']} profiles (a score moved across a watched threshold)"
        )
    for line in skipped[:10]:
        console.print(f"[yellow]skipped[/] {line}")


def run_explain(user_id: str, trigger: str | None, table: str | None, triggers_dir: Path) -> int:
    from nudge.bootstrap import person_views

    table_name = table or os.environ.get("NUDGE_TABLE_NAME")
    if not table_name:
        sys.stderr.write("name the table: --table or NUDGE_TABLE_NAME\n")
        return 2
    try:
        views = person_views(table_name=table_name, triggers_dir=triggers_dir)
    except ConfigError as error:
        sys.stderr.write(f"{error}\n")
        return 2
    now = datetime.now(UTC)  # an entry point: the one place this command reads the clock
    decisions = [
        d for d in views.explain(user_id, now) if trigger is None or d.get("trigger") == trigger
    ]
    positions = [
        j for j in views.journeys(user_id) if trigger is None or j.get("trigger") == trigger
    ]
    for prediction, scored in views.scores(user_id).items():
        sys.stdout.write("".join(line + "\n" for line in score_lines(prediction, scored)))
    if not decisions and not positions:
        sys.stdout.write(
            f"no decisions recorded for {user_id}" + (f" and {trigger}" if trigger else "") + "\n"
        )
        return 0
    for decision in decisions:
        occurrence = f" [{decision['occurrence']}]" if decision.get("occurrence") else ""
        outcome = f"{decision['outcome']} — {decision['reason']}"
        sys.stdout.write(f"{decision['at']}  {decision['trigger']}{occurrence}: {outcome}\n")
    if positions:
        sys.stdout.write("journeys:\n")
    for position in positions:
        where = f"step {position['step']}" if position.get("step") else "end"
        sys.stdout.write(
            f"  {position['trigger']} [{position['occurrence']}]: {position['status']} at"
            f" {where} ({position['at']}): {position['reason']}\n"
        )
    return 0


TOP_CONTRIBUTIONS = 5  # the features printed; the control API's JSON has them all


def score_lines(prediction: str, scored: Mapping[str, Any]) -> list[str]:
    """A score, its model, and the features that moved it most, in score points (log-odds
    beside them): ``profile.days_inactive = 9.17  +18.3 points (+1.104 log-odds)``."""
    lines = [f"score {prediction}: {scored['score']} (model {scored['model']})"]
    if "contributionsUnavailable" in scored:
        return [*lines, f"  contributions not available: {scored['contributionsUnavailable']}"]
    moved = [c for c in scored["contributions"] if c["logOdds"] != 0]
    lines.append(
        f"  from {scored['base']['score']:.1f} for someone the model knows nothing about,"
        f" the features that moved it most (as of {scored['asOf']}):"
    )
    width = max((len(_feature_text(c)) for c in moved[:TOP_CONTRIBUTIONS]), default=0)
    for contribution in moved[:TOP_CONTRIBUTIONS]:
        lines.append(
            f"    {_feature_text(contribution):<{width}}  {contribution['points']:+.1f} points"
            f" ({contribution['logOdds']:+.3f} log-odds)"
        )
    rest = moved[TOP_CONTRIBUTIONS:]
    if rest:
        points = sum(c["points"] for c in rest)
        lines.append(f"    {len(rest)} more features together {points:+.1f} points")
    if "note" in scored:
        lines.append(f"  note: {scored['note']}")
    return lines


def _feature_text(contribution: Mapping[str, Any]) -> str:
    value = contribution["value"]
    if value is None:
        shown = "missing"
    else:
        shown = f"{value:g}" if float(value).is_integer() else f"{value:.2f}"
    return f"{contribution['feature']} = {shown}"


def run_report(
    trigger: str | None,
    table: str | None,
    triggers_dir: Path,
    *,
    as_json: bool,
    html: Path | None,
    version: str | None = None,
) -> int:
    """Experiment reports from the table's counters: a summary of every trigger, or one
    trigger in full; ``--json`` the API's JSON, ``--html`` one self-contained file."""
    from nudge.bootstrap import reporting
    from nudge.domain.errors import InvalidRequest
    from nudge.service.ports import OutsideError

    table_name = table or os.environ.get("NUDGE_TABLE_NAME")
    if not table_name:
        sys.stderr.write("name the table: --table or NUDGE_TABLE_NAME\n")
        return 2
    today = datetime.now(UTC).date()  # an entry point: the one place this command reads the clock
    try:
        service = reporting(table_name=table_name, triggers_dir=triggers_dir)
        reports = [service.trigger(trigger, today, version)] if trigger else service.triggers(today)
    except InvalidRequest as error:
        sys.stderr.write(f"{error.message}\n")
        return 2
    except (ConfigError, OutsideError) as error:
        sys.stderr.write(f"cannot read the counters: {error}\n")
        return 1
    return _show_reports(reports, one=trigger is not None, as_json=as_json, html=html)


def _show_reports(
    reports: list[dict[str, Any]], *, one: bool, as_json: bool, html: Path | None
) -> int:
    from rich.console import Console

    from nudge.entrypoints.report_render import html_report, print_report, print_summary

    if html is not None:
        html.write_text(html_report(reports), encoding="utf-8")
        sys.stderr.write(f"wrote {html}\n")
    if as_json:
        body: Any = reports[0] if one else {"triggers": reports}
        sys.stdout.write(json.dumps(body, ensure_ascii=False, allow_nan=False) + "\n")
        return 0
    console = Console()
    if one:
        print_report(reports[0], console)
    else:
        print_summary(reports, console)
    return 0
