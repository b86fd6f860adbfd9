"""DynamoDB and Scheduler API calls per event, per shipped trigger, through the real path.

Where ``engine.py`` counts scheduler calls with the pure engine, this runs the deployed
code: in-process on moto (the account of ``dynamodb.py``), each shipped trigger alone
(a temp folder holding that one trigger file plus ``triggers/templates``, passed to
Evaluate as ``NUDGE_TRIGGERS_DIR``), and once with an empty folder, the baseline: what
ingest, the profiles and the stream consumer cost with no trigger at all.

The stream is ``engine._realistic_stream`` (40 people over 30 days), sent to the Ingest
handler as one ``/v1/batch`` per person and day, in time order, received at the time of
its last event. After each batch the table's stream is handed to the Evaluate handler by
hand (the template's filter and BatchSize), every record stamped with the batch's time as
``ApproximateCreationDateTime`` (Evaluate's clock). Before each batch, the schedules due by
then fire in time order: Evaluate is invoked with the schedule's ``Target.Input``,
``<aws.scheduler.scheduled-time>`` replaced by its ``at()`` time, and the schedule is then
deleted by the bench, as Scheduler does for ``ActionAfterCompletion: DELETE`` (no API call
of Nudge's). The template's recurring InactivitySweep runs every hour from the first batch,
in time order with them; its DynamoDB calls are counted apart, since they are a fixed cost
per hour, not per event. After the last batch the sweep runs on for the longest inactivity
duration plus 2 hours, then every schedule still armed fires, so each event's timers and
each quiet spell are decided and paid for. Schedules are read with ``ListSchedules`` /
``GetSchedule`` on a client of the bench's own.

Counted: every call on the clients ``nudge.bootstrap`` builds (the ones both handlers use),
with botocore's ``after-call`` hook: DynamoDB requests by operation, and Scheduler's
CreateSchedule and DeleteSchedule, divided by the events accepted. A conditional write
that fails and a CreateSchedule refused as a conflict are counted: they are requests.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

import boto3
from moto.events.models import EventPattern
from nudge import bootstrap
from nudge.domain.intake import Event
from nudge.domain.triggers.engine import SWEEP_EVERY
from nudge.domain.triggers.model import Inactivity
from rich.console import Console

from bench.common import REPO, Figures, side_by_side
from bench.dynamodb import (
    WRITE_OPERATIONS,
    Handler,
    _account,
    _api_event,
    _load_handler,
    _Stream,
)
from bench.engine import _realistic_stream

if TYPE_CHECKING:
    from mypy_boto3_scheduler import EventBridgeSchedulerClient

__all__ = ["run"]

PEOPLE = 40  # 60 took 100 s for re_engagement alone on a shared 2-core machine
DAYS = 30
GOAL = 0.05  # scheduler calls per event, inactivity tracking
INACTIVITY_TRIGGER = "re_engagement"
SCHEDULED_TIME = "<aws.scheduler.scheduled-time>"
# Fields ingest sets itself; the replayed bodies carry them from read_events.
_SERVER_FIELDS = ("receivedAt", "originalTimestamp")


@dataclass
class CallCounter:
    """Every call a botocore client makes, by service and operation (errors included)."""

    dynamodb: Counter[str] = field(default_factory=Counter)
    scheduler: Counter[str] = field(default_factory=Counter)

    def watch(self, client: Any, service: str, into: Counter[str]) -> None:
        def count(model: Any, **_: Any) -> None:
            into[model.name] += 1

        client.meta.events.register(f"after-call.{service}.*", count)


@dataclass(frozen=True)
class Batch:
    at: datetime  # received: the time of its last event
    messages: list[dict[str, Any]]


def _batches(events: list[Event]) -> list[Batch]:
    """One /v1/batch per person and day, in the order they are received."""
    grouped: dict[tuple[str, str], list[Event]] = {}
    for event in events:
        grouped.setdefault((str(event.user_id), event.timestamp.date().isoformat()), []).append(
            event
        )
    batches = [
        Batch(
            at=max(event.timestamp for event in group),
            messages=[
                {k: v for k, v in event.body.items() if k not in _SERVER_FIELDS} for event in group
            ],
        )
        for group in grouped.values()
    ]
    return sorted(batches, key=lambda batch: batch.at)


@contextmanager
def _trigger_folder(trigger_file: Path | None) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="nudge-bench-triggers-") as folder:
        root = Path(folder)
        if trigger_file is not None:
            shutil.copy(trigger_file, root / trigger_file.name)
        shutil.copytree(REPO / "triggers" / "templates", root / "templates")
        yield root


class _Schedules:
    """EventBridge Scheduler's side: fires due one-time schedules into Evaluate, and runs
    the template's recurring InactivitySweep every hour, in time order with them."""

    def __init__(
        self,
        client: EventBridgeSchedulerClient,
        group: str,
        evaluate: Handler,
        sweep: Sweep,
    ) -> None:
        self._client = client
        self._group = group
        self._evaluate = evaluate
        self._sweep = sweep
        self._known: dict[str, tuple[datetime, str]] = {}  # name -> (at, input); names are unique
        self.fired = 0

    def _armed(self) -> list[tuple[datetime, str, str]]:
        names: list[str] = []
        for page in self._client.get_paginator("list_schedules").paginate(GroupName=self._group):
            names += [entry["Name"] for entry in page["Schedules"]]
        for name in names:
            if name not in self._known:
                found = self._client.get_schedule(Name=name, GroupName=self._group)
                expression = found["ScheduleExpression"]
                if not expression.startswith("at("):
                    continue  # the recurring sweep: run by ``Sweep``
                at = datetime.fromisoformat(expression[len("at(") : -1]).replace(tzinfo=UTC)
                self._known[name] = (at, found["Target"]["Input"])
        armed = [name for name in names if name in self._known]
        return sorted((self._known[name][0], name, self._known[name][1]) for name in armed)

    def fire_until(self, moment: datetime, *, sweeps: bool = True) -> None:
        """Fires every schedule due by ``moment``, earliest first, sweeps included."""
        for _ in range(1_000_000):  # bounded; a fire may arm a later schedule
            due = [entry for entry in self._armed() if entry[0] <= moment]
            sweep_first = not due or self._sweep.next_run <= due[0][0]
            if sweeps and self._sweep.due(moment) and sweep_first:
                self._sweep.run()
                continue
            if not due:
                return
            at, name, text = due[0]
            stamp = at.isoformat().replace("+00:00", "Z")
            payload = json.loads(text.replace(SCHEDULED_TIME, stamp))
            self._evaluate(payload)
            self.fired += 1
            # ActionAfterCompletion: DELETE - Scheduler's own doing, not a call of Nudge's.
            self._client.delete_schedule(Name=name, GroupName=self._group)
            self._known.pop(name, None)
        raise RuntimeError("schedules keep arming schedules")


@dataclass
class Sweep:
    """The template's InactivitySweep: its Target.Input every ``every``, from ``next_run``.

    Its DynamoDB calls are counted apart: they are a fixed cost per hour, whatever the
    number of events, so dividing them by this small stream's events would mislead.
    """

    text: str
    every: timedelta
    next_run: datetime
    evaluate: Handler
    counter: CallCounter
    runs: int = 0
    dynamodb: Counter[str] = field(default_factory=Counter)

    def due(self, moment: datetime) -> bool:
        return self.next_run <= moment

    def run(self) -> None:
        before = Counter(self.counter.dynamodb)
        stamp = self.next_run.isoformat().replace("+00:00", "Z")
        self.evaluate(json.loads(self.text.replace(SCHEDULED_TIME, stamp)))
        self.dynamodb += self.counter.dynamodb - before
        self.counter.dynamodb.subtract(self.counter.dynamodb - before)
        self.runs += 1
        self.next_run += self.every


def _quiet(when: object) -> TypeGuard[Inactivity]:
    return isinstance(when, Inactivity)


def _stamped(event: dict[str, Any], clock: list[datetime]) -> dict[str, Any]:
    seconds = int(clock[0].timestamp())
    return {
        **event,
        "Records": [
            {**record, "dynamodb": {**record["dynamodb"], "ApproximateCreationDateTime": seconds}}
            for record in event["Records"]
        ],
    }


def _run_one(trigger_file: Path | None, batches: list[Batch]) -> dict[str, Any]:
    with _trigger_folder(trigger_file) as folder, _account() as (template, dynamodb, table):
        ingest = _load_handler(template, "Ingest")
        # Evaluate's environment only: the template sets no NUDGE_TRIGGERS_DIR.
        os.environ["NUDGE_TRIGGERS_DIR"] = str(folder)
        evaluate = _load_handler(template, "Evaluate")
        loaded = sorted(bootstrap.trigger_index().triggers)
        counter = CallCounter()
        counter.watch(bootstrap.dynamodb_client(), "dynamodb", counter.dynamodb)
        counter.watch(bootstrap.scheduler_client(), "scheduler", counter.scheduler)
        region = template.names.region
        clock = [batches[0].at]
        (source,) = template.functions["Evaluate"].stream_sources
        stream = _Stream(
            dynamodb=dynamodb,
            streams=boto3.client("dynamodbstreams", region_name=region),
            table=table,
            patterns=[EventPattern.load(json.dumps(pattern)) for pattern in source.filters],
            batch_size=source.batch_size,
            handler=lambda event: evaluate(_stamped(event, clock)),
        )
        (sweep_properties,) = template.schedules.values()
        sweep = Sweep(
            text=sweep_properties["Target"]["Input"],
            every=SWEEP_EVERY,
            next_run=batches[0].at + SWEEP_EVERY,  # a rate schedule's first run
            evaluate=evaluate,
            counter=counter,
        )
        schedules = _Schedules(
            boto3.client("scheduler", region_name=region),
            bootstrap.engine_settings().schedule_group,
            evaluate,
            sweep,
        )
        events = evaluated = 0
        for batch in batches:
            schedules.fire_until(batch.at)
            request = _api_event("batch", {"batch": batch.messages})
            request["requestContext"]["timeEpoch"] = int(batch.at.timestamp() * 1000) + 1
            response = ingest(request)
            if response.get("statusCode") != 200:
                raise RuntimeError(f"ingest refused a bench request: {response}")
            events += len(batch.messages)
            clock[0] = batch.at
            evaluated += stream.drain()
        # Past the last event until everyone's last timer and quiet spell is decided.
        longest = max(
            (
                t.when.inactive
                for t in bootstrap.trigger_index().triggers.values()
                if _quiet(t.when)
            ),
            default=timedelta(0),
        )
        schedules.fire_until(batches[-1].at + longest + 2 * SWEEP_EVERY)
        schedules.fire_until(datetime.max.replace(tzinfo=UTC), sweeps=False)
        if evaluated != events:
            raise RuntimeError(f"Evaluate saw {evaluated} of {events} events")
        return {
            "triggers": loaded,
            "events": events,
            "batches": len(batches),
            "timers_fired": schedules.fired,
            "sweeps": sweep.runs,
            "sweep_dynamodb": dict(sorted(sweep.dynamodb.items())),
            "dynamodb": dict(sorted((+counter.dynamodb).items())),
            "scheduler": dict(sorted(counter.scheduler.items())),
        }


def _per_event(result: dict[str, Any]) -> dict[str, float]:
    events: int = result["events"]
    dynamodb: dict[str, int] = result["dynamodb"]
    scheduler: dict[str, int] = result["scheduler"]
    return {
        "dynamodb_requests": sum(dynamodb.values()) / events,
        "dynamodb_writes": sum(n for op, n in dynamodb.items() if op in WRITE_OPERATIONS) / events,
        "scheduler_calls": sum(scheduler.values()) / events,
        "create_schedule": scheduler.get("CreateSchedule", 0) / events,
        "delete_schedule": scheduler.get("DeleteSchedule", 0) / events,
    }


def run(console: Console) -> Figures:
    batches = _batches(_realistic_stream(people=PEOPLE, days=DAYS))
    cases: list[tuple[str, Path | None]] = [("no triggers", None)]
    cases += [(path.stem, path) for path in sorted((REPO / "triggers").glob("*.yaml"))]
    figures: Figures = {"people": PEOPLE, "days": DAYS, "goal_inactivity": GOAL, "rows": {}}
    rows: list[list[str]] = []
    notes: list[str] = []
    seconds: Callable[[], float] = time.monotonic
    for label, path in cases:
        started = seconds()
        result = _run_one(path, batches)
        per_event = _per_event(result)
        result["per_event"] = per_event
        result["seconds"] = seconds() - started
        figures["rows"][label] = result
        goal = ""
        if label == INACTIVITY_TRIGGER:
            met = per_event["scheduler_calls"] < GOAL
            figures["goal_inactivity_met"] = met
            goal = f"< {GOAL} {'met' if met else 'MISSED'}"
        rows.append(
            [
                label,
                f"{per_event['dynamodb_requests']:.3f}",
                f"{per_event['dynamodb_writes']:.3f}",
                f"{per_event['scheduler_calls']:.4f}"
                f" ({per_event['create_schedule']:.4f} + {per_event['delete_schedule']:.4f})",
                goal,
            ]
        )
        operations = ", ".join(f"{op} {n}" for op, n in result["dynamodb"].items())
        sweep_calls = ", ".join(f"{op} {n}" for op, n in result["sweep_dynamodb"].items())
        notes.append(
            f"  {label}: {result['timers_fired']} timers fired, {result['seconds']:.0f} s;"
            f" DynamoDB {operations}; {result['sweeps']} hourly sweeps, apart:"
            f" DynamoDB {sweep_calls or 'none'}"
        )
    events = figures["rows"]["no triggers"]["events"]
    console.print(
        side_by_side(
            f"API calls per event through Ingest + Evaluate on moto, realistic stream"
            f" ({events:,} events, {PEOPLE} people, {DAYS} days, {len(batches)} batches)",
            [
                "trigger",
                "DynamoDB requests/event",
                "of which writes",
                "Scheduler calls/event (create + delete)",
                "goal",
            ],
            rows,
        )
    )
    for note in notes:
        console.print(note, highlight=False)
    return figures
