"""What the engine-equivalence property tests share: a history as a client sends it, the live
path driven through it on a fresh mocked account, and the backtest over the same messages.

The live path is Ingest, the table's stream, Evaluate and its schedules, played in time order:
each one-time schedule is invoked at its due time and, when asked, the template's recurring
InactivitySweep at the top of every hour, as EventBridge Scheduler would.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from nudge.domain.triggers.loader import load_triggers
from nudge.service.backtest import BacktestReport, backtest
from nudge.service.recorded_events import read_events

from local.template import Template
from tests.conftest import REPO
from tests.integration._harness import Aws, Invoke, Stream, beacon, mocked_account

__all__ = ["Fires", "Live", "Sent", "backtest_fires", "backtested", "live", "per_day"]

# (user, occurrence, fire time): who fires, for what, when.
Fires = list[tuple[str, str, datetime]]

SWEEP_EVERY = timedelta(hours=1)  # InactivitySweep: rate(1 hour)


@dataclass(frozen=True)
class Sent:
    """One message as a client sends it, received at ``at`` (a resend keeps its message)."""

    at: datetime
    message: dict[str, Any]
    resend: bool = False


@dataclass
class Live:
    """The live path on one mocked account, played in time order by ``send`` and
    ``run_clock``; ``fires`` is what reached the send queue."""

    aws: Aws
    ingest: Invoke
    evaluate: Invoke
    stream: Stream
    group: str
    done: set[str] = field(default_factory=set)
    # The next run of the InactivitySweep schedule; None: the sweep is not played.
    next_sweep: datetime | None = None

    @classmethod
    def start(cls, aws: Aws, first_sweep: datetime | None = None) -> Live:
        ingest = aws.load_handler("Ingest")
        evaluate = aws.load_handler("Evaluate")
        group = aws.environment("Evaluate")["NUDGE_SCHEDULE_GROUP"]
        stream = Stream.of(aws, evaluate)
        return cls(aws, ingest, evaluate, stream, group, next_sweep=first_sweep)

    def send(self, item: Sent) -> None:
        """Ingest receives the message at its time; Evaluate sees the new records then."""
        response = self.ingest(beacon("batch", {"batch": [item.message]}, at=item.at))
        assert response["statusCode"] == 200, response
        records = self.stream.read()
        for record in records:
            record["dynamodb"]["ApproximateCreationDateTime"] = int(item.at.timestamp())
        responses = self.stream.deliver(records)
        assert all(r == {"batchItemFailures": []} for r in responses), responses

    def run_clock(self, until: datetime) -> None:
        """Every schedule due by ``until`` invoked at its due time, earliest first; a timer
        due at the same time as a sweep goes first."""
        due = self._due(until)
        while True:
            sweep = self.next_sweep if self.next_sweep and self.next_sweep <= until else None
            if due and (sweep is None or due[0][1] <= sweep):
                name, moment, raw = due[0]
                self._invoke(raw, moment)
                self.done.add(name)
                due = self._due(until)
            elif sweep is not None:
                # A sweep only fires: it arms and cancels no schedule, so ``due`` still holds.
                self._invoke(self._sweep_input(), sweep)
                self.next_sweep = sweep + SWEEP_EVERY
            else:
                return

    def _invoke(self, raw: str, scheduled: datetime) -> None:
        """Evaluate invoked by Scheduler: the schedule's input, its scheduled time filled in."""
        stamped = raw.replace(
            "<aws.scheduler.scheduled-time>", scheduled.strftime("%Y-%m-%dT%H:%M:%SZ")
        )
        self.evaluate(json.loads(stamped))

    def _sweep_input(self) -> str:
        return str(self.aws.template.schedules["InactivitySweep"]["Target"]["Input"])

    def _due(self, until: datetime) -> list[tuple[str, datetime, str]]:
        found = []
        for summary in self.aws.scheduler.list_schedules(GroupName=self.group)["Schedules"]:
            name = summary["Name"]
            if name in self.done:
                continue
            schedule = self.aws.scheduler.get_schedule(Name=name, GroupName=self.group)
            raw = schedule["Target"]["Input"]
            if "due" not in json.loads(raw):
                continue  # the recurring inactivity sweep, not a timer
            due = datetime.fromisoformat(json.loads(raw)["due"])
            if due <= until:
                found.append((name, due, raw))
        return sorted(found, key=lambda item: (item[1], item[0]))

    def fires(self, trigger: str) -> Fires:
        url = self.aws.environment("Evaluate")["NUDGE_SEND_QUEUE_URL"]
        fires: Fires = []
        while True:
            received = self.aws.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)
            if not received.get("Messages"):
                return sorted(fires)
            for message in received["Messages"]:
                fire = json.loads(message["Body"])
                if fire["trigger"] == trigger:
                    moment = datetime.fromisoformat(fire["firedAt"])
                    fires.append((fire["userId"], fire["occurrence"], moment))


def live(
    template: Template,
    session: boto3.Session,
    sent: list[Sent],
    trigger: str,
    until: datetime,
    first_sweep: datetime | None = None,
    triggers: Path | None = None,
) -> Fires:
    """The trigger's fires on the live path, its clock run on to ``until`` after the last
    message; with ``first_sweep``, the hourly sweep runs from then on; with ``triggers``,
    the functions load that folder instead of the shipped one."""
    with mocked_account(template, session) as aws:
        if triggers is not None:
            aws.monkeypatch.setenv("NUDGE_TRIGGERS_DIR", str(triggers))
        world = Live.start(aws, first_sweep)
        for item in sent:
            world.run_clock(item.at)
            world.send(item)
        world.run_clock(until)
        return world.fires(trigger)


def backtested(sent: list[Sent], trigger: str) -> dict[str, int]:
    """The backtest's fires per day, over the messages the table holds (each stored once)."""
    report = _backtest(sent, trigger, REPO / "triggers").triggers[trigger]
    return dict(report.per_day)


def backtest_fires(sent: list[Sent], trigger: str, triggers: Path, until: datetime) -> Fires:
    """Every fire the backtest makes for the trigger (loaded from ``triggers``), its clock
    run on to ``until`` as the live path's is."""
    report = _backtest(sent, trigger, triggers, until)
    return sorted(
        (str(fire.person.user_id), fire.occurrence, fire.at)
        for fire in report.fired
        if fire.trigger == trigger
    )


def _backtest(
    sent: list[Sent], trigger: str, folder: Path, until: datetime | None = None
) -> BacktestReport:
    """The backtest over the messages the table holds (each stored once)."""
    lines = [json.dumps(item.message) for item in sent if not item.resend]
    events, skipped = read_events(lines)
    assert skipped == []
    loaded = load_triggers(folder)
    return backtest(events, [t for t in loaded.triggers if t.id == trigger], until=until)


def per_day(fires: Fires, until: datetime) -> dict[str, int]:
    return dict(Counter(moment.date().isoformat() for _, _, moment in fires if moment <= until))
