"""Integration fixtures: moto in-process, holding the tables and queues the template declares."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from local.resources import create_resources, table_name
from local.template import Template, load_template
from tests.conftest import REPO
from tests.integration._harness import (
    TRACKING_SECRET,
    WRITE_KEY,
    Aws,
    Invoke,
    Stream,
    clear_bootstrap_caches,
)


@pytest.fixture(scope="session")
def template() -> Template:
    return load_template(
        REPO / "template.yaml", {"WriteKey": WRITE_KEY, "TrackingSecret": TRACKING_SECRET}
    )


@pytest.fixture(scope="session")
def boto_session() -> boto3.Session:
    return boto3.Session()


@pytest.fixture
def aws(
    template: Template, boto_session: boto3.Session, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Aws]:
    with mock_aws():
        # moto resets boto3's default session on start; one shared session parses each
        # service model once per run instead of once per test (most of a test's time).
        monkeypatch.setattr(boto3, "DEFAULT_SESSION", boto_session)
        dynamodb = boto3.client("dynamodb")
        sqs = boto3.client("sqs")
        scheduler = boto3.client("scheduler")
        # The SES identity (FromEmail) and configuration set, so the Send function can send.
        create_resources(template, dynamodb, sqs, scheduler, boto3.client("sesv2"))
        (table_id,) = template.tables
        # Clients must be built inside the mock, and none may outlive it.
        clear_bootstrap_caches()
        yield Aws(
            template=template,
            dynamodb=dynamodb,
            streams=boto3.client("dynamodbstreams"),
            sqs=sqs,
            scheduler=scheduler,
            table=table_name(template, table_id),
            monkeypatch=monkeypatch,
        )
        clear_bootstrap_caches()


@pytest.fixture
def ingest(aws: Aws) -> Invoke:
    return aws.load_handler("Ingest")


@pytest.fixture
def track(aws: Aws) -> Invoke:
    return aws.load_handler("Track")


@pytest.fixture
def evaluate(aws: Aws) -> Invoke:
    return aws.load_handler("Evaluate")


@pytest.fixture
def send(aws: Aws) -> Invoke:
    return aws.load_handler("Send")


@pytest.fixture
def stream(aws: Aws, evaluate: Invoke) -> Stream:
    return Stream.of(aws, evaluate)
