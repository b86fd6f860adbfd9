"""The whole application on one machine: moto as AWS, workers as Lambda, pollers as
event source mappings, all derived from template.yaml.

Time. AWS runs each piece of work when it is due: a schedule at its time, a delayed
message when its delay ends, Send a second after Evaluate queued a fire. ``advance``
does the same on the virtual clock: it steps from one due moment to the next and drains
everything each moment causes before moving on, so the outcome never depends on how far
the clock was moved in one call.

Idling. With nothing due, the pump thread sleeps until the next due moment or until a
request reaches moto from outside the pump (a function, the gateway, a test), which is
what can create work; the pump's own calls are marked and do not wake it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
from moto.core.model_instances import model_data
from moto.server import ThreadedMotoServer

from local.clock import VirtualClock
from local.faults import FaultCounts, QueueFaults, SesFaults, TableFaults
from local.meter import PUMP_HEADER, AwsMeter
from local.outbox import describe_email
from local.partitions import queries_read_one_partition
from local.resources import create_resources, queue_url, resolve_queue_urls
from local.runtime import FunctionPool
from local.scheduler import AsyncTarget, ScheduleFirer
from local.ses_events import SesEventPublisher
from local.sources import QueuePoller, StreamPoller, queues_on_clock, streams_on_clock
from local.template import ACCOUNT, LocalNames, Template, load_template
from local.ttl import TtlSweeper
from local.websocket import SocketApiServer

__all__ = ["Advance", "LocalStack", "StackConfig"]

log = logging.getLogger("nudge.local")
REPO = Path(__file__).resolve().parent.parent
# An idle pump looks again at least this often, in case something was missed.
MAX_IDLE_WAIT = 60.0


@dataclass(frozen=True)
class Advance:
    """Where an advance of the clock got to: the target, or a moment short of it when the
    work took longer than the stack's budget (every moment up to ``now`` is done)."""

    now: datetime
    target: datetime
    moments: int  # due moments stepped through on the way

    @property
    def complete(self) -> bool:
        return self.now >= self.target


@dataclass(frozen=True)
class StackConfig:
    port: int = 3000
    host: str = "127.0.0.1"
    moto_port: int = 0  # 0: any free port
    write_key: str = "dev-write-key"
    tracking_secret: str = "dev-tracking-secret"
    from_email: str = "nudge@example.com"
    crm_webhook_url: str = ""
    # A throwaway Standard Webhooks secret (whsec_ + base64) for the local stack only.
    webhook_secret: str = "whsec_ZGV2LXdlYmhvb2stc2VjcmV0LWZvci1udWRnZQ=="
    template_path: Path = REPO / "template.yaml"
    http_concurrency: int = 2
    poll_interval: float = 0.1  # after a failed pump round, before trying again
    advance_budget: float = 600.0  # seconds of work one clock advance may take
    admin_key: str = "dev-admin-key"  # the reports API's key (an SSM SecureString on AWS)
    socket_port: int = 3001  # the WebSocket API (in-app messages); 0: any free port
    # The trigger folder the functions load (NUDGE_TRIGGERS_DIR), as a deploy would package
    # another one; None: the shipped triggers/. `make run` uses the demo's timings.
    triggers_dir: Path | None = None
    # The template's RetentionDays (days an event is kept until TTL deletes it); None: its
    # default. A soak sets a day, so its clock passes the retention many times over.
    retention_days: int | None = None

    @classmethod
    def from_env(cls) -> StackConfig:
        return cls(
            port=int(os.environ.get("PORT", "3000")),
            host=os.environ.get("NUDGE_LOCAL_HOST", "127.0.0.1"),
            moto_port=int(os.environ.get("NUDGE_MOTO_PORT", "0")),
            write_key=os.environ.get("NUDGE_WRITE_KEY", "dev-write-key"),
            tracking_secret=os.environ.get("NUDGE_TRACKING_SECRET") or "dev-tracking-secret",
            from_email=os.environ.get("NUDGE_FROM_EMAIL") or "nudge@example.com",
            crm_webhook_url=os.environ.get("NUDGE_CRM_WEBHOOK_URL", ""),
            webhook_secret=os.environ.get("NUDGE_WEBHOOK_SECRET") or cls.webhook_secret,
            template_path=Path(os.environ.get("NUDGE_TEMPLATE", str(REPO / "template.yaml"))),
            advance_budget=float(os.environ.get("NUDGE_ADVANCE_BUDGET", "600")),
            admin_key=os.environ.get("NUDGE_ADMIN_KEY") or "dev-admin-key",
            socket_port=int(os.environ.get("NUDGE_SOCKET_PORT", "3001")),
            triggers_dir=Path(os.environ["NUDGE_TRIGGERS_DIR"]).resolve()
            if os.environ.get("NUDGE_TRIGGERS_DIR")
            else None,
            retention_days=int(os.environ["NUDGE_RETENTION_DAYS"])
            if os.environ.get("NUDGE_RETENTION_DAYS")
            else None,
        )


def _free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class LocalStack:
    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.clock = VirtualClock()
        self.socket_port = config.socket_port or _free_port(config.host)
        names = LocalNames(websocket_endpoint=f"ws://{config.host}:{self.socket_port}")
        self.template: Template = load_template(
            config.template_path,
            {
                "WriteKey": config.write_key,
                "TrackingSecret": config.tracking_secret,
                "FromEmail": config.from_email,
                "CrmWebhookUrl": config.crm_webhook_url,
                "WebhookSecret": config.webhook_secret,
                # Local receivers live on loopback; everywhere else webhooks must be public HTTPS.
                "WebhookAllowHosts": "127.0.0.1,localhost",
                "PublicUrl": f"http://{config.host}:{config.port}",
                **(
                    {"RetentionDays": str(config.retention_days)}
                    if config.retention_days is not None
                    else {}
                ),
            },
            names,
        )
        self.moto_port = config.moto_port or _free_port(config.host)
        self.endpoint = f"http://{config.host}:{self.moto_port}"
        self._moto = ThreadedMotoServer(ip_address=config.host, port=self.moto_port, verbose=False)
        self._pump_lock = threading.RLock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.functions: dict[str, FunctionPool] = {}
        self.ses_faults = SesFaults(self.template.names.region, crash=self._crash_queue_consumers)
        self.queue_faults = QueueFaults()
        self.table_faults = TableFaults()
        # What /_local/faults sets and shows, by service: a service with faults is one line.
        self.faults: dict[str, FaultCounts] = {
            "ses": self.ses_faults,
            "sqs": self.queue_faults,
            "dynamodb": self.table_faults,
        }
        # What the traffic would cost on AWS (GET /_local/meter), counted at the fake AWS.
        self.meter = AwsMeter(ACCOUNT)
        self.sockets: list[SocketApiServer] = []
        self.stream_pollers: list[StreamPoller] = []
        self.queue_pollers: list[QueuePoller] = []
        # DynamoDB's TTL deletions, which moto does not run (local/ttl.py).
        self.ttl = TtlSweeper(self.template.names.region, self.clock.now)

    # ---- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        queues_on_clock(self.clock)
        streams_on_clock(self.clock)
        queries_read_one_partition()
        _untrack_moto_models()
        self._moto.start()
        self._meter_aws_requests()
        self._wake_on_outside_requests()
        self._throttle_table_writes()
        self.dynamodb = self._client("dynamodb")
        self.streams = self._client("dynamodbstreams")
        self.sqs = self._client("sqs")
        self.scheduler = self._client("scheduler")
        self.sesv2 = self._client("sesv2")
        create_resources(self.template, self.dynamodb, self.sqs, self.scheduler, self.sesv2)
        self._put_admin_key()
        base_env = self.aws_environment()
        for spec in self.template.functions.values():
            concurrency = self.config.http_concurrency if spec.http_routes else 1
            resolved = replace(spec, environment=resolve_queue_urls(spec.environment, self.sqs))
            self.functions[spec.logical_id] = FunctionPool(
                resolved, self.template.names, base_env, concurrency, meter=self.meter
            )
        self._wire_sources()
        self._serve_sockets()
        self.ses_events = SesEventPublisher.for_template(
            self.template, self.functions, self.clock.now, self._send_to_queue_arn
        )
        self.ses_events.install()
        self.schedules = ScheduleFirer(
            functions_by_arn={
                self.template.names.function_arn(logical_id): pool
                for logical_id, pool in self.functions.items()
            },
            clock=self.clock,
            region=self.template.names.region,
            send_to_queue=self._send_to_queue_arn,
            meter=self.meter,
            async_targets={
                self.template.names.function_arn(spec.logical_id): AsyncTarget.declared(
                    spec.async_invoke, self.template.names
                )
                for spec in self.template.functions.values()
            },
        )
        self._thread = threading.Thread(target=self._run, name="pollers", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
        for server in self.sockets:
            server.stop()
        for pool in self.functions.values():
            pool.stop()
        self._moto.stop()

    @property
    def websocket_url(self) -> str | None:
        """What pages connect to for in-app messages (the template's WebSocket API)."""
        return self.sockets[0].url if self.sockets else None

    def _serve_sockets(self) -> None:
        self.sockets = [
            SocketApiServer(
                spec,
                self.functions,
                self.clock.epoch_ms,
                self.config.host,
                self.socket_port,
                self.template.names.region,
            )
            for spec in self.template.socket_apis[:1]  # one port: one WebSocket API
        ]
        for server in self.sockets:
            server.start()

    def aws_environment(self) -> dict[str, str]:
        """What every function's process sees: the standard variables, pointed at moto."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": self.template.names.region,
            "AWS_REGION": self.template.names.region,
            "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
            "POWERTOOLS_TRACE_DISABLED": "true",  # no X-Ray daemon on a laptop
            **(
                {"NUDGE_TRIGGERS_DIR": str(self.config.triggers_dir)}
                if self.config.triggers_dir
                else {}
            ),
        }

    def _client(self, service: str) -> Any:
        client = boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.endpoint,
            region_name=self.template.names.region,
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
        client.meta.events.register("before-sign", _mark_as_pump)
        return client

    def _wake_on_outside_requests(self) -> None:
        """Wraps moto's WSGI app: a request from outside the pump wakes it once answered
        (the write is in by then), since only such a request can create work."""
        server = self._moto._server
        assert server is not None
        inner = server.app
        header = "HTTP_" + PUMP_HEADER.upper().replace("-", "_")

        def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            try:
                return inner(environ, start_response)
            finally:
                if header not in environ:
                    self._wake.set()

        server.app = app

    def _meter_aws_requests(self) -> None:
        """Puts the meter right in front of moto, inside the fault injector: a request the
        injector refuses never reaches AWS, so AWS would not bill it."""
        server = self._moto._server
        assert server is not None
        server.app = self.meter.wrap(server.app)

    def _throttle_table_writes(self) -> None:
        """Puts the DynamoDB fault injector in front of moto's WSGI app, outside the wake-up
        wrapper: a refused write stores nothing, so there is no work to wake the pump for."""
        server = self._moto._server
        assert server is not None
        server.app = self.table_faults.wrap(server.app)

    def _wire_sources(self) -> None:
        names = self.template.names
        self.stream_pollers, self.queue_pollers = [], []
        for spec in self.template.functions.values():
            pool = self.functions[spec.logical_id]
            for stream in spec.stream_sources:
                failure_queue = stream.on_failure_queue
                self.stream_pollers.append(
                    StreamPoller(
                        function=pool,
                        source=stream,
                        streams=self.streams,
                        dynamodb=self.dynamodb,
                        sqs=self.sqs,
                        table_name=names.physical(stream.table),
                        failure_queue_url=queue_url(self.sqs, self.template, failure_queue)
                        if failure_queue
                        else None,
                        region=names.region,
                    )
                )
            for source in spec.queue_sources:
                self.queue_pollers.append(
                    QueuePoller(
                        function=pool,
                        source=source,
                        sqs=self.sqs,
                        queue_url=queue_url(self.sqs, self.template, source.queue),
                        queue_arn=names.queue_arn(source.queue),
                        region=names.region,
                        faults=self.queue_faults,
                    )
                )

    # ---- pumping -------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()  # before the round: a request during it makes another
            try:
                work = self.pump()
                wait = 0.0 if work else self._idle_wait()
            except Exception:  # the pump must outlive any one bad round
                log.exception("poller round failed")
                self._stop.wait(self.config.poll_interval)
                continue
            if wait:
                self._wake.wait(wait)

    def _idle_wait(self) -> float:
        """Real seconds until the next due moment (the offset is fixed while idle)."""
        with self._pump_lock:
            moment = self.next_due()
        if moment is None:
            return MAX_IDLE_WAIT
        return min(max((moment - self.clock.now()).total_seconds(), 0.0), MAX_IDLE_WAIT)

    def pump(self) -> int:
        """One round over every event source; returns how much it did."""
        with self._pump_lock:
            work = sum(poller.poll() for poller in self.stream_pollers)
            work += sum(poller.poll() for poller in self.queue_pollers)
            work += self.schedules.poll()
            work += self.ses_events.poll()
            work += self.ttl.poll()
            return work

    def drain(self, timeout: float = 60.0) -> int:
        """Rounds until one does nothing; returns the rounds' total work."""
        return self._drain(timeout)[0]

    def _drain(self, timeout: float) -> tuple[int, datetime]:
        """The rounds' total work, and the clock's time when the last, empty round began:
        everything due by then is done."""
        deadline = time.monotonic() + timeout
        total = 0
        with self._pump_lock:
            while time.monotonic() < deadline:
                began = self.clock.now()
                work = self.pump()
                total += work
                if not work:
                    return total, began
        raise TimeoutError(f"still busy after {timeout:.0f}s")

    def next_due(self, after: datetime | None = None) -> datetime | None:
        """The first moment after ``after`` (default: now) at which something becomes due:
        a schedule's run or retry, a queued message's delay or visibility timeout ending, or
        a TTL sweep with an expired item to delete.
        It may be already past, if it fell due since ``after``."""
        after = after or self.clock.now()
        moments = [self.schedules.next_due(after), self.ses_events.next_due(after)]
        moments.append(self.ttl.next_due(after))
        moments += [poller.next_visible(after) for poller in self.queue_pollers]
        return min((moment for moment in moments if moment is not None), default=None)

    def advance(self, seconds: float) -> Advance:
        """Moves the clock ``seconds`` forward through every moment due on the way, in
        time order, draining what each moment causes before the next: each function runs
        at the time AWS would run it. When the work outlasts ``advance_budget``, stops at
        the last moment it finished (checked after each moment, so a call always gets
        at least one moment further; a moment's own work is always finished)."""
        deadline = time.monotonic() + self.config.advance_budget
        with self._pump_lock:
            target = self.clock.now() + timedelta(seconds=seconds)
            quiet = self._finish_moment()  # what was written before the call comes first
            moments = 0
            # Asked from when the last drain went quiet: something falling due between that
            # and now is still found (and run at once, since the clock is already past it).
            while (moment := self.next_due(quiet)) is not None and moment <= target:
                self.clock.move_to(moment)
                quiet = self._finish_moment()
                moments += 1
                if time.monotonic() >= deadline:
                    break
            else:
                self.clock.move_to(target)
                self._finish_moment()
        self._wake.set()  # the idle pump's wait was worked out on the old clock
        return Advance(self.clock.now(), target, moments)

    def _finish_moment(self) -> datetime:
        """Drains a moment whatever its work takes (stopping half-way would leave time
        half-processed, which no later call could put right); returns when it went quiet."""
        return self._drain(timeout=self.config.advance_budget + 60)[1]

    def _put_admin_key(self) -> None:
        """The SecureString the Reports function reads its key from. On AWS the operator
        creates it before deploying (CloudFormation cannot create SecureStrings); here the
        stack plays the operator, with NUDGE_ADMIN_KEY."""
        name = self.template.parameters.get("AdminKeyParameter")
        if name:
            self._client("ssm").put_parameter(
                Name=name, Value=self.config.admin_key, Type="SecureString", Overwrite=True
            )

    def reset(self) -> None:
        """Wipe all data: tables are recreated (fresh streams), queues purged."""
        with self._pump_lock:
            for table in self.template.tables.values():
                name = self.template.names.physical(table.logical_id)
                self.dynamodb.delete_table(TableName=name)
            for queue in self.template.queues.values():
                self.sqs.delete_queue(QueueUrl=queue_url(self.sqs, self.template, queue.logical_id))
            self.schedules.reset()  # before the template's own schedules are made again
            create_resources(self.template, self.dynamodb, self.sqs, self.scheduler, self.sesv2)
            self._wire_sources()
            for faults in self.faults.values():
                faults.clear()
            self._ses().sent_messages.clear()
            self.ses_events.clear()
            self.meter.clear()
        self._wake.set()  # the template's schedules start again: the idle wait changes

    def _crash_queue_consumers(self) -> int:
        """Kills the invocations in progress of the functions fed by a queue: Send, the one
        that calls SES (the HTTP functions, which may be serving requests, are spared)."""
        return sum(
            pool.crash_running() for pool in self.functions.values() if pool.spec.queue_sources
        )

    def _send_to_queue_arn(self, queue_arn: str, body: str) -> None:
        name = queue_arn.rsplit(":", 1)[-1]
        url = self.sqs.get_queue_url(QueueName=name)["QueueUrl"]
        self.sqs.send_message(QueueUrl=url, MessageBody=body)

    # ---- what was delivered ----------------------------------------------------------

    def outbox(self) -> list[dict[str, Any]]:
        """Every message SES accepted, in order (moto keeps them; a real SES would send)."""
        entries = []
        for message in self._ses().sent_messages:
            entry: dict[str, Any] = {
                "id": message.id,
                "channel": "email",
                "source": getattr(message, "source", None),
            }
            if hasattr(message, "raw_data"):
                entry.update(describe_email(message.raw_data, message.destinations))
            else:
                entry.update(
                    destinations=getattr(message, "destinations", None),
                    subject=getattr(message, "subject", None),
                    body=getattr(message, "body", None),
                )
            entries.append(entry)
        return entries

    def _ses(self) -> Any:
        # moto runs in this process, so its SES backend can be read directly.
        from moto.ses.models import ses_backends

        return ses_backends[ACCOUNT][self.template.names.region]


def _untrack_moto_models() -> None:
    """Stops moto keeping every model object it ever made. Each of its model classes
    appends every instance to a class-level list (``instances_tracked``, for the
    dashboard at /moto-api/, which nothing here reads) that only ``mock_aws``'s reset
    clears: every version of every item written, every stream record and shard iterator,
    every SQS message stayed reachable, even once deleted, and a soak grew by about 11 KB
    an event. Instances are made as moto makes them, less the tracking."""
    from moto.core.common_models import BaseModel

    def untracked(cls: type[BaseModel], *args: Any, **kwargs: Any) -> BaseModel:
        return super(BaseModel, cls).__new__(cls)

    BaseModel.__new__ = staticmethod(untracked)  # type: ignore[method-assign]
    for service in model_data.values():
        for model in service.values():
            model.instances_tracked = []  # type: ignore[attr-defined]


def _mark_as_pump(request: Any, **_: Any) -> None:
    request.headers[PUMP_HEADER] = "1"
