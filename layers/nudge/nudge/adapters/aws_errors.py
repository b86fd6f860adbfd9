"""The one translator of botocore's errors into the ports' errors.

Decided by the error code AWS sends (and the HTTP status when the code is unknown),
never by the text of a message. Every adapter call runs inside ``aws_call``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import (
    ConnectionError as NoConnection,
)

from nudge.service.ports import Conflict, Forbidden, Missing, OutsideError, Refused, Unavailable

__all__ = ["aws_call", "error_code", "translate"]

_UNAVAILABLE = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "TooManyRequestsException",
        "LimitExceededException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalServerError",
        "InternalFailure",
        "InternalError",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)
_CONFLICT = frozenset(
    {"ConditionalCheckFailedException", "TransactionConflictException", "ConflictException"}
)
_MISSING = frozenset(
    {
        "ResourceNotFoundException",
        "NotFoundException",
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
        "GoneException",  # API Gateway: the WebSocket connection is closed
        "ParameterNotFound",  # SSM
        "NoSuchKey",  # S3: no such object (a model not trained yet)
    }
)
_FORBIDDEN = frozenset(
    {
        "AccessDeniedException",
        "AccessDenied",
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ExpiredTokenException",
        "AccountSuspendedException",
        "SendingPausedException",
        "MailFromDomainNotVerifiedException",
    }
)


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def translate(error: ClientError | BotoCoreError, doing: str) -> OutsideError:
    """The port error for a botocore error raised while ``doing`` something."""
    if isinstance(error, NoConnection | HTTPClientError | IncompleteReadError):
        return Unavailable(f"{doing}: {error}")  # no whole answer: refused, reset, timed out
    if isinstance(error, NoCredentialsError | PartialCredentialsError):
        return Forbidden(f"{doing}: {error}")  # a missing credential is not a passing state
    if isinstance(error, BotoCoreError):
        return Refused(f"{doing}: {error}")  # a request the SDK itself refused: a bug
    code = error_code(error)
    if code == "TransactionCanceledException":
        return _cancelled(error, doing)
    message = f"{doing}: {code or 'error'}"
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
    if code in _UNAVAILABLE or status >= 500:
        return Unavailable(message)
    for codes, kind in ((_CONFLICT, Conflict), (_MISSING, Missing), (_FORBIDDEN, Forbidden)):
        if code in codes:
            return kind(message)
    return Refused(message)


def _cancelled(error: ClientError, doing: str) -> OutsideError:
    """A cancelled transaction, by why its items were refused: a condition that did not
    hold is a Conflict (the caller's answer); a concurrent transaction on an item, or
    throttling, is Unavailable (worth trying again); anything else Refused."""
    reasons = {str(reason.get("Code")) for reason in error.response.get("CancellationReasons", [])}
    message = f"{doing}: transaction cancelled ({', '.join(sorted(reasons)) or 'no reason given'})"
    if "ConditionalCheckFailed" in reasons:
        return Conflict(message)
    if reasons & {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"}:
        return Unavailable(message)
    return Refused(message)


@contextmanager
def aws_call(doing: str) -> Iterator[None]:
    """Runs one or more AWS calls; their errors leave as the ports' errors."""
    try:
        yield
    except (ClientError, BotoCoreError) as error:
        raise translate(error, doing) from error
