"""EventBridge Scheduler's firing, which moto does not do: one-time ``at()`` schedules
become due on the virtual clock and invoke their target, as the service would, and
``rate()`` schedules (the template's hourly inactivity sweep) run once per interval,
starting one interval after they are first seen. When the clock jumps, every run the jump
passed over happens, in time order with the one-time schedules, each with its own
scheduled time.

Scheduler invokes a function asynchronously, so what follows a function error is Lambda's
doing, not the schedule's RetryPolicy (which covers only failing to invoke at all): the
same event is tried again, up to the function's EventInvokeConfig MaximumRetryAttempts
(2 by default), one minute after the first attempt and two minutes after the second
(https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-error-handling.html),
then goes to its on-failure destination, wrapped as Lambda wraps it. A failed rate() run
is retried before that schedule's later runs (Lambda would run them side by side).

``next_due`` says when the next run, one-time schedule or retry is due, so that the stack
can step its clock from one due moment to the next (``LocalStack.advance``).

moto keeps the schedules (created through the real API by the functions); this reads
them from moto's backend in this process, because the public ListSchedules answer
carries neither the expression nor the input.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from local.clock import VirtualClock
from local.meter import AwsMeter
from local.runtime import FunctionPool
from local.template import ACCOUNT, AsyncInvokeConfig, LocalNames

__all__ = [
    "AsyncTarget",
    "ScheduleFirer",
    "at_time",
    "failure_record",
    "rate_interval",
    "scheduler_input",
]

log = logging.getLogger("nudge.local")
_AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
# Lambda's waits before the second and the third attempt of a failed asynchronous event.
ASYNC_RETRY_WAITS = (timedelta(minutes=1), timedelta(minutes=2))


def at_time(expression: str, timezone: str | None) -> datetime | None:
    """When a one-time schedule is due; None for rate() and cron() expressions."""
    match = _AT.match(expression.strip())
    if not match:
        return None
    return datetime.fromisoformat(match.group(1)).replace(tzinfo=ZoneInfo(timezone or "UTC"))


def rate_interval(expression: str) -> timedelta | None:
    """How often a ``rate()`` schedule runs; None for at() and cron() expressions."""
    match = _RATE.match(expression.strip())
    if not match or int(match.group(1)) < 1:
        return None
    unit = match.group(2).rstrip("s") + "s"
    return timedelta(**{unit: int(match.group(1))})


@dataclass(frozen=True)
class AsyncTarget:
    """A function's asynchronous invocation settings, as the template declares them."""

    retries: int = 2
    on_failure_arn: str | None = None  # an SQS queue
    maximum_event_age: timedelta = timedelta(hours=6)  # MaximumEventAgeInSeconds

    def retry_wait(self, failed: int) -> timedelta | None:
        """How long Lambda waits before trying an event again after ``failed`` failed
        attempts; None once the retries are spent."""
        if failed > self.retries:
            return None
        return ASYNC_RETRY_WAITS[min(failed, len(ASYNC_RETRY_WAITS)) - 1]

    @classmethod
    def declared(cls, config: AsyncInvokeConfig, names: LocalNames) -> AsyncTarget:
        """The settings a function's EventInvokeConfig declares in the template."""
        queue = config.on_failure_queue
        return cls(
            config.maximum_retry_attempts,
            names.queue_arn(queue) if queue else None,
            timedelta(seconds=config.maximum_event_age_seconds),
        )

    def next_attempt(self, failed: int, queued: datetime, now: datetime) -> datetime | None:
        """When Lambda tries an event it queued at ``queued`` again, after ``failed`` failed
        attempts; None when it gives up instead (``given_up_because`` says why): its retries
        spent, or the event older than MaximumEventAgeInSeconds by then."""
        wait = self.retry_wait(failed)
        if wait is None or now + wait - queued > self.maximum_event_age:
            return None
        return now + wait

    def given_up_because(self, failed: int) -> str:
        """The on-failure record's ``condition`` when Lambda gives up after ``failed``."""
        return "RetriesExhausted" if failed > self.retries else "EventAgeExceeded"


@dataclass
class ScheduleFirer:
    functions_by_arn: dict[str, FunctionPool]
    clock: VirtualClock
    region: str
    send_to_queue: Callable[[str, str], None]  # (queue ARN, body): dead letters, SQS targets
    meter: AwsMeter | None = None  # counts each run: Scheduler bills per invocation
    attempts: Counter[str] = field(default_factory=Counter)

    async_targets: dict[str, AsyncTarget] = field(default_factory=dict)  # function ARN ->
    next_runs: dict[str, datetime] = field(default_factory=dict)  # rate schedule ARN -> run
    retry_at: dict[str, datetime] = field(default_factory=dict)  # schedule ARN -> Lambda's
    queued_at: dict[str, datetime] = field(default_factory=dict)  # schedule ARN -> first try

    def poll(self) -> int:
        """Runs what is due; returns how many invocations (or queue sends) it made."""
        now = self.clock.now()
        due = [
            (when, schedule)
            for schedule in self._schedules()
            if schedule.state == "ENABLED"
            for when in self._due_times(schedule, now)
        ]
        # Schedules due in the same second go by name: Schedule objects do not compare.
        due.sort(key=lambda pair: (pair[0], pair[1].name))
        held: set[str] = {arn for arn, at in self.retry_at.items() if at > now}
        runs = 0
        for when, schedule in due:
            if schedule.arn in held:
                continue  # a failed run waits for Lambda's retry, and its later runs with it
            runs += 1
            if not self._fire(schedule, when):
                held.add(schedule.arn)
        return runs

    def next_due(self, after: datetime | None = None) -> datetime | None:
        """The first moment after ``after`` (default: now) at which a schedule runs or a
        failed run is retried."""
        now = self.clock.now()
        after = after or now
        moments = []
        for schedule in self._schedules():
            if schedule.state != "ENABLED":
                continue
            if schedule.arn in self.retry_at:
                moments.append(self.retry_at[schedule.arn])
                continue
            once = at_time(schedule.schedule_expression, schedule.schedule_expression_timezone)
            interval = rate_interval(schedule.schedule_expression)
            if once is not None:
                moments.append(once)
            elif interval is not None:
                moments.append(self.next_runs.get(schedule.arn, now + interval))
        return min((moment for moment in moments if moment > after), default=None)

    def _due_times(self, schedule: Any, now: datetime) -> list[datetime]:
        expression = schedule.schedule_expression
        once = at_time(expression, schedule.schedule_expression_timezone)
        if once is not None:
            return [once] if once <= now else []
        interval = rate_interval(expression)
        if interval is None:
            return []  # cron(): not modelled; the template has none
        run = self.next_runs.setdefault(schedule.arn, now + interval)
        runs = []
        while run <= now:
            runs.append(run)
            run += interval
        return runs

    def reset(self) -> None:
        for group in self._backend().schedule_groups.values():
            group.schedules.clear()
        self.attempts.clear()
        self.next_runs.clear()
        self.retry_at.clear()
        self.queued_at.clear()

    def _fire(self, schedule: Any, when: datetime) -> bool:
        """Runs the schedule's target; False when the run failed and will be retried."""
        target: dict[str, Any] = schedule.target
        # One delivery by Scheduler: Lambda's own retries carry the same attempt number.
        payload = scheduler_input(target.get("Input") or "{}", schedule, when, 1)
        if self.meter is not None:
            self.meter.scheduled_invocation()
        arn = str(target["Arn"])
        if arn.startswith("arn:aws:sqs:"):
            self.send_to_queue(arn, payload)
            self._complete(schedule, when)
            return True
        function = self.functions_by_arn.get(arn)
        if function is None:
            # Scheduler cannot invoke it at all: past its RetryPolicy, its dead-letter queue.
            log.error(
                "schedule %s targets %s, which the template does not define", schedule.name, arn
            )
            dead_letter = target.get("DeadLetterConfig", {}).get("Arn")
            if dead_letter:
                self.send_to_queue(dead_letter, payload)
            self._complete(schedule, when)
            return True
        result = function.invoke(json.loads(payload))
        if not result.failed:
            self._complete(schedule, when)
            return True
        self.attempts[schedule.arn] += 1
        # Lambda queued the event when Scheduler first invoked: its age counts from then.
        queued = self.queued_at.setdefault(schedule.arn, self.clock.now())
        settings = self.async_targets.get(arn, AsyncTarget())
        log.warning(
            "schedule %s: %s failed (attempt %d): %s",
            schedule.name,
            arn,
            self.attempts[schedule.arn],
            result.error,
        )
        failed = self.attempts[schedule.arn]
        retry_at = settings.next_attempt(failed, queued, self.clock.now())
        if retry_at is not None:
            self.retry_at[schedule.arn] = retry_at
            return False  # Lambda tries the same event again after the wait
        if settings.on_failure_arn:
            record = failure_record(
                arn,
                payload,
                result.error,
                failed,
                self.clock.now(),
                settings.given_up_because(failed),
            )
            self.send_to_queue(settings.on_failure_arn, json.dumps(record))
        self._complete(schedule, when)
        return True

    def _complete(self, schedule: Any, when: datetime) -> None:
        """A run is over. A one-time schedule runs once: deleted if asked, otherwise left
        disabled; a rate schedule's next run is an interval later."""
        self.attempts.pop(schedule.arn, None)
        self.retry_at.pop(schedule.arn, None)
        self.queued_at.pop(schedule.arn, None)
        interval = rate_interval(schedule.schedule_expression)
        if interval is not None:
            self.next_runs[schedule.arn] = when + interval
        elif schedule.action_after_completion == "DELETE":
            self._delete(schedule)
        else:
            schedule.state = "DISABLED"

    def _delete(self, schedule: Any) -> None:
        """Deletes a finished one-time schedule, unless its target deleted it while it ran
        (a journey moving on deletes the schedule of the step it leaves): on AWS the
        invocation is asynchronous, so that delete comes after Scheduler is done with it."""
        from moto.scheduler.exceptions import ScheduleNotFound

        with contextlib.suppress(ScheduleNotFound):
            self._backend().delete_schedule(schedule.group_name, schedule.name)

    def _schedules(self) -> list[Any]:
        return [
            schedule
            for group in list(self._backend().schedule_groups.values())
            for schedule in list(group.schedules.values())
        ]

    def _backend(self) -> Any:
        from moto.scheduler.models import scheduler_backends

        return scheduler_backends[ACCOUNT][self.region]


def scheduler_input(text: str, schedule: Any, when: datetime, attempt: int) -> str:
    """Scheduler's context attributes, substituted into the target input as the service does."""
    values = {
        "<aws.scheduler.schedule-arn>": schedule.arn,
        "<aws.scheduler.scheduled-time>": when.astimezone(ZoneInfo("UTC")).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        ),
        "<aws.scheduler.execution-id>": str(uuid.uuid4()),
        "<aws.scheduler.attempt-number>": str(attempt),
    }
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    return text


def failure_record(
    function_arn: str,
    payload: str,
    error: dict[str, Any] | None,
    invocations: int,
    now: datetime,
    condition: str = "RetriesExhausted",
) -> dict[str, Any]:
    """What Lambda sends to an on-failure destination when an event's retries are spent
    (or, with ``EventAgeExceeded``, when it grew too old for the next one)."""
    return {
        "version": "1.0",
        "timestamp": now.isoformat(),
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": f"{function_arn}:$LATEST",
            "condition": condition,
            "approximateInvokeCount": invocations,
        },
        "requestPayload": json.loads(payload),
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled",
        },
        "responsePayload": error or {},
    }
