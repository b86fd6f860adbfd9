"""Integration fixtures: moto in-process, holding the tables and queues the template declares."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws
from nudge import bootstrap

from local.resources import create_resources, table_name
from local.template import Template, load_template
from tests.conftest import REPO
from tests.integration._harness import WRITE_KEY, Aws, Invoke, Stream


@pytest.fixture(scope="session")
def template() -> Template:
    return load_template(REPO / "template.yaml", {"WriteKey": WRITE_KEY})


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
        create_resources(template, dynamodb, boto3.client("sqs"))
        (table_id,) = template.tables
        # Clients must be built inside the mock, and none may outlive it.
        bootstrap.settings.cache_clear()
        bootstrap.dynamodb_client.cache_clear()
        yield Aws(
            template=template,
            dynamodb=dynamodb,
            streams=boto3.client("dynamodbstreams"),
            table=table_name(template, table_id),
            monkeypatch=monkeypatch,
        )
        bootstrap.settings.cache_clear()
        bootstrap.dynamodb_client.cache_clear()


@pytest.fixture
def ingest(aws: Aws) -> Invoke:
    return aws.load_handler("Ingest")


@pytest.fixture
def profiles(aws: Aws) -> Invoke:
    return aws.load_handler("Profiles")


@pytest.fixture
def stream(aws: Aws, profiles: Invoke) -> Stream:
    return Stream.of(aws, profiles)
