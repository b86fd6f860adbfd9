"""Segment's own Python client (segment-analytics-python) pointed at the local stack."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from segment.analytics import Client

from tests.e2e.conftest import StackClient

pytestmark = pytest.mark.e2e

Send = Callable[[Any, str, str], Any]

# Each call the client offers, made for one user with a chosen messageId.
CALLS: dict[str, Send] = {
    "track": lambda client, user, mid: client.track(
        user_id=user, event="Signed Up", properties={"plan": "pro"}, message_id=mid
    ),
    "identify": lambda client, user, mid: client.identify(
        user_id=user, traits={"email": "ada@example.com"}, message_id=mid
    ),
    "page": lambda client, user, mid: client.page(
        user_id=user, name="Pricing", properties={"path": "/pricing"}, message_id=mid
    ),
    "group": lambda client, user, mid: client.group(
        user_id=user, group_id="acme", traits={"size": 12}, message_id=mid
    ),
    "alias": lambda client, user, mid: client.alias(
        previous_id=f"anon-{mid}", user_id=user, message_id=mid
    ),
}


def _message_counts(stack: StackClient, user_id: str) -> Counter[str]:
    return Counter(str(event["messageId"]) for event in stack.events(user_id))


@pytest.fixture
def errors() -> list[Any]:
    return []


def _client(stack: StackClient, errors: list[Any], **options: Any) -> Any:
    return Client(
        write_key=stack.write_key,
        host=stack.base_url,
        on_error=lambda error, batch: errors.append((error, batch)),
        max_retries=1,
        timeout=10,
        **options,
    )


@pytest.fixture
def sync_client(stack: StackClient, errors: list[Any]) -> Any:
    return _client(stack, errors, sync_mode=True)


@pytest.fixture
def queued_client(stack: StackClient, errors: list[Any]) -> Iterator[Any]:
    client = _client(stack, errors, upload_interval=0.05)
    yield client
    client.join()


@pytest.mark.parametrize("kind", CALLS)
def test_each_call_is_stored_exactly_once(
    stack: StackClient, sync_client: Any, errors: list[Any], kind: str
):
    """A track, identify, page, group or alias call from the client is stored exactly once."""
    # given
    user_id, message_id = f"seg-{uuid.uuid4().hex[:8]}", str(uuid.uuid4())

    # when
    success, _ = CALLS[kind](sync_client, user_id, message_id)

    # then
    assert success
    assert errors == []
    assert _message_counts(stack, user_id) == Counter({message_id: 1})
    (stored,) = stack.events(user_id)
    assert stored["type"] == kind
    assert stored["context"]["library"]["name"] == "analytics-python"


def test_queued_calls_flushed_as_one_batch_are_each_stored_once(
    stack: StackClient, queued_client: Any, errors: list[Any]
):
    """Calls queued by the client's background consumer and flushed are each stored once."""
    # given
    user_id = f"seg-{uuid.uuid4().hex[:8]}"
    message_ids = {kind: str(uuid.uuid4()) for kind in CALLS}
    for kind, send in CALLS.items():
        send(queued_client, user_id, message_ids[kind])

    # when
    queued_client.flush()

    # then
    assert errors == []
    assert _message_counts(stack, user_id) == Counter(set(message_ids.values()))


def test_gzip_client_calls_are_stored_once(stack: StackClient, errors: list[Any]):
    """With the client's gzip option on, its compressed batches are stored once each."""
    # given
    client = _client(stack, errors, sync_mode=True, gzip=True)
    user_id, message_id = f"seg-{uuid.uuid4().hex[:8]}", str(uuid.uuid4())

    # when
    success, _ = CALLS["track"](client, user_id, message_id)

    # then
    assert success
    assert errors == []
    assert _message_counts(stack, user_id) == Counter({message_id: 1})
