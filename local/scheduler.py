"""EventBridge Scheduler's firing, which moto does not do: one-time ``at()`` schedules
become due on the virtual clock and invoke their target, as the service would.

moto keeps the schedules (created through the real API by the functions); this reads
them from moto's backend in this process, because the public ListSchedules answer
carries neither the expression nor the input.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from local.clock import VirtualClock
from local.runtime import FunctionPool
from local.template import ACCOUNT

__all__ = ["ScheduleFirer", "at_time"]

log = logging.getLogger("nudge.local")
_AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")


def at_time(expression: str, timezone: str | None) -> datetime | None:
    """When a one-time schedule is due; None for rate() and cron() expressions."""
    match = _AT.match(expression.strip())
    if not match:
        return None
    return datetime.fromisoformat(match.group(1)).replace(tzinfo=ZoneInfo(timezone or "UTC"))


@dataclass
class ScheduleFirer:
    functions_by_arn: dict[str, FunctionPool]
    clock: VirtualClock
    region: str
    send_to_queue: Callable[[str, str], None]  # (queue ARN, body): dead letters, SQS targets
    attempts: Counter[str] = field(default_factory=Counter)

    def poll(self) -> int:
        now = self.clock.now()
        due = [
            (when, schedule)
            for schedule in self._schedules()
            if schedule.state == "ENABLED"
            and (
                when := at_time(schedule.schedule_expression, schedule.schedule_expression_timezone)
            )
            and when <= now
        ]
        # Schedules due in the same second go by name: Schedule objects do not compare.
        due.sort(key=lambda pair: (pair[0], pair[1].name))
        for when, schedule in due:
            self._fire(schedule, when)
        return len(due)

    def reset(self) -> None:
        for group in self._backend().schedule_groups.values():
            group.schedules.clear()
        self.attempts.clear()

    def _fire(self, schedule: Any, when: datetime) -> None:
        target: dict[str, Any] = schedule.target
        payload = _with_context(
            target.get("Input") or "{}", schedule, when, self.attempts[schedule.arn] + 1
        )
        arn = str(target["Arn"])
        if arn.startswith("arn:aws:sqs:"):
            self.send_to_queue(arn, payload)
            self._complete(schedule)
            return
        function = self.functions_by_arn.get(arn)
        if function is None:
            log.error(
                "schedule %s targets %s, which the template does not define", schedule.name, arn
            )
            self._complete(schedule)
            return
        result = function.invoke(json.loads(payload))
        if not result.failed:
            self._complete(schedule)
            return
        self.attempts[schedule.arn] += 1
        retries = int(target.get("RetryPolicy", {}).get("MaximumRetryAttempts", 185))
        log.warning(
            "schedule %s failed (attempt %d): %s",
            schedule.name,
            self.attempts[schedule.arn],
            result.error,
        )
        if self.attempts[schedule.arn] > retries:
            dead_letter = target.get("DeadLetterConfig", {}).get("Arn")
            if dead_letter:
                self.send_to_queue(dead_letter, payload)
            self._complete(schedule)

    def _complete(self, schedule: Any) -> None:
        """A one-time schedule runs once: deleted if asked, otherwise left disabled."""
        self.attempts.pop(schedule.arn, None)
        if schedule.action_after_completion == "DELETE":
            self._backend().delete_schedule(schedule.group_name, schedule.name)
        else:
            schedule.state = "DISABLED"

    def _schedules(self) -> list[Any]:
        return [
            schedule
            for group in list(self._backend().schedule_groups.values())
            for schedule in list(group.schedules.values())
        ]

    def _backend(self) -> Any:
        from moto.scheduler.models import scheduler_backends

        return scheduler_backends[ACCOUNT][self.region]


def _with_context(text: str, schedule: Any, when: datetime, attempt: int) -> str:
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
