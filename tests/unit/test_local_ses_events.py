"""The local stack's SES event publishing: a failed invocation is retried as Lambda retries
an asynchronous event, a minute and then two minutes later, on the virtual clock, and then
sent to the function's OnFailure queue."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, cast

from moto.events.models import EventPattern

from local.clock import VirtualClock
from local.runtime import FunctionPool, Invocation
from local.scheduler import AsyncTarget
from local.ses_events import Rule, SesEventPublisher
from local.template import load_template
from tests.conftest import REPO

EVENT = {"id": "e-1", "source": "aws.ses", "detail-type": "Email Sent", "detail": {}}


@dataclass
class Feedback:
    """Stands in for the Feedback function: fails its first ``failures`` invocations."""

    failures: int = 0
    calls: int = 0
    arn: str = "arn:aws:lambda:us-east-1:123456789012:function:Feedback"
    spec: Any = field(default_factory=lambda: type("Spec", (), {"logical_id": "Feedback"})())

    def invoke(self, event: Any) -> Invocation:
        self.calls += 1
        if self.calls <= self.failures:
            return Invocation(None, {"errorType": "RuntimeError", "errorMessage": "x"}, 1.0)
        return Invocation({"ok": True}, None, 1.0)


class Failing:
    """An SES event whose every invocation fails, under a rule with an OnFailure queue."""

    def __init__(self, oldest: timedelta = timedelta(hours=6)) -> None:
        self.function, self.clock = Feedback(failures=10), VirtualClock()
        self.sent: list[tuple[str, str]] = []
        rule = Rule(
            EventPattern.load('{"source": ["aws.ses"]}'),
            cast(FunctionPool, self.function),
            AsyncTarget(
                on_failure_arn="arn:aws:sqs:us-east-1:123456789012:FeedbackFailureQueue",
                maximum_event_age=oldest,
            ),
        )
        self.events = SesEventPublisher(
            "us-east-1", ["SEND"], None, [rule], self.clock.now, self._send
        )
        self.events.publish(EVENT)

    def _send(self, arn: str, body: str) -> None:
        self.sent.append((arn, body))

    def run(self) -> None:
        """The first attempt, then the moments of Lambda's two retries."""
        for wait in (0, 60, 120):
            self.clock.advance(wait)
            self.events.poll()


def publisher(function: Feedback, clock: VirtualClock) -> SesEventPublisher:
    rule = Rule(EventPattern.load('{"source": ["aws.ses"]}'), cast(FunctionPool, function))
    return SesEventPublisher("us-east-1", ["SEND"], None, [rule], clock.now)


def test_a_failed_event_is_retried_a_minute_later_not_at_once() -> None:
    """After a failure nothing more happens in the same round; the retry is due a minute on."""
    # given
    function, clock = Feedback(failures=1), VirtualClock()
    events = publisher(function, clock)
    events.publish(EVENT)

    # when
    events.poll()
    again = events.poll()
    due = events.next_due(clock.now())

    # then
    assert (function.calls, again) == (1, 0)
    assert due is not None
    assert abs((due - clock.now()) - timedelta(minutes=1)) < timedelta(seconds=1)


def test_the_retries_come_one_and_then_two_minutes_apart() -> None:
    """Two failures: the second attempt a minute after the first, the third two minutes
    after the second, and then the event is delivered."""
    # given
    function, clock = Feedback(failures=2), VirtualClock()
    events = publisher(function, clock)
    events.publish(EVENT)
    events.poll()

    # when
    clock.advance(60)
    events.poll()
    clock.advance(119)
    early = events.poll()
    clock.advance(1)
    events.poll()

    # then
    assert (function.calls, early) == (3, 0)
    assert events.next_due(clock.now()) is None


def test_an_event_failing_every_attempt_is_dropped_after_three() -> None:
    """Lambda's two retries spent, the event is not tried again."""
    # given
    function, clock = Feedback(failures=10), VirtualClock()
    events = publisher(function, clock)
    events.publish(EVENT)

    # when
    for wait in (0, 60, 120, 600):
        clock.advance(wait)
        events.poll()

    # then
    assert function.calls == 3
    assert events.next_due(clock.now()) is None


def test_an_event_failing_every_attempt_goes_to_the_on_failure_queue() -> None:
    """Lambda's two retries spent, the event is sent to the function's OnFailure queue,
    wrapped in Lambda's failure record, as the template's EventInvokeConfig asks."""
    # given
    failing = Failing()

    # when
    failing.run()

    # then
    ((queue, body),) = failing.sent
    record = json.loads(body)
    assert queue.endswith(":FeedbackFailureQueue")
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["requestPayload"] == EVENT


def test_an_event_too_old_for_its_next_retry_goes_to_the_on_failure_queue() -> None:
    """With MaximumEventAgeInSeconds of 120, the retry due 180 s after the event was queued
    never runs: after two attempts Lambda discards it to the OnFailure queue, saying why."""
    # given
    failing = Failing(oldest=timedelta(seconds=120))

    # when
    failing.run()

    # then
    assert failing.function.calls == 2
    ((_, body),) = failing.sent
    record = json.loads(body)
    assert record["requestContext"]["condition"] == "EventAgeExceeded"
    assert record["requestContext"]["approximateInvokeCount"] == 2


def test_feedback_gives_up_on_an_event_as_the_template_says() -> None:
    """The template's EventInvokeConfig for Feedback reaches the local retries: two retries,
    and an event older than 8 minutes goes to FeedbackFailureQueue rather than waiting."""
    # given
    template = load_template(REPO / "template.yaml", {"WriteKey": "k", "TrackingSecret": "s"})
    functions = {name: cast(FunctionPool, Feedback()) for name in template.functions}

    # when
    events = SesEventPublisher.for_template(template, functions, VirtualClock().now)

    # then
    (rule,) = events.rules
    (retries, on_failure, oldest) = (
        rule.settings.retries,
        rule.settings.on_failure_arn,
        rule.settings.maximum_event_age,
    )
    assert (retries, oldest) == (2, timedelta(minutes=8))
    assert (on_failure or "").endswith("-FeedbackFailureQueue")
