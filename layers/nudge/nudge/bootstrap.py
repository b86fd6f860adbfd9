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

from nudge.adapters.store import EventStore
from nudge.config import Settings
from nudge.service.ingest import IngestService
from nudge.service.profiles import ProfileService

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = ["dynamodb_client", "event_store", "ingest_service", "profile_service", "settings"]

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


def profile_service() -> ProfileService:
    return ProfileService(event_store())
