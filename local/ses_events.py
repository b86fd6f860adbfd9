"""SES's event publishing, which moto does not do.

For every message moto's SES accepts, the local stack publishes what a configuration set
with an EventBridge destination would: a Send event, and, for SES's mailbox simulator
addresses, the bounce or complaint SES would report for them. Only the event types the
template's ``AWS::SES::ConfigurationSetEventDestination`` lists are published. Each event
goes to the functions whose ``EventBridgeRule`` pattern matches it, on the next round of
the stack's pump: EventBridge invokes asynchronously, after SES has answered the sender.

moto keeps neither the configuration set nor the tags of a send, so every message is taken
to be sent with the template's configuration set (Send always names it).
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from email import message_from_string
from email.utils import getaddresses
from typing import Any

from moto.events.models import EventPattern

from local.runtime import FunctionPool
from local.scheduler import AsyncTarget, failure_record
from local.template import ACCOUNT, Template

__all__ = ["SIMULATOR", "SesEventPublisher"]

log = logging.getLogger("nudge.local")

# SES's mailbox simulator: sending to these makes SES report the outcome in the name.
SIMULATOR = {
    "bounce@simulator.amazonses.com": "BOUNCE",
    "complaint@simulator.amazonses.com": "COMPLAINT",
}
_DETAIL_TYPES = {
    "SEND": "Email Sent",
    "BOUNCE": "Email Bounced",
    "COMPLAINT": "Email Complaint Received",
}


@dataclass(frozen=True)
class Rule:
    pattern: EventPattern
    function: FunctionPool
    # The function's EventInvokeConfig: retries, how old an event may grow in them, and
    # where Lambda sends an event it gives up on (OnFailure).
    settings: AsyncTarget = field(default_factory=AsyncTarget)


@dataclass(frozen=True)
class _Retry:
    at: datetime
    rule: Rule
    event: dict[str, Any]
    attempt: int  # the attempt this retry will be
    queued: datetime  # when EventBridge handed the event to Lambda: its age counts from then


class SesEventPublisher:
    def __init__(
        self,
        region: str,
        event_types: Sequence[str],
        configuration_set: str | None,
        rules: Sequence[Rule],
        now: Callable[[], datetime],
        send_to_queue: Callable[[str, str], None] | None = None,  # (queue ARN, body)
    ) -> None:
        self._send_to_queue = send_to_queue
        self._region = region
        self._event_types = frozenset(event_types)
        self._configuration_set = configuration_set
        self._rules = list(rules)
        self._now = now
        self._lock = threading.Lock()
        self._pending: list[dict[str, Any]] = []
        self._retries: list[_Retry] = []  # failed invocations, each due at Lambda's wait

    @classmethod
    def for_template(
        cls,
        template: Template,
        functions: Mapping[str, FunctionPool],
        now: Callable[[], datetime],
        send_to_queue: Callable[[str, str], None] | None = None,
    ) -> SesEventPublisher:
        """What the template's configuration set publishes, to the functions whose
        EventBridge rules match it; what they fail for good, to their OnFailure queue."""
        rules = [
            Rule(
                EventPattern.load(json.dumps(pattern)),
                functions[spec.logical_id],
                AsyncTarget.declared(spec.async_invoke, template.names),
            )
            for spec in template.functions.values()
            for pattern in spec.event_rules
        ]
        sets = template.email_configuration_sets
        return cls(
            template.names.region,
            template.email_event_types,
            sets[0] if len(sets) == 1 else None,
            rules,
            now,
            send_to_queue,
        )

    @property
    def rules(self) -> tuple[Rule, ...]:
        return tuple(self._rules)

    def install(self) -> None:
        """Wraps moto's SES: later wrappers (the fault injector) wrap this one, so a message
        accepted and then followed by a crash is still published, as SES would."""
        from moto.sesv2.models import sesv2_backends

        backend = sesv2_backends[ACCOUNT][self._region]
        original = backend.send_raw_email

        def send_raw_email(*args: Any, **kwargs: Any) -> Any:
            accepted = original(*args, **kwargs)
            self._published(accepted)
            return accepted

        backend.send_raw_email = send_raw_email  # type: ignore[method-assign]

    def poll(self) -> int:
        """Delivers the events published since the last round, and the retries now due;
        returns how many invocations it made."""
        now = self._now()
        with self._lock:
            events, self._pending = self._pending, []
            due = [retry for retry in self._retries if retry.at <= now]
            self._retries = [retry for retry in self._retries if retry.at > now]
        invocations = 0
        for event in events:
            for rule in self._rules:
                if rule.pattern.matches_event(event):  # type: ignore[arg-type]
                    self._invoke(_Retry(now, rule, event, 1, now))
                    invocations += 1
        for retry in sorted(due, key=lambda retry: retry.at):
            self._invoke(retry)
            invocations += 1
        return invocations

    def next_due(self, after: datetime) -> datetime | None:
        """When the next retry of a failed invocation is due, after ``after``."""
        with self._lock:
            return min((retry.at for retry in self._retries if retry.at > after), default=None)

    def clear(self) -> None:
        with self._lock:
            self._pending.clear()
            self._retries.clear()

    def _invoke(self, attempt: _Retry) -> None:
        """EventBridge invokes asynchronously: a failure is retried by Lambda a minute and
        then two minutes later, as for schedules (``AsyncTarget.next_attempt``), unless the
        event would by then be older than the function's MaximumEventAgeInSeconds; then it
        goes to the function's OnFailure queue, wrapped as Lambda wraps it."""
        rule, event = attempt.rule, attempt.event
        result = rule.function.invoke(event)
        if not result.failed:
            return
        log.warning(
            "%s failed on an SES event (attempt %d)", rule.function.spec.logical_id, attempt.attempt
        )
        retry_at = rule.settings.next_attempt(attempt.attempt, attempt.queued, self._now())
        if retry_at is None:
            self._give_up(attempt, result.error)
            return
        with self._lock:
            self._retries.append(replace(attempt, at=retry_at, attempt=attempt.attempt + 1))

    def _give_up(self, attempt: _Retry, error: dict[str, Any] | None) -> None:
        settings = attempt.rule.settings
        if settings.on_failure_arn is None or self._send_to_queue is None:
            log.error(
                "SES event dropped after %d attempts: %s", attempt.attempt, attempt.event["id"]
            )
            return
        record = failure_record(
            attempt.rule.function.arn,
            json.dumps(attempt.event),
            error,
            attempt.attempt,
            self._now(),
            settings.given_up_because(attempt.attempt),
        )
        self._send_to_queue(settings.on_failure_arn, json.dumps(record))

    def _published(self, message: Any) -> None:
        mail = self._mail(message)
        kinds = ["SEND"] + [SIMULATOR[to] for to in mail["destination"] if to in SIMULATOR]
        self.publish(*[self._event(kind, mail) for kind in kinds if kind in self._event_types])

    def publish(self, *events: dict[str, Any]) -> None:
        """Puts events on EventBridge: the next round delivers them to the matching rules."""
        with self._lock:
            self._pending += events

    def _mail(self, message: Any) -> dict[str, Any]:
        """The ``mail`` object of an SES event, from the raw message moto kept."""
        parsed = message_from_string(message.raw_data)
        destinations = [str(address).lower() for address in message.destinations]
        tags = (
            {"ses:configuration-set": [self._configuration_set]} if self._configuration_set else {}
        )
        return {
            "timestamp": _iso(self._now()),
            "source": message.source,
            "sendingAccountId": ACCOUNT,
            "messageId": message.id,
            "destination": destinations,
            "headersTruncated": False,
            "headers": [{"name": name, "value": str(value)} for name, value in parsed.items()],
            "commonHeaders": {
                "from": [address for _, address in getaddresses(parsed.get_all("From", []))],
                "to": [address for _, address in getaddresses(parsed.get_all("To", []))],
                "subject": str(parsed.get("Subject", "")),
            },
            "tags": tags,
        }

    def _event(self, kind: str, mail: dict[str, Any]) -> dict[str, Any]:
        now = _iso(self._now())
        detail: dict[str, Any] = {"eventType": kind.capitalize(), "mail": mail}
        simulated = [to for to in mail["destination"] if SIMULATOR.get(to) == kind]
        if kind == "SEND":
            detail["send"] = {}
        elif kind == "BOUNCE":
            detail["bounce"] = {
                "bounceType": "Permanent",
                "bounceSubType": "General",
                "bouncedRecipients": [{"emailAddress": to, "status": "5.1.1"} for to in simulated],
                "timestamp": now,
                "feedbackId": str(uuid.uuid4()),
            }
        else:
            detail["complaint"] = {
                "complainedRecipients": [{"emailAddress": to} for to in simulated],
                "timestamp": now,
                "feedbackId": str(uuid.uuid4()),
            }
        resources = (
            [f"arn:aws:ses:{self._region}:{ACCOUNT}:configuration-set/{self._configuration_set}"]
            if self._configuration_set
            else []
        )
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": _DETAIL_TYPES[kind],
            "source": "aws.ses",
            "account": ACCOUNT,
            "time": now[:19] + "Z",
            "region": self._region,
            "resources": resources,
            "detail": detail,
        }


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
