"""The beacon API fuzzed from its own OpenAPI document (schemathesis), on the local stack:
whatever a client sends, the answer is one the document lists (200, or a 4xx with the
Error body naming the field), never a server error, and the stack keeps serving.

Bounded and repeatable: a few dozen generated requests per route, derandomized (the same
requests every run), 127.0.0.1 only.
"""

from __future__ import annotations

import base64
from collections import Counter
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import Case
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.result import Ok

from tests.e2e.conftest import StackClient

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def beacon_schema(stack: StackClient) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_url(stack.url("/openapi.json"))


def _basic(write_key: str) -> dict[str, str]:
    token = base64.b64encode(f"{write_key}:".encode()).decode()
    return {"Authorization": f"Basic {token}"}


FUZZING = settings(
    max_examples=25,
    derandomize=True,
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


def test_every_answer_is_one_the_document_lists(
    beacon_schema: schemathesis.BaseSchema, stack: StackClient
) -> None:
    # given every route of the document, and requests generated from its schemas
    operations = []
    for result in beacon_schema.get_all_operations():
        assert isinstance(result, Ok), result  # an operation the document cannot describe
        operations.append(result.ok())
    assert len(operations) > 5
    statuses: Counter[int] = Counter()
    for operation in operations:

        @FUZZING
        @given(case=operation.as_strategy())
        def each_request_is_answered_as_documented(case: Case[Any]) -> None:
            # when it is sent with the write key / then the answer is a documented one
            response = case.call_and_validate(
                base_url=stack.base_url, headers=_basic(stack.write_key), checks=CHECKS
            )
            statuses[response.status_code] += 1

        each_request_is_answered_as_documented()
    # and both kinds of answer were exercised: accepted and refused
    assert statuses[200] > 0
    assert sum(count for status, count in statuses.items() if 400 <= status < 500) > 0


def test_the_stack_still_serves_after_the_fuzzing(stack: StackClient) -> None:
    # given the fuzzing above / when a plain track call arrives / then it is accepted
    response = requests.post(
        stack.url("/v1/track"),
        json={"userId": "after-fuzz", "event": "Signed Up"},
        headers=_basic(stack.write_key),
        timeout=10,
    )
    assert response.status_code == 200
