"""Each adapter answers AWS's failures with the ports' errors (botocore's Stubber: exact
requests, exact errors), so no service ever sees a ClientError."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from nudge.adapters.email import EmailSender, Outgoing
from nudge.adapters.scheduler import Reminders
from nudge.adapters.store import EventStore, StoredEvent, put_if
from nudge.domain.intake import parse_request
from nudge.domain.person import PersonId
from nudge.domain.render import EmailContent
from nudge.service.ports import Forbidden, Unavailable

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
TABLE = "nudge-table"


def _client(service: str) -> Any:
    return boto3.client(
        service,  # type: ignore[call-overload]
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


@pytest.fixture
def dynamodb() -> Iterator[tuple[Any, Stubber]]:
    client = _client("dynamodb")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def scheduler() -> Iterator[tuple[Any, Stubber]]:
    client = _client("scheduler")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def _one_event() -> StoredEvent:
    body = b'{"userId": "ada", "event": "Signed Up", "messageId": "m1"}'
    intake = parse_request(
        body, route="track", content_encoding=None, received_at=NOW, new_id=lambda: "id"
    )
    (event,) = intake.events
    return StoredEvent(person=PersonId.user("ada"), event=event)


def test_a_throttled_event_write_is_unavailable(dynamodb: tuple[Any, Stubber]) -> None:
    """BatchWriteItem refused with ProvisionedThroughputExceededException: Unavailable."""
    # given
    client, stubber = dynamodb
    stubber.add_client_error(
        "batch_write_item", "ProvisionedThroughputExceededException", http_status_code=400
    )
    store = EventStore(client, TABLE)

    # when / then
    with pytest.raises(Unavailable):
        store.put_events([_one_event()], {}, timedelta(days=90))


def test_a_failed_condition_is_false_not_an_error(dynamodb: tuple[Any, Stubber]) -> None:
    """put_if answers False when DynamoDB says the condition did not hold."""
    # given
    client, stubber = dynamodb
    stubber.add_client_error("put_item", "ConditionalCheckFailedException")

    # when
    written = put_if(client, TABLE, {"pk": "P#u:ada", "sk": "X"}, "attribute_not_exists(pk)")

    # then
    assert written is False


def test_a_throttled_conditional_write_is_unavailable(dynamodb: tuple[Any, Stubber]) -> None:
    """put_if raises Unavailable, not False, when the write was throttled."""
    # given
    client, stubber = dynamodb
    stubber.add_client_error("put_item", "ProvisionedThroughputExceededException")

    # when / then
    with pytest.raises(Unavailable):
        put_if(client, TABLE, {"pk": "P#u:ada", "sk": "X"}, "attribute_not_exists(pk)")


def test_arming_a_schedule_that_exists_is_success(scheduler: tuple[Any, Stubber]) -> None:
    """ConflictException from CreateSchedule means it was armed before: no error."""
    # given
    client, stubber = scheduler
    stubber.add_client_error("create_schedule", "ConflictException", http_status_code=409)
    reminders = Reminders(client, "timers", "arn:aws:iam::123456789012:role/scheduler")

    # when
    reminders.arm("t-1", NOW + timedelta(days=1), "arn:aws:lambda:fn", {"a": 1}, NOW)

    # then: the stubber's one response was used, and nothing was raised


def test_cancelling_a_schedule_that_is_gone_is_success(scheduler: tuple[Any, Stubber]) -> None:
    """ResourceNotFoundException from DeleteSchedule means it already ran or was deleted."""
    # given
    client, stubber = scheduler
    stubber.add_client_error(
        "delete_schedule",
        "ResourceNotFoundException",
        http_status_code=404,
        expected_params={"Name": "t-1", "GroupName": "timers"},
    )
    reminders = Reminders(client, "timers", "arn:aws:iam::123456789012:role/scheduler")

    # when
    reminders.cancel("t-1")

    # then: nothing was raised


def test_a_schedule_the_role_may_not_create_is_forbidden(scheduler: tuple[Any, Stubber]) -> None:
    """AccessDeniedException from CreateSchedule leaves as Forbidden: a retry won't fix it."""
    # given
    client, stubber = scheduler
    stubber.add_client_error("create_schedule", "AccessDeniedException", http_status_code=403)
    reminders = Reminders(client, "timers", "arn:aws:iam::123456789012:role/scheduler")

    # when / then
    with pytest.raises(Forbidden):
        reminders.arm("t-1", NOW + timedelta(days=1), "arn:aws:lambda:fn", {}, NOW)


def test_a_throttled_email_is_unavailable() -> None:
    """SES's TooManyRequestsException leaves the email adapter as Unavailable."""
    # given
    client = _client("sesv2")
    sender = EmailSender(client, None)
    outgoing = Outgoing(
        sender="shop@example.com",
        to="ada@example.com",
        content=EmailContent(subject="Hi", html="<p>Hi</p>", text="Hi"),
        unsubscribe_url="https://example.com/u/t",
        headers={},
    )

    # when / then
    with Stubber(client) as stubber:
        stubber.add_client_error(
            "send_email",
            "TooManyRequestsException",
            http_status_code=429,
            expected_params={
                "FromEmailAddress": "shop@example.com",
                "Destination": {"ToAddresses": ["ada@example.com"]},
                "Content": ANY,
            },
        )
        with pytest.raises(Unavailable):
            sender.send(outgoing, NOW.timestamp())
