"""The composition root: the one place that builds AWS clients and wires services.

Each function imports what its service needs when it is called, so a Lambda imports
only its own code at cold start (Ingest does not pay for Jinja2 or the trigger engine).

Clients are built once per process (module cache), so warm invocations reuse their
connections. Endpoints come from the standard AWS_ENDPOINT_URL variables, which is how
the local stack points the very same code at moto.
"""

from __future__ import annotations

import functools
import logging
import os
from datetime import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from nudge.config import (
    ConfigError,
    EngineSettings,
    ReadSettings,
    Settings,
    TrainSettings,
    bundled_triggers,
)
from nudge.domain.errors import InvalidRequest

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_scheduler import EventBridgeSchedulerClient
    from mypy_boto3_sesv2 import SESV2Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_ssm import SSMClient

    from nudge.adapters.in_app import ManagementApiSockets
    from nudge.adapters.model_file import ModelReader
    from nudge.adapters.queue import DeadLetters
    from nudge.adapters.store import EventStore
    from nudge.adapters.suppression import SuppressionStore
    from nudge.delivery_config import DeliverySettings, SocketSettings, TrackingSettings
    from nudge.domain.predictions.live import Scoring
    from nudge.domain.predictions.score import ScoreModel
    from nudge.domain.triggers.engine import TriggerIndex
    from nudge.service.evaluate import EvaluateService
    from nudge.service.feedback import FeedbackService
    from nudge.service.in_app import InAppService
    from nudge.service.ingest import IngestService
    from nudge.service.inspect import PersonViews
    from nudge.service.ports import StoredEvents
    from nudge.service.privacy import PrivacyService
    from nudge.service.reporting import Reporting
    from nudge.service.retrain import Retrain
    from nudge.service.send import SendService
    from nudge.service.track import TrackService

__all__ = [
    "InvalidRequest",
    "admin_key",
    "delivery_settings",
    "dynamodb_client",
    "engine_settings",
    "evaluate_service",
    "event_store",
    "feedback_service",
    "in_app_service",
    "ingest_service",
    "person_views",
    "privacy_service",
    "report_page",
    "reporting",
    "retrain_service",
    "s3_client",
    "secure_parameter",
    "send_dead_letters",
    "send_service",
    "settings",
    "socket_settings",
    "ssm_client",
    "stored_events",
    "suppression_store",
    "track_service",
    "tracking_settings",
    "trigger_index",
    "webhook_secrets",
]

# Four attempts in all (botocore's max_attempts would count retries only: five), so the
# SDK's backoff (at most 1 + 2 + 4 s) gives up inside Ingest's 10 s timeout and the client
# hears a 503 with Retry-After rather than a timeout's 500.
_CLIENT_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 4},
    connect_timeout=2,
    read_timeout=5,
)


@functools.cache
def settings() -> Settings:
    return Settings.from_env(os.environ)


@functools.cache
def dynamodb_client() -> DynamoDBClient:
    return boto3.client("dynamodb", config=_CLIENT_CONFIG)


def event_store() -> EventStore:
    from nudge.adapters.store import EventStore  # Socket keeps no events: not at import
    from nudge.domain.profile import profile_kept

    kept = profile_kept(settings().retention)
    return EventStore(dynamodb_client(), settings().table_name, settings().sweep_shards, kept)


def stored_events(
    client: DynamoDBClient | None = None, table_name: str | None = None
) -> StoredEvents:
    """Every event in the table, for training (`nudge train --table`, the Train function):
    a caller may bring its own client and table, as for `nudge explain`."""
    from nudge.adapters.store import EventStore

    return EventStore(client or dynamodb_client(), table_name or settings().table_name)


def ingest_service() -> IngestService:
    from nudge.service.ingest import IngestService

    return IngestService(event_store(), settings())


@functools.cache
def ssm_client() -> SSMClient:
    return boto3.client("ssm", config=_CLIENT_CONFIG)


def secure_parameter(name: str, client: SSMClient | None = None) -> str:
    """The value of an SSM SecureString parameter (the admin key, the signing secrets)."""
    from nudge.adapters.parameters import SecureParameters

    return SecureParameters(client or ssm_client()).value(name)


TRACKING_SECRET_PARAMETER = "NUDGE_TRACKING_SECRET_PARAMETER"


@functools.cache
def tracking_settings() -> TrackingSettings:
    """The link-signing secrets, from the SecureString the environment names (read once per
    process: a rotation reaches a function with its next cold start, docs/operations.md)."""
    from nudge.delivery_config import TrackingSettings

    name = os.environ.get(TRACKING_SECRET_PARAMETER)
    if not name:
        raise ConfigError(f"{TRACKING_SECRET_PARAMETER} is not set")
    return TrackingSettings.of(secure_parameter(name))


@functools.cache
def webhook_secrets() -> tuple[str, ...]:
    """The webhook signing secrets (``new,old``), from the SecureString Send's settings name."""
    from nudge.delivery_config import webhook_secrets as parse_webhook_secrets

    name = delivery_settings().webhook_secret_parameter
    if not name:
        raise ConfigError("no webhook secret parameter: webhooks are off")
    return parse_webhook_secrets(secure_parameter(name))


def suppression_store() -> SuppressionStore:
    from nudge.adapters.suppression import SuppressionStore

    return SuppressionStore(dynamodb_client(), settings().table_name)


def track_service() -> TrackService:
    from nudge.adapters.queue import TrackRetryQueue
    from nudge.service.track import TrackService

    retry_url = os.environ.get("NUDGE_TRACK_RETRY_QUEUE_URL", "")
    return TrackService(
        events=event_store(),
        suppressions=suppression_store(),
        settings=settings(),
        secret=tracking_settings().secret,
        retired=tracking_settings().retired,
        retries=TrackRetryQueue(sqs_client(), retry_url) if retry_url else None,
    )


@functools.cache
def engine_settings() -> EngineSettings:
    return EngineSettings.from_env(os.environ)


@functools.cache
def scheduler_client() -> EventBridgeSchedulerClient:
    return boto3.client("scheduler", config=_CLIENT_CONFIG)


@functools.cache
def sqs_client() -> SQSClient:
    return boto3.client("sqs", config=_CLIENT_CONFIG)


@functools.cache
def trigger_index() -> TriggerIndex:
    """The deployed triggers, checked at cold start: an invalid set refuses to run."""
    from nudge.domain.triggers.engine import TriggerIndex
    from nudge.domain.triggers.loader import load_triggers

    loaded = load_triggers(engine_settings().triggers_dir)
    if loaded.problems:
        raise ConfigError(
            "invalid triggers: " + "; ".join(str(problem) for problem in loaded.problems)
        )
    return TriggerIndex.of(loaded.triggers)


@functools.cache
def scoring() -> Scoring | None:
    """The predictions scored on every event, each with its model or why it has none:
    loaded once per process, and a problem logged once here, never raised (Evaluate then
    scores nothing for that prediction, and triggers on its score do not match).

    Only the predictions an enabled trigger reads are scored: a score costs the history
    its features count (up to 28 days, a read where the event needed none) and bytes on
    every profile write, which nobody should pay for a score nothing uses. None when no
    trigger reads one: then no model is fetched (no S3 client, no GetObject) and no
    prediction code is imported (7 ms of Evaluate's cold start, bench/README.md)."""
    from dataclasses import replace

    from nudge.domain.triggers.scores import score_ids

    engine = engine_settings()
    read = {name for trigger in trigger_index().triggers.values() for name in score_ids(trigger)}
    if not read:
        return None
    from nudge.adapters.model_file import load_scoring

    reader = _models_reader(engine.models_dir, engine.models_bucket, read)
    found, problems = load_scoring(engine.predictions_dir, reader)
    # load_scoring lists the folder's own problems (a file that does not load) first, then
    # each prediction's; only the read predictions' are worth a warning.
    in_folder = problems[: len(problems) - len(found.problems)]
    found = replace(
        found, predictions=tuple(p for p in found.predictions if p.prediction.id in read)
    )
    for problem in [*in_folder, *found.problems]:
        logging.getLogger("nudge.scoring").warning("scoring: %s", problem)
    return found


def _models_reader(folder: Path, bucket_name: str, read: set[str] | None) -> ModelReader:
    """The models of the predictions in ``read`` (None: every one): from the models bucket
    when the environment names one (on AWS, and the local stack, which plays it on moto),
    else from the folder. The others are not fetched (their predictions are dropped after
    loading)."""
    from nudge.adapters.model_file import load_model
    from nudge.adapters.model_store import S3Models, model_from
    from nudge.domain.predictions.score import ModelProblem

    bucket = S3Models(s3_client(), bucket_name) if bucket_name else None

    def only_read(prediction: str) -> ScoreModel | ModelProblem:
        if read is not None and prediction not in read:
            return ModelProblem(f"no enabled trigger reads {prediction}'s score")
        if bucket is not None:
            return model_from(bucket, prediction)
        return load_model(folder / f"{prediction}.json")

    return only_read


@functools.cache
def s3_client() -> S3Client:
    return boto3.client("s3", config=_CLIENT_CONFIG)


def retrain_service() -> Retrain:
    """The Train function's: the bundled predictions, every event in the table, the models
    bucket. The plan is `nudge train`'s defaults."""
    from nudge.adapters.model_store import S3Models
    from nudge.domain.predictions.loader import load_predictions
    from nudge.service.retrain import Retrain

    train = TrainSettings.from_env(os.environ)
    loaded = load_predictions(train.predictions_dir)
    if loaded.problems:
        raise ConfigError(
            "invalid predictions: " + "; ".join(str(problem) for problem in loaded.problems)
        )
    return Retrain(
        events=stored_events(),
        models=S3Models(s3_client(), train.models_bucket),
        predictions=loaded.predictions,
        people=train.people,
    )


def evaluate_service() -> EvaluateService:
    from nudge.adapters.audience import AudienceStore
    from nudge.adapters.engine_store import EngineStore
    from nudge.adapters.experiments import ExperimentStore
    from nudge.adapters.queue import SendQueue
    from nudge.adapters.scheduler import Reminders
    from nudge.service.evaluate import EvaluateService

    engine = engine_settings()
    return EvaluateService(
        events=event_store(),
        engine=EngineStore(dynamodb_client(), settings().table_name, engine.decision_ttl),
        reminders=Reminders(scheduler_client(), engine.schedule_group, engine.scheduler_role_arn),
        queue=SendQueue(sqs_client(), engine.send_queue_url),
        index=trigger_index(),
        experiments=ExperimentStore(dynamodb_client(), settings().table_name),
        audience=AudienceStore(dynamodb_client(), settings().table_name),
        scoring=scoring(),
    )


@functools.cache
def delivery_settings() -> DeliverySettings:
    from nudge.delivery_config import DeliverySettings

    return DeliverySettings.from_env(os.environ)


@functools.cache
def sesv2_client() -> SESV2Client:
    return boto3.client("sesv2", config=_CLIENT_CONFIG)


def send_dead_letters() -> DeadLetters:
    from nudge.adapters.queue import DeadLetters

    return DeadLetters(sqs_client(), delivery_settings().dead_letter_url)


def send_service() -> SendService:
    from nudge.adapters.audience import AudienceStore
    from nudge.adapters.contacts import ContactStore
    from nudge.adapters.email import EmailSender
    from nudge.adapters.engine_store import EngineStore
    from nudge.adapters.experiments import ExperimentStore
    from nudge.adapters.queue import SendQueue
    from nudge.adapters.receipts import FailedReceipts, SendReceipts
    from nudge.adapters.scheduler import Reminders
    from nudge.adapters.suppression import SuppressionStore
    from nudge.adapters.webhook import WebhookSender
    from nudge.domain.policy import Policy
    from nudge.domain.render import Renderer
    from nudge.service.send import SendService, SendSettings

    delivery = delivery_settings()
    engine = engine_settings()
    policy = Policy(
        per_trigger_per_day=delivery.trigger_per_day,
        cooldown=delivery.cooldown,
        per_channel_per_day={
            "email": delivery.email_per_day,
            "webhook": delivery.webhook_per_day,
            "in_app": delivery.in_app_per_day,
        },
        quiet_start=time.fromisoformat(delivery.quiet_hours[0]),
        quiet_end=time.fromisoformat(delivery.quiet_hours[1]),
        default_timezone=delivery.default_timezone,
    )
    webhook = (
        WebhookSender(
            webhook_secrets(),
            allow_hosts=delivery.webhook_allow_hosts,
            timeout=delivery.webhook_timeout,
        )
        if delivery.webhook_secret_parameter
        else None
    )
    table = settings().table_name
    return SendService(
        events=event_store(),
        contacts=ContactStore(dynamodb_client(), table),
        suppression=SuppressionStore(dynamodb_client(), table),
        receipts=SendReceipts(dynamodb_client(), table),
        failed_receipts=FailedReceipts(sqs_client(), delivery.receipt_failures_url),
        decisions=EngineStore(dynamodb_client(), table, engine.decision_ttl),
        renderer=Renderer(engine.triggers_dir / "templates"),
        email=EmailSender(sesv2_client(), delivery.configuration_set),
        webhook=webhook,
        reminders=Reminders(scheduler_client(), engine.schedule_group, engine.scheduler_role_arn),
        queue=SendQueue(sqs_client(), engine.send_queue_url),
        experiments=ExperimentStore(dynamodb_client(), table),
        in_app=in_app_service(delivery.socket_endpoint) if delivery.socket_endpoint else None,
        audience=AudienceStore(dynamodb_client(), table),
        settings=SendSettings(
            from_email=delivery.from_email,
            public_url=delivery.public_url,
            tracking_key=tracking_settings().secret,
            crm_webhook_url=delivery.crm_webhook_url,
            send_queue_arn=delivery.send_queue_arn,
            policy=policy,
        ),
    )


@functools.cache
def socket_settings() -> SocketSettings:
    from nudge.delivery_config import SocketSettings

    return SocketSettings.from_env(os.environ)


@functools.cache
def socket_poster(socket_endpoint: str) -> ManagementApiSockets:
    """The Management API of the WebSocket API at ``socket_endpoint`` (its wss:// URL and
    stage); its endpoint is always explicit, as API Gateway gives each API its own."""
    from nudge.adapters.in_app import ManagementApiSockets, management_endpoint

    client = boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=management_endpoint(socket_endpoint),
        config=_CLIENT_CONFIG,
    )
    return ManagementApiSockets(client)


def in_app_service(socket_endpoint: str) -> InAppService:
    from nudge.adapters.in_app import InAppStore
    from nudge.service.in_app import InAppService

    return InAppService(
        inbox=InAppStore(dynamodb_client(), settings().table_name),
        sockets=socket_poster(socket_endpoint),
    )


def privacy_service(
    client: DynamoDBClient | None = None,
    table_name: str | None = None,
    schedule_group: str | None = None,
) -> PrivacyService:
    """Export and erasure of a person (the Privacy function, `nudge export` and `nudge
    forget`); a caller may bring its own client, table and timers' schedule group."""
    from nudge.adapters.privacy import PersonItems
    from nudge.adapters.scheduler import Reminders
    from nudge.adapters.store import EventStore
    from nudge.service.privacy import PrivacyService

    client = client or dynamodb_client()
    table = table_name or settings().table_name
    # Only deletes schedules: the group names them; no role is passed to anyone.
    group = schedule_group or os.environ.get("NUDGE_SCHEDULE_GROUP", "default")
    return PrivacyService(
        people=EventStore(client, table),
        data=PersonItems(client, table),
        reminders=Reminders(scheduler_client(), group, role_arn=""),
    )


def feedback_service() -> FeedbackService:
    from nudge.adapters.experiments import ExperimentStore
    from nudge.adapters.receipts import SendReceipts
    from nudge.adapters.suppression import SuppressionStore
    from nudge.service.feedback import FeedbackService

    table = settings().table_name
    return FeedbackService(
        SuppressionStore(dynamodb_client(), table),
        SendReceipts(dynamodb_client(), table),
        ExperimentStore(dynamodb_client(), table),
    )


def reporting(
    client: DynamoDBClient | None = None,
    table_name: str | None = None,
    triggers_dir: Path | None = None,
) -> Reporting:
    """Every trigger's report, from the counters (the Reports function, `nudge report`, the
    local stack's /_local/report). Disabled triggers are reported too: their counts stay."""
    from nudge.adapters.experiments import ExperimentStore
    from nudge.domain.triggers.loader import load_triggers
    from nudge.service.reporting import Reporting

    folder = triggers_dir or bundled_triggers()
    loaded = load_triggers(folder) if folder.is_dir() else None
    triggers = {trigger.id: trigger for trigger in loaded.triggers} if loaded else {}
    dynamodb = client if client is not None else dynamodb_client()
    return Reporting(ExperimentStore(dynamodb, table_name or settings().table_name), triggers)


def report_page(reports: list[dict[str, Any]]) -> str:
    """Reports as one self-contained HTML page (the local stack's /_local/report)."""
    from nudge.entrypoints.report_render import html_report

    return html_report(reports)


ADMIN_KEY_PARAMETER = "NUDGE_ADMIN_KEY_PARAMETER"


def admin_key() -> str:
    """The reports API's key, from the SSM SecureString parameter the environment names
    (read once per process). Never the write key: reports show every trigger's results."""
    name = os.environ.get(ADMIN_KEY_PARAMETER)
    if not name:
        raise ConfigError(f"{ADMIN_KEY_PARAMETER} is not set")
    return secure_parameter(name)


def person_views(
    client: DynamoDBClient | None = None,
    table_name: str | None = None,
    triggers_dir: Path | None = None,
) -> PersonViews:
    """The read side, for operators (`nudge explain`, the local stack's control API).

    A caller may bring its own client and table (the local stack: its moto client and the
    physical name); otherwise both come from the environment, as for the functions. The
    triggers only say where inactivity triggers stand, so a missing folder means none; by
    default they are the bundled ones the functions run. The predictions and their models
    are Evaluate's (``ReadSettings``; from the models bucket when NUDGE_MODELS_BUCKET names
    one): explain takes a score apart with the model that gave it, and a prediction without
    one says why in place of its contributions."""
    from nudge.adapters.contacts import ContactStore
    from nudge.adapters.engine_store import EngineStore
    from nudge.adapters.fire_scan import FireScan
    from nudge.adapters.model_file import load_scoring
    from nudge.adapters.store import EventStore
    from nudge.service.inspect import PersonViews

    dynamodb = client if client is not None else dynamodb_client()
    table = table_name or settings().table_name
    read = ReadSettings.from_env(os.environ)
    return PersonViews(
        events=EventStore(dynamodb, table),
        engine=EngineStore(dynamodb, table, read.decision_ttl),
        contacts=ContactStore(dynamodb, table),
        scan=FireScan(dynamodb, table),
        index=_triggers_if_any(triggers_dir or bundled_triggers()),
        scoring=load_scoring(
            read.predictions_dir, _models_reader(read.models_dir, read.models_bucket, None)
        )[0],
    )


def _triggers_if_any(folder: Path) -> TriggerIndex:
    """The triggers in the folder, none when it is missing; a set with problems is used as
    far as it loaded rather than refused, since reading records back needs no triggers."""
    from nudge.domain.triggers.engine import TriggerIndex
    from nudge.domain.triggers.loader import load_triggers

    return TriggerIndex.of(load_triggers(folder).triggers if folder.is_dir() else [])
