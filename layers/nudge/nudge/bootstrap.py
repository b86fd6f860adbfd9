"""The composition root: the one place that builds AWS clients and wires services.

Clients are built once per process (module cache), so warm invocations reuse their
connections. Endpoints come from the standard AWS_ENDPOINT_URL variables, which is how
the local stack points the very same code at moto.
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

from nudge.adapters.engine_store import EngineStore
from nudge.adapters.queue import SendQueue
from nudge.adapters.scheduler import Reminders
from nudge.adapters.store import EventStore
from nudge.config import ConfigError, EngineSettings, Settings
from nudge.domain.triggers.engine import TriggerIndex
from nudge.domain.triggers.loader import load_triggers
from nudge.service.evaluate import EvaluateService
from nudge.service.ingest import IngestService

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_scheduler import EventBridgeSchedulerClient
    from mypy_boto3_sqs import SQSClient

__all__ = [
    "dynamodb_client",
    "engine_settings",
    "evaluate_service",
    "event_store",
    "ingest_service",
    "settings",
    "trigger_index",
]

_CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 4},
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
    return EventStore(dynamodb_client(), settings().table_name)


def ingest_service() -> IngestService:
    return IngestService(event_store(), settings())


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
    loaded = load_triggers(engine_settings().triggers_dir)
    if loaded.problems:
        raise ConfigError(
            "invalid triggers: " + "; ".join(str(problem) for problem in loaded.problems)
        )
    return TriggerIndex.of(loaded.triggers)


def evaluate_service() -> EvaluateService:
    engine = engine_settings()
    return EvaluateService(
        events=event_store(),
        engine=EngineStore(dynamodb_client(), settings().table_name, engine.decision_ttl),
        reminders=Reminders(scheduler_client(), engine.schedule_group, engine.scheduler_role_arn),
        queue=SendQueue(sqs_client(), engine.send_queue_url),
        index=trigger_index(),
    )
