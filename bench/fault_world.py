"""The template played in this process, with faults: what ``bench faults`` runs each cell in.

moto runs in-process (``mock_aws``); each function's handler is loaded from its CodeUri with
the template's environment, as Lambda loads it; and the local stack's own event sources
drive them on a virtual clock, with Lambda's and the services' retry rules:

- ``StreamPoller``: DynamoDB Streams to Evaluate (BatchSize, ReportBatchItemFailures,
  BisectBatchOnFunctionError, MaximumRetryAttempts, the OnFailure queue);
- ``QueuePoller``: the send queue to Send (failed records come back after the visibility
  timeout, the redrive policy moves repeat failures to the DLQ);
- ``ScheduleFirer``: one-time schedules invoke Evaluate (or put a fire on the send queue),
  Lambda's asynchronous retries after a function error;
- ``SesEventPublisher``: SES's Send events reach Feedback, asynchronously.

Faults are botocore ``before-call`` / ``after-call`` hooks registered on the one session
every client is built from, keyed by the function that is running, the service and the
operation: an error answer short-circuits the call (the SDK's own retries are past), and a
crash raises ``Crash``, a ``BaseException`` no handler catches, as the process dying there
would end the invocation whatever the code's ``except Exception`` says.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from nudge import bootstrap
from nudge.domain.messages import FIRE_TAG

from bench.common import REPO
from bench.receiver import HANG, RESET, Answer, Receiver, Redirect
from local.clock import VirtualClock
from local.faults import QueueFaults
from local.resources import create_resources, queue_url, resolve_queue_urls, table_name
from local.runtime import Invocation, InvocationContext
from local.scheduler import AsyncTarget, ScheduleFirer, scheduler_input
from local.ses_events import SesEventPublisher
from local.sources import QueuePoller, StreamPoller
from local.template import FunctionSpec, Template, load_template

__all__ = [
    "POLLER",
    "Crash",
    "Fault",
    "FaultInjector",
    "World",
    "crm",
    "delivered_at",
    "delivered_ids",
    "misbehaved",
    "world",
]

# The trigger files the matrix runs: one per path (a timer and email, an immediate email,
# a timer and webhook). The in-app trigger is left out: its WebSocket is not in this world.
TRIGGERS = ("abandoned_cart.yaml", "product_interest.yaml", "vip_checkout_call.yaml")
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
# Calls made by no function: the stream poller's reads (Lambda's event source mapping).
POLLER = "(event source mapping)"
ANY_FUNCTION = "*"

# What each service answers when it throttles, and when it fails inside (a 5xx), as
# (HTTP status, error code); the codes are the ones each API reference lists.
THROTTLED = {
    "dynamodb": (400, "ProvisionedThroughputExceededException"),
    "dynamodbstreams": (400, "LimitExceededException"),
    "sqs": (400, "RequestThrottled"),
    "scheduler": (429, "ThrottlingException"),
    "sesv2": (429, "TooManyRequestsException"),
}
SERVER_ERROR = {
    "dynamodb": (500, "InternalServerError"),
    "dynamodbstreams": (500, "InternalServerError"),
    "sqs": (500, "InternalError"),
    "scheduler": (500, "InternalServerException"),
    "sesv2": (500, "InternalFailure"),
}


class Crash(BaseException):
    """The function's process died here (out of memory, killed): no handler sees it."""


@dataclass
class Fault:
    """The next ``times`` matching calls, after ``skip`` that go through, fail as ``kind``:
    ``throttle`` or ``server_error`` (answered without reaching AWS), ``crash_before`` (the
    process dies before the call is sent), ``crash_after`` (AWS did it; the process dies
    before hearing back)."""

    function: str
    service: str
    operations: frozenset[str]
    kind: str
    times: int = 1
    skip: int = 0
    hits: list[str] = field(default_factory=list)  # the calls it failed, in order

    def matches(self, function: str, service: str, operation: str) -> bool:
        return (
            self.times > 0
            and self.function in (function, ANY_FUNCTION)
            and self.service == service
            and (not self.operations or operation in self.operations)
        )

    def take(self, operation: str) -> bool:
        """Whether this matching call is the one to fail (a skipped call goes through)."""
        if self.skip > 0:
            self.skip -= 1
            return False
        self.times -= 1
        self.hits.append(operation)
        return True


@dataclass
class _Answer:
    status_code: int
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FaultInjector:
    faults: list[Fault] = field(default_factory=list)
    running: str = POLLER  # the function whose code is running now
    # Each email SES accepted: its fire (the FIRE_TAG Send puts on it) and when.
    emailed: list[tuple[str, datetime]] = field(default_factory=list)
    now: Callable[[], datetime] | None = None
    _sending: str = ""

    def install(self, session: boto3.Session) -> None:
        """On the session, before any client exists: every client copies its hooks."""
        # Typed handlers are not what botocore's stubs expect of a hook.
        botocore_session: Any = session._session
        # Before the crash hook: an email SES accepted was sent, whatever happens next.
        botocore_session.register("before-parameter-build.sesv2.SendEmail", self._email)
        botocore_session.register("after-call.sesv2.SendEmail", self._emailed)
        botocore_session.register("before-call", self._before)
        botocore_session.register("after-call", self._after)

    def _email(self, params: dict[str, Any], **_: Any) -> None:
        tags = {tag["Name"]: tag["Value"] for tag in params.get("EmailTags", [])}
        self._sending = tags.get(FIRE_TAG, "")

    def _emailed(self, http_response: Any, **_: Any) -> None:
        if http_response.status_code < 300 and self.now is not None:
            self.emailed.append((self._sending, self.now()))

    @contextmanager
    def inside(self, function: str) -> Iterator[None]:
        outer, self.running = self.running, function
        try:
            yield
        finally:
            self.running = outer

    def _matching(self, model: Any, phase: set[str]) -> Fault | None:
        service = model.service_model.service_name
        for fault in self.faults:
            if fault.kind in phase and fault.matches(self.running, service, model.name):
                return fault if fault.take(model.name) else None
        return None

    def _before(self, model: Any, **_: Any) -> tuple[_Answer, dict[str, Any]] | None:
        fault = self._matching(model, {"throttle", "server_error", "crash_before"})
        if fault is None:
            return None
        if fault.kind == "crash_before":
            raise Crash(f"{self.running} died before {model.name}")
        answers = THROTTLED if fault.kind == "throttle" else SERVER_ERROR
        status, code = answers[model.service_model.service_name]
        parsed = {
            "Error": {"Code": code, "Message": f"{code} (injected)"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        }
        return _Answer(status), parsed

    def _after(self, model: Any, http_response: Any, **_: Any) -> None:
        if http_response is None or http_response.status_code >= 300:
            return
        fault = self._matching(model, {"crash_after"})
        if fault is not None:
            raise Crash(f"{self.running} died after {model.name} succeeded")


@dataclass
class Function:
    """One function, invoked in this process: a crash or an error fails the invocation the
    way Lambda reports it, and the next invocation is a cold start."""

    spec: FunctionSpec
    arn: str
    load: Callable[[], Callable[[dict[str, Any]], Any]]
    injector: FaultInjector
    handler: Callable[[dict[str, Any]], Any] | None = None
    crashes: int = 0

    def invoke(self, event: Any) -> Invocation:
        started = time.perf_counter()
        if self.handler is None:
            self.handler = self.load()
        with self.injector.inside(self.spec.logical_id):
            try:
                payload = self.handler(event)
            except Crash as crash:
                self.crashes += 1
                self.handler = None  # the process is gone: the next invocation starts cold
                return self._failed(started, "Runtime.ExitError", str(crash))
            except Exception as error:
                return self._failed(started, type(error).__name__, str(error))
        return Invocation(payload, None, (time.perf_counter() - started) * 1000)

    @staticmethod
    def _failed(started: float, kind: str, message: str) -> Invocation:
        error = {"errorType": kind, "errorMessage": message}
        return Invocation(None, error, (time.perf_counter() - started) * 1000)


class AnomalousStream(StreamPoller):
    """The event source mapping, with records ``duplicated`` (each batch delivered twice)
    or ``reordered`` (each batch delivered last record first)."""

    anomaly: str = ""
    anomalies: int = 0  # batches delivered out of order or twice

    def _deliver(self, batch: list[dict[str, Any]]) -> str | None:
        if self.anomaly == "reordered" and len(batch) > 1:
            self.anomalies += 1
            return super()._deliver(batch[::-1])
        failed = super()._deliver(batch)
        if self.anomaly == "duplicated" and failed is None:
            self.anomalies += 1
            failed = super()._deliver(batch)
        return failed


class AnomalousSchedules(ScheduleFirer):
    """Scheduler, with one-time schedules run ``late`` and run twice (``doubled``), as its
    at-least-once delivery allows."""

    late: timedelta = timedelta(0)
    doubled: bool = False
    anomalies: int = 0  # one-time runs made late or twice

    def _due_times(self, schedule: Any, now: datetime) -> list[datetime]:
        if _one_time(schedule):
            return super()._due_times(schedule, now - self.late)
        return super()._due_times(schedule, now)

    def next_due(self, after: datetime | None = None) -> datetime | None:
        due = super().next_due(after - self.late if after else None)
        return due + self.late if due is not None and self.late else due

    def _fire(self, schedule: Any, when: datetime) -> bool:
        function = self.functions_by_arn.get(str(schedule.target["Arn"]))
        if _one_time(schedule) and (self.late or self.doubled):
            self.anomalies += 1
        if self.doubled and _one_time(schedule) and function is not None:
            # Scheduler's second delivery of the same run: the same input, the same time.
            function.invoke(
                json.loads(scheduler_input(schedule.target["Input"], schedule, when, 1))
            )
        return super()._fire(schedule, when)


def _one_time(schedule: Any) -> bool:
    return str(schedule.schedule_expression).startswith("at(")


# The CRM's misbehaviours a cell may ask for, as the receiver's first answer (then 200).
_MISBEHAVIOURS: dict[str, Answer] = {
    "hang": HANG,  # no answer until past the sender's timeout
    "reset": RESET,  # the connection reset, no answer
    "redirect_loopback": Redirect("http://127.0.0.1:22/steal", 307),
    "redirect_private": Redirect("http://10.0.0.7/steal", 307),
}
# Past the world's webhook timeout (1 s), so a hang is a timeout, not a slow answer.
_HANG_SECONDS = 2.0


def crm(misbehaviour: str = "") -> Receiver:
    """The CRM webhook receiver of a world: ``misbehaviour`` (a key of ``_MISBEHAVIOURS``,
    or "" for none) answers its first request, 200 the others."""
    script = [_MISBEHAVIOURS[misbehaviour]] if misbehaviour else []
    return Receiver(script=script, otherwise=200, path="/crm/hook", hang_seconds=_HANG_SECONDS)


def misbehaved(receiver: Receiver) -> int:
    """The requests the receiver did not answer 2xx: the faults it injected."""
    return len(receiver.received()) - len(receiver.delivered())


def delivered_ids(receiver: Receiver) -> list[str]:
    """The webhook-id of each request answered 2xx (a webhook's fire id)."""
    return [str(request.header("webhook-id")) for request in receiver.delivered()]


def delivered_at(receiver: Receiver) -> list[tuple[str, datetime]]:
    """Each webhook-id answered 2xx, with the world's (virtual) time it was answered."""
    return [
        (str(request.header("webhook-id")), request.at)
        for request in receiver.delivered()
        if request.at is not None
    ]


@dataclass
class World:
    """One cell's account, functions, event sources and clock."""

    template: Template
    clock: VirtualClock
    injector: FaultInjector
    functions: dict[str, Function]
    stream: AnomalousStream
    queue: QueuePoller
    link_retries: QueuePoller  # Track's own queue: link events the table refused
    queue_faults: QueueFaults
    schedules: AnomalousSchedules
    ses_events: SesEventPublisher
    receiver: Receiver
    clients: dict[str, Any]
    poller_errors: list[str] = field(default_factory=list)
    sqs_duplicates: int = 0

    def anomalies(self) -> int:
        """Every injected fault and anomaly: calls failed, batches and runs misdelivered,
        messages handed out twice, receivers misbehaving, poller rounds failed."""
        failed_calls = sum(len(fault.hits) for fault in self.injector.faults)
        duplicated = self.sqs_duplicates - self.queue_faults.pending()["duplicate"]
        misdelivered = self.stream.anomalies + self.schedules.anomalies
        return failed_calls + duplicated + misdelivered + misbehaved(self.receiver)

    @property
    def table(self) -> str:
        (table_id,) = self.template.tables
        return table_name(self.template, table_id)

    def queue_url(self, logical_id: str) -> str:
        return queue_url(self.clients["sqs"], self.template, logical_id)

    def pump(self) -> int:
        """One round over every source, as the local stack's pump does; a round that fails
        (a GetRecords error, say) is logged and tried again, as Lambda's poller does."""
        try:
            with self.injector.inside(POLLER):
                work = self.stream.poll() + self.queue.poll() + self.link_retries.poll()
                work += self.schedules.poll() + self.ses_events.poll()
        except Exception as error:  # the poller outlives any one bad round
            self.poller_errors.append(f"{type(error).__name__}: {error}")
            return 1
        return work

    def drain(self, rounds: int = 500) -> datetime:
        """Rounds until one does nothing; returns the clock's time when that round began:
        everything due by then is done."""
        for _ in range(rounds):
            began = self.clock.now()
            if not self.pump():
                return began
        raise TimeoutError(f"still busy after {rounds} rounds")

    def advance(self, seconds: float) -> None:
        """The clock ``seconds`` on, through every due moment in time order, draining each
        (the local stack's ``advance``). Due moments are looked for from when the last
        drain went quiet: the clock runs on during a drain, and a moment it passed then
        is still found."""
        target = self.clock.now() + timedelta(seconds=seconds)
        quiet = self.drain()
        while (moment := self._next_due(quiet)) is not None and moment <= target:
            self.clock.move_to(moment)
            quiet = self.drain()
        self.clock.move_to(target)
        self.drain()

    def _next_due(self, after: datetime) -> datetime | None:
        moments = [
            self.schedules.next_due(after),
            self.ses_events.next_due(after),
            self.queue.next_visible(after),
            self.link_retries.next_visible(after),
        ]
        return min((moment for moment in moments if moment is not None), default=None)


def _triggers_folder(into: Path) -> Path:
    folder = into / "triggers"
    folder.mkdir()
    for name in TRIGGERS:
        shutil.copy(REPO / "triggers" / name, folder / name)
    shutil.copytree(REPO / "triggers" / "templates", folder / "templates")
    return folder


def _loader(
    spec: FunctionSpec, template: Template, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Callable[[], Callable[[dict[str, Any]], Any]]:
    """A cold start of the function: its environment, then its module imported afresh."""

    def load() -> Callable[[dict[str, Any]], Any]:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        for cached in _BOOTSTRAP_CACHES:
            getattr(bootstrap, cached).cache_clear()
        module_file, _, attribute = spec.handler.rpartition(".")
        module_name = f"faults_{spec.logical_id.lower()}_{module_file}"
        module_spec = importlib.util.spec_from_file_location(
            module_name, spec.code_uri / f"{module_file}.py"
        )
        assert module_spec is not None
        assert module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        monkeypatch.setitem(sys.modules, module_name, module)
        module_spec.loader.exec_module(module)
        handler = getattr(module, attribute)

        def invoke(event: dict[str, Any]) -> Any:
            return handler(event, InvocationContext.of(template.names, spec))

        return invoke

    return load


# What nudge.bootstrap builds once per process; this process plays every function in turn.
_BOOTSTRAP_CACHES = (
    "settings",
    "dynamodb_client",
    "engine_settings",
    "scheduler_client",
    "sqs_client",
    "trigger_index",
    "tracking_settings",
    "webhook_secrets",
    "ssm_client",
    "delivery_settings",
    "sesv2_client",
    "socket_settings",
    "socket_poster",
)


def _template(receiver: Receiver, webhook_timeout: int) -> Template:
    return load_template(
        REPO / "template.yaml",
        {
            "WriteKey": "bench-write-key",
            "TrackingSecret": "bench-tracking-secret",
            "FromEmail": "nudge@shop.test",
            "PublicUrl": "https://links.shop.test",
            "WebhookSecret": WEBHOOK_SECRET,
            "CrmWebhookUrl": receiver.url,
            "WebhookAllowHosts": "127.0.0.1",
            "WebhookTimeoutSeconds": str(webhook_timeout),
        },
    )


def _on_clock(clock: VirtualClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """SQS's delays and visibility timeouts and the stream's record times on the virtual
    clock (``local.sources``' ``queues_on_clock`` / ``streams_on_clock``, undone after)."""
    import moto.dynamodb.models.table as table_models
    import moto.sqs.models as sqs_models

    monkeypatch.setattr(
        table_models, "utcnow", lambda: clock.now().replace(tzinfo=None), raising=False
    )
    monkeypatch.setattr(
        sqs_models,
        "unix_time",
        lambda dt=None: clock.epoch_seconds() if dt is None else dt.timestamp(),
    )
    monkeypatch.setattr(
        sqs_models,
        "unix_time_millis",
        lambda dt=None: (clock.epoch_seconds() if dt is None else dt.timestamp()) * 1000,
    )


@contextmanager
def world(
    start: datetime, receiver: Receiver | None = None, webhook_timeout: int = 1
) -> Iterator[World]:
    """A fresh account at ``start`` on the virtual clock, everything undone on exit."""
    receiver = (receiver or crm()).start(name="crm")
    with (
        tempfile.TemporaryDirectory(prefix="nudge-faults-") as scratch,
        mock_aws(),
        pytest.MonkeyPatch.context() as monkeypatch,
    ):
        session = boto3.Session(region_name="us-east-1")
        injector = FaultInjector()
        injector.install(session)
        monkeypatch.setattr(boto3, "DEFAULT_SESSION", session)
        clock = VirtualClock()
        clock.move_to(start)
        injector.now = receiver.clock = clock.now
        _on_clock(clock, monkeypatch)
        template = _template(receiver, webhook_timeout)
        clients: dict[str, Any] = {
            name: session.client(name) for name in ("dynamodb", "sqs", "scheduler")
        }
        clients["dynamodbstreams"] = session.client("dynamodbstreams")
        create_resources(
            template,
            clients["dynamodb"],
            clients["sqs"],
            clients["scheduler"],
            session.client("sesv2"),
            session.client("ssm"),
        )
        triggers = _triggers_folder(Path(scratch))
        try:
            yield _assemble(template, clock, injector, clients, receiver, triggers, monkeypatch)
        finally:
            for cached in _BOOTSTRAP_CACHES:
                getattr(bootstrap, cached).cache_clear()
            receiver.stop()


def _assemble(
    template: Template,
    clock: VirtualClock,
    injector: FaultInjector,
    clients: dict[str, Any],
    receiver: Receiver,
    triggers: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> World:
    functions = {}
    for spec in template.functions.values():
        env = {
            **resolve_queue_urls(spec.environment, clients["sqs"]),
            "NUDGE_TRIGGERS_DIR": str(triggers),
        }
        resolved = replace(spec, environment=env)
        functions[spec.logical_id] = Function(
            resolved,
            template.names.function_arn(spec.logical_id),
            _loader(resolved, template, env, monkeypatch),
            injector,
        )
    queue_faults = QueueFaults()
    send_to_queue = _queue_sender(clients["sqs"])
    return World(
        template=template,
        clock=clock,
        injector=injector,
        functions=functions,
        stream=_stream(template, functions["Evaluate"], clients),
        queue=_queue(template, functions["Send"], clients, queue_faults),
        link_retries=_queue(template, functions["Track"], clients, QueueFaults()),
        queue_faults=queue_faults,
        schedules=_schedules(template, functions, clock, send_to_queue),
        ses_events=_ses_events(template, functions, clock, send_to_queue),
        receiver=receiver,
        clients=clients,
    )


def _stream(template: Template, evaluate: Function, clients: dict[str, Any]) -> AnomalousStream:
    (source,) = evaluate.spec.stream_sources
    (table_id,) = template.tables
    failure = source.on_failure_queue
    return AnomalousStream(
        function=evaluate,  # type: ignore[arg-type]  # duck-typed: invoke, spec, arn
        source=source,
        streams=clients["dynamodbstreams"],
        dynamodb=clients["dynamodb"],
        sqs=clients["sqs"],
        table_name=table_name(template, table_id),
        failure_queue_url=queue_url(clients["sqs"], template, failure) if failure else None,
        region=template.names.region,
    )


def _queue(
    template: Template, consumer: Function, clients: dict[str, Any], faults: QueueFaults
) -> QueuePoller:
    (source,) = consumer.spec.queue_sources
    return QueuePoller(
        faults=faults,
        function=consumer,  # type: ignore[arg-type]
        source=source,
        sqs=clients["sqs"],
        queue_url=queue_url(clients["sqs"], template, source.queue),
        queue_arn=template.names.queue_arn(source.queue),
        region=template.names.region,
    )


def _queue_sender(sqs: Any) -> Callable[[str, str], None]:
    """Sends a body to a queue named by its ARN: schedules with an SQS target, and the
    OnFailure destinations of asynchronous invocations."""

    def send_to_queue(arn: str, body: str) -> None:
        url = sqs.get_queue_url(QueueName=arn.rsplit(":", 1)[-1])["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody=body)

    return send_to_queue


def _schedules(
    template: Template,
    functions: dict[str, Function],
    clock: VirtualClock,
    send_to_queue: Callable[[str, str], None],
) -> AnomalousSchedules:
    return AnomalousSchedules(
        functions_by_arn={function.arn: function for function in functions.values()},  # type: ignore[misc]
        clock=clock,
        region=template.names.region,
        send_to_queue=send_to_queue,
        async_targets={
            template.names.function_arn(spec.logical_id): AsyncTarget.declared(
                spec.async_invoke, template.names
            )
            for spec in template.functions.values()
        },
    )


def _ses_events(
    template: Template,
    functions: dict[str, Function],
    clock: VirtualClock,
    send_to_queue: Callable[[str, str], None],
) -> SesEventPublisher:
    publisher = SesEventPublisher.for_template(
        template,
        functions,  # type: ignore[arg-type]
        clock.now,
        send_to_queue,
    )
    publisher.install()
    return publisher
