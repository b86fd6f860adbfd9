"""One-time EventBridge Scheduler schedules: reminders that invoke the evaluator at a time.

Names are deterministic (trigger, person, occurrence, due), so arming twice is one
schedule and cancelling needs no lookup. A schedule that already exists is success; one
that is already gone is success too.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from nudge.adapters.aws_errors import aws_call
from nudge.domain.person import PersonId
from nudge.service.ports import Conflict, Missing

if TYPE_CHECKING:
    from mypy_boto3_scheduler import EventBridgeSchedulerClient

__all__ = ["Reminders", "schedule_name"]

# EventBridge Scheduler will not create a one-time schedule in the past.
_EARLIEST = timedelta(seconds=60)


def schedule_name(trigger: str, person: PersonId, occurrence: str, due: datetime) -> str:
    # The person's text form, as names were always made: armed schedules keep their names.
    digest = hashlib.sha256(f"{person}|{occurrence}|{due.isoformat()}".encode()).hexdigest()[:24]
    return f"{trigger[:38]}-{digest}"  # at most 64 characters, as Scheduler requires


class Reminders:
    def __init__(self, client: EventBridgeSchedulerClient, group: str, role_arn: str) -> None:
        self._client = client
        self._group = group
        self._role_arn = role_arn

    def arm(
        self, name: str, due: datetime, target_arn: str, payload: dict[str, Any], now: datetime
    ) -> None:
        at = max(due, now + _EARLIEST).astimezone(UTC)
        if at.microsecond:  # at() takes whole seconds: round up, never remind before the due
            at = at.replace(microsecond=0) + timedelta(seconds=1)
        try:
            with aws_call(f"creating schedule {name}"):
                self._client.create_schedule(
                    Name=name,
                    GroupName=self._group,
                    ScheduleExpression=f"at({at.strftime('%Y-%m-%dT%H:%M:%S')})",
                    ScheduleExpressionTimezone="UTC",
                    FlexibleTimeWindow={"Mode": "OFF"},
                    ActionAfterCompletion="DELETE",
                    Target={
                        "Arn": target_arn,
                        "RoleArn": self._role_arn,
                        "Input": json.dumps(payload, separators=(",", ":")),
                        "RetryPolicy": {
                            "MaximumRetryAttempts": 10,
                            "MaximumEventAgeInSeconds": 86400,
                        },
                    },
                )
        except Conflict:
            pass  # the same name was armed before: one schedule, as wanted

    def cancel(self, name: str) -> None:
        try:
            with aws_call(f"deleting schedule {name}"):
                self._client.delete_schedule(Name=name, GroupName=self._group)
        except Missing:
            pass  # already gone (it ran, or was cancelled): what was wanted
