"""The one translator of botocore errors: decided by the error code (and the HTTP status
when the code is unknown), never by the message's text."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
)
from nudge.adapters.aws_errors import aws_call, translate
from nudge.service.ports import (
    Conflict,
    Forbidden,
    Missing,
    OutsideError,
    Refused,
    Unavailable,
)


def client_error(code: str, status: int = 400, message: str = "") -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "AnyOperation")


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("ProvisionedThroughputExceededException", Unavailable),
        ("ThrottlingException", Unavailable),
        ("RequestLimitExceeded", Unavailable),
        ("TooManyRequestsException", Unavailable),
        ("ConditionalCheckFailedException", Conflict),
        ("TransactionConflictException", Conflict),
        ("ConflictException", Conflict),
        ("ResourceNotFoundException", Missing),
        ("AWS.SimpleQueueService.NonExistentQueue", Missing),
        ("AccessDeniedException", Forbidden),
        ("UnrecognizedClientException", Forbidden),
        ("ValidationException", Refused),
        ("SerializationException", Refused),
    ],
)
def test_an_error_code_becomes_its_port_error(code: str, kind: type[OutsideError]) -> None:
    """Each AWS error code maps to the port error that says what the caller can do."""
    # given
    error = client_error(code)

    # when
    translated = translate(error, "writing items")

    # then
    assert type(translated) is kind
    assert str(translated) == f"writing items: {code}"


def test_an_unknown_code_with_a_5xx_is_unavailable() -> None:
    """A server-side failure AWS names in a way not listed is still worth retrying."""
    # given
    error = client_error("SomethingNew", status=503)

    # when / then
    assert isinstance(translate(error, "reading"), Unavailable)


def test_the_message_text_does_not_decide() -> None:
    """A validation error whose message talks of throttling is still refused, not retried."""
    # given
    error = client_error("ValidationException", message="throttled ProvisionedThroughput")

    # when / then
    assert isinstance(translate(error, "writing"), Refused)


def test_no_answer_at_all_is_unavailable() -> None:
    """A connection that cannot be made is a passing state: Unavailable."""
    # given
    error = EndpointConnectionError(endpoint_url="http://127.0.0.1:1")

    # when / then
    assert isinstance(translate(error, "writing"), Unavailable)


def test_a_request_the_sdk_refuses_is_a_bug_not_a_retry() -> None:
    """A parameter botocore refuses before sending is Refused: retrying cannot help."""
    # given
    error = ParamValidationError(report="Missing required parameter in input: TableName")

    # when / then
    assert isinstance(translate(error, "writing"), Refused)


def test_missing_credentials_are_forbidden() -> None:
    """No credentials is a configuration problem a retry will not fix: Forbidden."""
    # given / when / then
    assert isinstance(translate(NoCredentialsError(), "writing"), Forbidden)


def test_aws_call_raises_the_port_error_chained_to_botocores() -> None:
    """Inside aws_call a ClientError leaves as the port error, the original as its cause."""
    # given
    original = client_error("ProvisionedThroughputExceededException")

    # when
    with pytest.raises(Unavailable) as caught, aws_call("writing items"):
        raise original

    # then
    assert caught.value.__cause__ is original


def test_aws_call_lets_other_errors_through() -> None:
    """Only botocore's errors are translated: a bug in the adapter stays a bug."""
    # given / when / then
    with pytest.raises(KeyError), aws_call("reading"):
        raise KeyError("Item")
