"""The local stack's EventBridge Scheduler: rate() expressions, and the hourly run on the
virtual clock against moto's scheduler backend, in this process."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

import boto3
import pytest
from moto import mock_aws
from nudge.domain.triggers.engine import SWEEP_EVERY

from local.clock import VirtualClock
from local.runtime import FunctionPool, Invocation
from local.scheduler import AsyncTarget, ScheduleFirer, rate_interval
from local.template import ACCOUNT, load_template
from tests.conftest import REPO

REGION = "us-east-1"
SWEEP_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:nudge-evaluate"
FAILURES_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:nudge-failures"
SWEEP_INPUT = json.dumps(
    {
        "source": "nudge.sweep",
        "scheduledTime": "<aws.scheduler.scheduled-time>",
        "attempt": "<aws.scheduler.attempt-number>",
    }
)
HOUR = 3600.0


# ---- rate expressions -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "interval"),
    [
        ("rate(1 hour)", timedelta(hours=1)),
        ("rate(5 minutes)", timedelta(minutes=5)),
        ("rate(2 days)", timedelta(days=2)),
        ("rate(1 minute)", timedelta(minutes=1)),
    ],
)
def test_a_rate_expression_gives_its_interval(expression: str, interval: timedelta) -> None:
    """rate(N unit) runs every N minutes, hours or days."""
    # given / when
    found = rate_interval(expression)

    # then
    assert found == interval


@pytest.mark.parametrize(
    "expression",
    [
        "rate(0 hours)",
        "rate(1 week)",
        "cron(0 * * * ? *)",
        "at(2026-11-28T12:00:00)",
    ],
)
def test_anything_but_a_positive_rate_has_no_interval(expression: str) -> None:
    """A zero rate, an unknown unit, a cron() or an at() expression is not a rate schedule."""
    # given / when
    found = rate_interval(expression)

    # then
    assert found is None


# ---- the firer on the virtual clock -----------------------------------------------------


@dataclass
class FakeFunction:
    """Stands in for a FunctionPool: records each event, and fails the first ``failures``."""

    failures: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)

    def invoke(self, event: Any) -> Invocation:
        self.events.append(event)
        if len(self.events) <= self.failures:
            error = {"errorType": "RuntimeError", "errorMessage": "table throttled"}
            return Invocation(payload=None, error=error, duration_ms=1.0)
        return Invocation(payload={"ok": True}, error=None, duration_ms=1.0)

    @property
    def scheduled_times(self) -> list[datetime]:
        return [datetime.fromisoformat(event["scheduledTime"]) for event in self.events]

    @property
    def attempts(self) -> list[str]:
        return [event["attempt"] for event in self.events]


@pytest.fixture
def _scheduler(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto in-process, holding an hourly schedule that targets the sweep function."""
    monkeypatch.setenv("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
    with mock_aws():
        scheduler = boto3.client("scheduler", region_name=REGION)
        scheduler.create_schedule_group(Name="nudge")
        scheduler.create_schedule(
            Name="inactivity-sweep",
            GroupName="nudge",
            ScheduleExpression="rate(1 hour)",
            FlexibleTimeWindow={"Mode": "OFF"},
            Target={
                "Arn": SWEEP_ARN,
                "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/scheduler",
                "Input": SWEEP_INPUT,
            },
        )
        yield


def firer(
    function: FakeFunction,
    clock: VirtualClock,
    send_to_queue: Callable[[str, str], None] | None = None,
    oldest: timedelta = timedelta(hours=6),
) -> ScheduleFirer:
    functions = cast(dict[str, FunctionPool], {SWEEP_ARN: function})
    settings = AsyncTarget(retries=2, on_failure_arn=FAILURES_ARN, maximum_event_age=oldest)
    return ScheduleFirer(
        functions,
        clock,
        REGION,
        send_to_queue=send_to_queue or _no_queue,
        async_targets={SWEEP_ARN: settings},
    )


def _no_queue(arn: str, body: str) -> None:
    raise AssertionError(f"nothing should go to a queue, but {arn} got {body}")


@pytest.mark.usefixtures("_scheduler")
def test_a_rate_schedule_does_not_run_when_first_seen() -> None:
    """The first poll only notes the schedule: its first run is one interval later."""
    # given
    function, clock = FakeFunction(), VirtualClock()
    schedules = firer(function, clock)

    # when
    ran = schedules.poll()

    # then
    assert ran == 0
    assert function.events == []


@pytest.mark.usefixtures("_scheduler")
def test_a_rate_schedule_first_runs_one_interval_after_first_seen() -> None:
    """Fifty-nine minutes after it is first seen the schedule has not run; at the hour it has."""
    # given
    function, clock = FakeFunction(), VirtualClock()
    schedules = firer(function, clock)
    first_seen = clock.now()
    schedules.poll()

    # when
    clock.advance(59 * 60)
    early = schedules.poll()
    clock.advance(60)
    on_time = schedules.poll()

    # then
    assert (early, on_time) == (0, 1)
    (scheduled,) = function.scheduled_times
    # the scheduled time is written to the second
    assert abs(scheduled - (first_seen + timedelta(hours=1))) < timedelta(seconds=1)


@pytest.mark.usefixtures("_scheduler")
def test_a_three_hour_jump_runs_an_hourly_schedule_three_times() -> None:
    """Every run a clock jump passes over happens, each with its own scheduled time, one
    hour apart, in order."""
    # given
    function, clock = FakeFunction(), VirtualClock()
    schedules = firer(function, clock)
    schedules.poll()

    # when
    clock.advance(3 * HOUR)
    ran = schedules.poll()

    # then
    assert ran == 3
    first, *_ = times = function.scheduled_times
    assert times == [first, first + timedelta(hours=1), first + timedelta(hours=2)]
    assert times[-1] <= clock.now()
    assert all(event["source"] == "nudge.sweep" for event in function.events)


@pytest.mark.usefixtures("_scheduler")
def test_a_second_poll_without_a_clock_jump_runs_nothing_again() -> None:
    """Runs that have happened are not repeated by the next poll."""
    # given
    function, clock = FakeFunction(), VirtualClock()
    schedules = firer(function, clock)
    schedules.poll()
    clock.advance(3 * HOUR)
    schedules.poll()

    # when
    again = schedules.poll()

    # then
    assert again == 0
    assert len(function.events) == 3


@pytest.mark.usefixtures("_scheduler")
def test_a_failed_run_is_retried_before_the_later_runs() -> None:
    """When a run fails, the runs after it wait; a minute later Lambda retries it first (the
    same event: Scheduler's attempt number stays 1), then the later runs are made, so the
    sweeps still go in time order."""
    # given
    function, clock = FakeFunction(failures=1), VirtualClock()
    schedules = firer(function, clock)
    schedules.poll()
    clock.advance(3 * HOUR)
    schedules.poll()
    first, *_ = function.scheduled_times

    # when
    clock.advance(60)
    schedules.poll()

    # then
    hour = timedelta(hours=1)
    assert function.scheduled_times == [first, first, first + hour, first + 2 * hour]
    assert function.attempts == ["1", "1", "1", "1"]


@pytest.mark.usefixtures("_scheduler")
def test_a_failed_run_is_not_retried_before_lambdas_minute() -> None:
    """Lambda waits a minute before its first retry: a poll 59 seconds later runs nothing."""
    # given
    function, clock = FakeFunction(failures=1), VirtualClock()
    schedules = firer(function, clock)
    schedules.poll()
    clock.advance(HOUR)
    schedules.poll()

    # when
    clock.advance(59)
    ran = schedules.poll()

    # then
    assert ran == 0
    assert len(function.events) == 1


@pytest.mark.usefixtures("_scheduler")
def test_the_next_due_moment_is_lambdas_retry_after_a_failure() -> None:
    """After a failed run, the next due moment is one minute later, then two minutes after
    the second failure, as Lambda retries an asynchronous event."""
    # given
    function, clock = FakeFunction(failures=2), VirtualClock()
    schedules = firer(function, clock)
    schedules.poll()
    clock.advance(HOUR)

    # when
    schedules.poll()
    first_retry = schedules.next_due()
    assert first_retry is not None
    clock.move_to(first_retry)
    schedules.poll()
    second_retry = schedules.next_due()

    # then
    failed_at = function.scheduled_times[0]
    assert first_retry - failed_at == pytest.approx(timedelta(minutes=1), abs=timedelta(seconds=2))
    assert second_retry is not None
    assert second_retry - first_retry == pytest.approx(
        timedelta(minutes=2), abs=timedelta(seconds=2)
    )


@pytest.mark.usefixtures("_scheduler")
def test_the_next_due_moment_of_a_rate_schedule_is_its_next_run() -> None:
    """A rate schedule's next run is the next due moment, and nothing is due before it."""
    # given
    function, clock = FakeFunction(), VirtualClock()
    schedules = firer(function, clock)
    first_seen = clock.now()
    schedules.poll()

    # when
    moment = schedules.next_due()

    # then
    assert moment is not None
    assert abs(moment - (first_seen + timedelta(hours=1))) < timedelta(seconds=1)


@pytest.mark.usefixtures("_scheduler")
def test_a_failed_run_holds_back_the_later_runs_of_its_poll() -> None:
    """The poll in which a run fails makes none of the runs after it."""
    # given
    function, clock = FakeFunction(failures=1), VirtualClock()
    schedules = firer(function, clock)
    schedules.poll()

    # when
    clock.advance(3 * HOUR)
    schedules.poll()

    # then
    assert len(function.events) == 1


@pytest.mark.usefixtures("_scheduler")
def test_a_run_failing_past_lambdas_retries_goes_to_the_on_failure_queue() -> None:
    """Three failures (the invocation and Lambda's 2 retries) send the event, wrapped as
    Lambda wraps it, to the function's on-failure queue; the next run then goes ahead."""
    # given
    function, clock = FakeFunction(failures=3), VirtualClock()
    sent: list[tuple[str, str]] = []
    schedules = firer(function, clock, send_to_queue=lambda arn, body: sent.append((arn, body)))
    schedules.poll()
    clock.advance(2 * HOUR)

    # when: the run, Lambda's retries a minute and then two minutes later, then the next run
    for wait in (0, 60, 120, 0):
        clock.advance(wait)
        schedules.poll()

    # then
    first, *_ = function.scheduled_times
    assert function.scheduled_times == [first, first, first, first + timedelta(hours=1)]
    ((arn, body),) = sent
    record = json.loads(body)
    assert arn == FAILURES_ARN
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestPayload"]["scheduledTime"] == function.events[0]["scheduledTime"]


@pytest.mark.usefixtures("_scheduler")
def test_a_run_too_old_for_its_next_retry_goes_to_the_on_failure_queue() -> None:
    """With MaximumEventAgeInSeconds of 120, the retry due 180 s after the first attempt
    never runs: after two attempts the event goes to the on-failure queue, saying why."""
    # given
    function, clock = FakeFunction(failures=3), VirtualClock()
    sent: list[tuple[str, str]] = []
    schedules = firer(
        function, clock, lambda arn, body: sent.append((arn, body)), timedelta(seconds=120)
    )
    schedules.poll()
    clock.advance(2 * HOUR)

    # when: the run, Lambda's retry a minute later, then the moment of the one it dropped
    for wait in (0, 60, 120):
        clock.advance(wait)
        schedules.poll()

    # then
    first, *_ = function.scheduled_times
    assert function.scheduled_times.count(first) == 2
    (_, body), *_ = sent
    assert json.loads(body)["requestContext"]["condition"] == "EventAgeExceeded"


def test_the_templates_sweep_runs_as_often_as_the_engine_assumes() -> None:
    """swept_hour reads one hour per run: the InactivitySweep schedule must run hourly."""
    # given
    template = load_template(REPO / "template.yaml", {"WriteKey": "k", "TrackingSecret": "s"})
    # when
    expression = template.schedules["InactivitySweep"]["ScheduleExpression"]
    # then
    assert rate_interval(expression) == SWEEP_EVERY


@dataclass
class DeletesItsSchedule(FakeFunction):
    """A target that deletes the schedule running it, as a journey moving on from a step
    deletes that step's schedule."""

    schedule: str = ""

    def invoke(self, event: Any) -> Invocation:
        boto3.client("scheduler", region_name=REGION).delete_schedule(
            Name=self.schedule, GroupName="nudge"
        )
        return super().invoke(event)


@pytest.mark.usefixtures("_scheduler")
def test_a_one_time_schedule_its_target_deleted_while_it_ran_completes() -> None:
    """A one-time schedule deleted after completion, which its own run already deleted,
    runs once and is gone: on AWS the target's delete comes after Scheduler is done."""
    # given
    clock = VirtualClock()
    function = DeletesItsSchedule(schedule="journey-step")
    schedules = firer(function, clock)
    due = (clock.now() + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S")
    scheduler = boto3.client("scheduler", region_name=REGION)
    scheduler.create_schedule(
        Name="journey-step",
        GroupName="nudge",
        ScheduleExpression=f"at({due})",
        FlexibleTimeWindow={"Mode": "OFF"},
        ActionAfterCompletion="DELETE",
        Target={
            "Arn": SWEEP_ARN,
            "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/scheduler",
            "Input": json.dumps({"source": "nudge.timer"}),
        },
    )

    # when
    clock.advance(10 * 60)
    schedules.poll()

    # then
    assert [event["source"] for event in function.events] == ["nudge.timer"]
    names = [s["Name"] for s in scheduler.list_schedules(GroupName="nudge")["Schedules"]]
    assert names == ["inactivity-sweep"]
