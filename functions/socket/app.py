"""Socket: the WebSocket API's authorizer and routes, for in-app messages.

One function plays both parts API Gateway asks for:
- the REQUEST authorizer of ``$connect``: the write key and an identity from the query
  string. An unknown key raises "Unauthorized" (API Gateway answers 401), no identity is
  a Deny (403). The identity travels in the authorizer's context, which API Gateway hands
  to every later route of the connection, ``$disconnect`` included, so no lookup is needed;
- the routes: ``$connect`` records the page, ``$disconnect`` forgets it, ``sync`` posts
  the messages waiting for the person, ``ack`` gives a message to the first page ready.
Time is API Gateway's (``requestTimeEpoch``), so the local stack's clock reaches it too.
"""

from __future__ import annotations

# First of all: the collector is paused until the handler is built (ready() below).
from nudge import coldstart  # isort: split

import json
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext
from nudge import bootstrap
from nudge.domain.errors import InvalidRequest, Unauthorized
from nudge.domain.in_app import SocketIdentity
from nudge.service.in_app import page_identity

logger = Logger()
settings = bootstrap.settings()
service = bootstrap.in_app_service(bootstrap.socket_settings().socket_endpoint)


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("type") == "REQUEST" and "methodArn" in event:
        return authorize(event)
    request = event["requestContext"]
    route, connection = request["routeKey"], request["connectionId"]
    now = datetime.fromtimestamp(int(request["requestTimeEpoch"]) / 1000, tz=UTC)
    identity = _identity(request.get("authorizer") or {})
    if route == "$connect":
        service.connect(connection, identity, now)
    elif route == "$disconnect":
        service.disconnect(connection, identity)
    elif route == "sync":
        posted = service.sync(connection, identity, now)
        logger.info("synced", extra={"messages": posted})
    elif route == "ack":
        fire_id = _fire_id(event.get("body"))
        if fire_id is None:
            return _status(400, "ack needs a fireId")
        service.ack(connection, identity, fire_id, now)
    else:
        return _status(400, f"no route {route!r}")
    return _status(200, "ok")


def authorize(event: dict[str, Any]) -> dict[str, Any]:
    query = event.get("queryStringParameters") or {}
    try:
        identity = page_identity(query, settings.write_keys)
    except Unauthorized as refused:
        logger.info("connection refused", extra={"reason": refused.message})
        # The one answer API Gateway turns into 401 rather than a 500.
        raise Exception("Unauthorized") from None
    except InvalidRequest as refused:
        logger.info("connection denied", extra={"reason": refused.message})
        return _policy("Deny", event["methodArn"], {})
    context = {"userId": identity.user_id or "", "anonymousId": identity.anonymous_id or ""}
    return _policy("Allow", event["methodArn"], context, principal=str(identity.person))


def _policy(
    effect: str, method_arn: str, context: dict[str, str], principal: str = "anonymous"
) -> dict[str, Any]:
    statement = {"Action": "execute-api:Invoke", "Effect": effect, "Resource": method_arn}
    return {
        "principalId": principal,
        "policyDocument": {"Version": "2012-10-17", "Statement": [statement]},
        "context": context,
    }


def _identity(authorizer: dict[str, Any]) -> SocketIdentity:
    return SocketIdentity(
        user_id=str(authorizer.get("userId") or "") or None,
        anonymous_id=str(authorizer.get("anonymousId") or "") or None,
    )


def _fire_id(body: object) -> str | None:
    try:
        message = json.loads(body) if isinstance(body, str) else None
    except json.JSONDecodeError:
        return None
    fire_id = message.get("fireId") if isinstance(message, dict) else None
    return fire_id if isinstance(fire_id, str) and 0 < len(fire_id) <= 200 else None


def _status(code: int, message: str) -> dict[str, Any]:
    return {"statusCode": code, "body": message}


coldstart.ready()
