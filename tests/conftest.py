"""Settings every test shares: fake AWS credentials, so nothing can reach a real account."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_SESSION_TOKEN="testing",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_REGION="us-east-1",
    # moto 5.2 does not know botocore's account-based endpoints (DynamoDB Streams 404s).
    AWS_ACCOUNT_ID_ENDPOINT_MODE="disabled",
    POWERTOOLS_METRICS_NAMESPACE="NudgeTest",
    POWERTOOLS_DEV="false",
)


@pytest.fixture
def repo() -> Path:
    return REPO
