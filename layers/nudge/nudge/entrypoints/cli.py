"""The `nudge` command line: openapi, validate, schema, train, backtest, explain, preview,
report."""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from nudge import __version__
from nudge.domain.durations import parse_duration
from nudge.domain.predictions.loader import load_predictions
from nudge.domain.predictions.sample import TRAINING_PEOPLE
from nudge.domain.predictions.schema import prediction_schema
from nudge.domain.triggers.guarantees import template_warnings
from nudge.domain.triggers.loader import Problem, load_triggers
from nudge.domain.triggers.schema import trigger_schema
from nudge.domain.triggers.scores import score_ids
from nudge.entrypoints.openapi import openapi_document
from nudge.entrypoints.preview import run_preview
from nudge.entrypoints.privacy import run_export, run_forget
from nudge.entrypoints.reports import run_backtest, run_explain, run_report
from nudge.entrypoints.train import EventSource, TrainOptions, run_train

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nudge", description="Behavioral triggers in your own AWS account."
    )
    parser.add_argument("--version", action="version", version=f"nudge {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    openapi = commands.add_parser("openapi", help="print the beacon API's OpenAPI document")
    openapi.add_argument("--indent", type=int, default=2, help="JSON indentation (0 for one line)")
    validate = commands.add_parser("validate", help="check trigger files; print file:line: problem")
    validate.add_argument("directory", nargs="?", type=Path, default=Path("triggers"))
    validate.add_argument("--templates", type=Path, help="templates folder (default DIR/templates)")
    validate.add_argument(
        "--strict", action="store_true", help="exit 1 on warnings too (for CI and deploy scripts)"
    )
    validate.add_argument(
        "--predictions", type=Path, help="prediction files (default: predictions/ beside DIR)"
    )
    schema = commands.add_parser("schema", help="print the JSON Schema of a trigger file")
    schema.add_argument(
        "kind", nargs="?", choices=("trigger", "prediction"), default="trigger", help="which file"
    )
    train = commands.add_parser("train", help="train a prediction's model from recorded events")
    train.add_argument("prediction", help="the prediction's id (predictions/<file>.yaml)")
    source = train.add_mutually_exclusive_group()
    source.add_argument("--events", type=Path, help="JSON lines: Segment messages or table items")
    source.add_argument(
        "--table", help="read every event from the table (default: $NUDGE_TABLE_NAME)"
    )
    train.add_argument("--predictions", type=Path, default=Path("predictions"))
    train.add_argument("--cutoffs", type=int, default=8, help="cut-offs, a week apart (default 8)")
    train.add_argument("--every", type=parse_duration, default="7d", help="between cut-offs")
    train.add_argument("--held-out", type=int, default=2, help="latest cut-offs held out")
    train.add_argument("--out", type=Path, help="the artefact (default models/<id>.json)")
    train.add_argument("--truth", type=Path, help="true probabilities (the simulator's)")
    train.add_argument("--trees", type=int, default=200, help="boosting rounds (default 200)")
    train.add_argument("--depth", type=int, default=6, help="a tree's depth (default 6)")
    train.add_argument(
        "--people",
        type=_at_least_one,
        default=TRAINING_PEOPLE,
        help=f"train on a sample of at most this many people (default {TRAINING_PEOPLE:,})",
    )
    backtest = commands.add_parser("backtest", help="replay recorded events through the triggers")
    backtest.add_argument("events", type=Path, help="JSON lines: Segment messages or table items")
    backtest.add_argument("--triggers", type=Path, default=Path("triggers"))
    backtest.add_argument("--json", action="store_true", help="one JSON object on stdout")
    explain = commands.add_parser("explain", help="why a user did or did not get a trigger")
    explain.add_argument("--user", required=True)
    explain.add_argument("--trigger")
    explain.add_argument("--table", help="table name (default: $NUDGE_TABLE_NAME)")
    explain.add_argument(
        "--triggers", type=Path, default=Path("triggers"), help="the deployed trigger files"
    )
    preview = commands.add_parser("preview", help="render a trigger's message to files, unsent")
    preview.add_argument("trigger", help="the trigger's id")
    preview.add_argument(
        "--user", required=True, type=Path, help='profile JSON: {"userId", "traits"}'
    )
    preview.add_argument("--event", type=Path, help="the triggering event (or a list of events)")
    preview.add_argument("--out", type=Path, default=Path("preview"), help="default ./preview")
    preview.add_argument("--triggers", type=Path, default=Path("triggers"))
    report = commands.add_parser("report", help="experiment results, from the table's counters")
    report.add_argument("trigger", nargs="?", help="one trigger in full (default: a summary)")
    report.add_argument("--json", action="store_true", help="the reports API's JSON on stdout")
    report.add_argument("--html", type=Path, help="also write one self-contained HTML file")
    report.add_argument("--version", dest="experiment_version", help="an earlier experiment")
    report.add_argument("--table", help="table name (default: $NUDGE_TABLE_NAME)")
    report.add_argument(
        "--triggers", type=Path, default=Path("triggers"), help="the deployed trigger files"
    )
    export = commands.add_parser("export", help="everything stored about a user, as JSON")
    export.add_argument("user", help="the userId (their linked visitors come along)")
    export.add_argument("--table", help="table name (default: $NUDGE_TABLE_NAME)")
    forget = commands.add_parser("forget", help="erase a user for good; later events dropped")
    forget.add_argument("user", help="the userId (their linked visitors go too)")
    forget.add_argument("--table", help="table name (default: $NUDGE_TABLE_NAME)")
    forget.add_argument(
        "--schedule-group", help="the timers' schedule group (default: $NUDGE_SCHEDULE_GROUP)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    if arguments.command == "openapi":
        indent = arguments.indent or None
        sys.stdout.write(json.dumps(openapi_document(), indent=indent, ensure_ascii=False) + "\n")
    elif arguments.command == "validate":
        status = _validate(arguments.directory, arguments.templates, strict=arguments.strict)
        return max(status, _validate_predictions(arguments.directory, arguments.predictions))
    elif arguments.command == "train":
        return run_train(
            arguments.prediction,
            EventSource(file=arguments.events, table=arguments.table),
            arguments.predictions,
            TrainOptions(
                cutoffs=arguments.cutoffs,
                every=arguments.every,
                held_out=arguments.held_out,
                out=arguments.out,
                truth=arguments.truth,
                trees=arguments.trees,
                depth=arguments.depth,
                people=arguments.people,
            ),
        )
    elif arguments.command == "schema":
        chosen = prediction_schema() if arguments.kind == "prediction" else trigger_schema()
        sys.stdout.write(json.dumps(chosen, indent=2) + "\n")
    elif arguments.command == "backtest":
        return run_backtest(arguments.events, arguments.triggers, as_json=arguments.json)
    elif arguments.command == "explain":
        return run_explain(arguments.user, arguments.trigger, arguments.table, arguments.triggers)
    elif arguments.command == "report":
        return run_report(
            arguments.trigger,
            arguments.table,
            arguments.triggers,
            as_json=arguments.json,
            html=arguments.html,
            version=arguments.experiment_version,
        )
    elif arguments.command == "export":
        return run_export(arguments.user, arguments.table)
    elif arguments.command == "forget":
        return run_forget(arguments.user, arguments.table, arguments.schedule_group)
    elif arguments.command == "preview":
        return run_preview(
            arguments.trigger, arguments.user, arguments.event, arguments.out, arguments.triggers
        )
    return 0


def _at_least_one(text: str) -> int:
    """argparse's type for a count: a clear error for 0, a negative or a word."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is less than 1")
    return value


def _validate(directory: Path, templates: Path | None, *, strict: bool = False) -> int:
    if not directory.is_dir():
        sys.stderr.write(f"{directory}: no such folder\n")
        return 2
    loaded = load_triggers(directory, templates)
    for problem in loaded.problems:
        sys.stdout.write(f"{problem}\n")
    warnings = [
        warning
        for trigger in loaded.triggers
        for warning in template_warnings(trigger, templates or directory / "templates")
    ]
    for warning in warnings:
        sys.stdout.write(f"{warning}\n")
    summary = (
        f"{len(loaded.triggers)} trigger(s) valid, {len(loaded.problems)} problem(s),"
        f" {len(warnings)} warning(s)"
    )
    sys.stderr.write(summary + "\n")
    return 1 if loaded.problems or (strict and warnings) else 0


def _validate_predictions(triggers: Path, given: Path | None) -> int:
    """The prediction files too, when there are any: those named, or a ``predictions``
    folder beside the triggers' (a project keeps them side by side)."""
    directory = given or triggers.parent / "predictions"
    if not directory.is_dir():
        if given is None:
            return 0
        sys.stderr.write(f"{directory}: no such folder\n")
        return 2
    loaded = load_predictions(directory)
    problems = [*loaded.problems, *_unknown_scores(triggers, {p.id for p in loaded.predictions})]
    for problem in problems:
        sys.stdout.write(f"{problem}\n")
    sys.stderr.write(f"{len(loaded.predictions)} prediction(s) valid, {len(problems)} problem(s)\n")
    return 1 if problems else 0


def _unknown_scores(triggers: Path, known: set[str]) -> list[Problem]:
    """A trigger's ``score:`` or ``profile.scores.<id>`` naming no prediction, at its line."""
    if not triggers.is_dir():
        return []
    loaded = load_triggers(triggers)
    found: list[Problem] = []
    for trigger in loaded.triggers:
        file = loaded.sources[trigger.id]
        for unknown in sorted(score_ids(trigger) - known):
            message = (
                f"trigger {trigger.id!r} reads the score of {unknown!r}, which no prediction"
                f" defines (known: {', '.join(sorted(known)) or 'none'})"
            )
            found.append(Problem(file, _line_naming(Path(file), unknown), message))
    return found


def _line_naming(file: Path, prediction: str) -> int:
    """The first line that reads the prediction's score (``score: id`` or a path to it)."""
    wanted = re.compile(
        rf"(score:\s*['\"]?{re.escape(prediction)}\b|scores\.{re.escape(prediction)}\b)"
    )
    lines = file.read_text(encoding="utf-8").splitlines()
    return next((n for n, line in enumerate(lines, start=1) if wanted.search(line)), 1)


if __name__ == "__main__":
    raise SystemExit(main())
