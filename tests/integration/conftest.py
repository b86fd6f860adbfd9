"""Integration fixtures: moto in-process, holding the tables and queues the template declares."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest

from local.template import Template, load_template
from tests.conftest import REPO
from tests.integration._harness import (
    TRACKING_SECRET,
    WRITE_KEY,
    Aws,
    Invoke,
    Stream,
    mocked_account,
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
def aws(template: Template, boto_session: boto3.Session) -> Iterator[Aws]:
    with mocked_account(template, boto_session) as account:
        yield account


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
