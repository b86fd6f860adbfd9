"""The Socket function on moto, invoked with the events API Gateway's WebSocket API sends:
the $connect authorizer (the write key and an identity from the query string), $connect
and $disconnect keeping the person's open pages in the table, sync and ack posting frames
through the Management API (moto's apigatewaymanagementapi), and the refusals."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from moto.apigatewaymanagementapi.models import apigatewaymanagementapi_backends
from nudge import bootstrap
from nudge.adapters import keys
from nudge.adapters.in_app import InAppStore
from nudge.domain.in_app import InAppMessage
from nudge.domain.messages import InAppDisplay
from nudge.domain.person import PersonId

from local.template import LocalNames, Template, load_template
from tests.conftest import REPO
from tests.integration._harness import NOW, TRACKING_SECRET, WRITE_KEY, Aws, Invoke

ADA = PersonId.user("ada")
VISITOR = PersonId.anonymous("anon-7")
# A WebSocket API's endpoint on AWS's domain, so moto answers its Management API.
API_ENDPOINT = "wss://sockets1.execute-api.us-east-1.amazonaws.com"
METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:sockets1/live/$connect"
ADA_CONTEXT = {"principalId": "u:ada", "userId": "ada", "anonymousId": "anon-7"}


@pytest.fixture(scope="module")
def socket_template() -> Template:
    return load_template(
        REPO / "template.yaml",
        {"WriteKey": WRITE_KEY, "TrackingSecret": TRACKING_SECRET},
        LocalNames(websocket_endpoint=API_ENDPOINT),
    )


def clear_socket_caches() -> None:
    """The composition root's socket settings and Management API client, which the
    harness's clear_bootstrap_caches does not know of."""
    bootstrap.socket_settings.cache_clear()
    bootstrap.socket_poster.cache_clear()


@pytest.fixture
def socket_aws(aws: Aws, socket_template: Template) -> Iterator[Aws]:
    clear_socket_caches()
    yield replace(aws, template=socket_template)
    clear_socket_caches()


@pytest.fixture
def socket(socket_aws: Aws) -> Invoke:
    """A cold start of the Socket function, its Management API on moto."""
    return socket_aws.load_handler("Socket")


def authorize_request(query: dict[str, str]) -> dict[str, Any]:
    """API Gateway's REQUEST authorizer event for a $connect."""
    return {
        "type": "REQUEST",
        "methodArn": METHOD_ARN,
        "headers": {"Host": "sockets1.execute-api.us-east-1.amazonaws.com"},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {name: [value] for name, value in query.items()},
        "stageVariables": {},
        "requestContext": {
            "routeKey": "$connect",
            "eventType": "CONNECT",
            "stage": "live",
            "connectionId": "conn-1",
            "requestTimeEpoch": int(NOW.timestamp() * 1000),
            "apiId": "sockets1",
        },
    }


def route_request(
    route: str,
    connection: str = "conn-1",
    *,
    body: str | None = None,
    at: datetime = NOW,
    authorizer: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A route's event: $connect, $disconnect or a frame's (sync, ack), with the context
    the authorizer gave the connection."""
    kind = {"$connect": "CONNECT", "$disconnect": "DISCONNECT"}.get(route, "MESSAGE")
    event: dict[str, Any] = {
        "requestContext": {
            "routeKey": route,
            "eventType": kind,
            "messageDirection": "IN",
            "stage": "live",
            "connectedAt": int(NOW.timestamp() * 1000),
            "requestTimeEpoch": int(at.timestamp() * 1000),
            "requestId": uuid.uuid4().hex,
            "domainName": "sockets1.execute-api.us-east-1.amazonaws.com",
            "connectionId": connection,
            "apiId": "sockets1",
            "authorizer": ADA_CONTEXT if authorizer is None else authorizer,
        },
        "isBase64Encoded": False,
    }
    if body is not None:
        event["body"] = body
    return event


def connection_items(aws: Aws, person: PersonId) -> dict[str, dict[str, Any]]:
    """The person's connection items, by connection id."""
    items = aws.dynamodb.query(
        TableName=aws.table,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
        ExpressionAttributeValues={
            ":pk": {"S": keys.person_pk(person)},
            ":prefix": {"S": keys.CONNECTION_SK_PREFIX},
        },
    )["Items"]
    return {item["sk"]["S"].removeprefix(keys.CONNECTION_SK_PREFIX): item for item in items}


def posted(connection: str) -> list[dict[str, Any]]:
    """The frames moto's Management API received for a connection, in order."""
    backend = apigatewaymanagementapi_backends["123456789012"]["us-east-1"]
    # moto keys a connection by its id as the URL path carries it, percent-encoded.
    found = backend.connections.get(quote(connection, safe=""))
    data = found.data.decode("utf-8") if found else ""
    frames, index = [], 0
    decoder = json.JSONDecoder()
    while index < len(data):
        frame, index = decoder.raw_decode(data, index)
        frames.append(frame)
    return frames


def kept(aws: Aws, fire_id: str, person: PersonId = ADA) -> None:
    """A message Send kept for the person, expiring in a day."""
    InAppStore(aws.dynamodb, aws.table).keep(
        person,
        InAppMessage(
            fire_id=fire_id,
            trigger="product_offer",
            html="<p>Still thinking about the Espresso Cup?</p>",
            display=InAppDisplay(delay=5.0),
            expires_at=NOW + timedelta(days=1),
        ),
    )


# ---- the $connect authorizer ---------------------------------------------------------------


def test_a_good_write_key_is_allowed_with_the_identity_in_its_context(socket: Invoke) -> None:
    """The stack's write key and a userId and anonymousId: Allow on the method ARN, the
    person as principal, both ids in the context for the later routes."""
    # given
    event = authorize_request({"writeKey": WRITE_KEY, "userId": "ada", "anonymousId": "anon-7"})

    # when
    policy = socket(event)

    # then
    assert policy == {
        "principalId": "u:ada",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": METHOD_ARN}
            ],
        },
        "context": {"userId": "ada", "anonymousId": "anon-7"},
    }


@pytest.mark.parametrize(
    "query",
    [{"writeKey": "not-the-key", "userId": "ada"}, {"userId": "ada"}],
    ids=["unknown key", "no key"],
)
def test_a_bad_write_key_raises_unauthorized(socket: Invoke, query: dict[str, str]) -> None:
    """An unknown or missing write key raises exactly "Unauthorized", the one failure API
    Gateway answers 401."""
    # given
    event = authorize_request(query)

    # when
    with pytest.raises(Exception, match=r"^Unauthorized$") as refused:
        socket(event)

    # then
    assert type(refused.value) is Exception


def test_a_page_with_no_identity_is_denied(socket: Invoke) -> None:
    """A good key but no userId or anonymousId: a Deny policy (403), no context."""
    # given
    event = authorize_request({"writeKey": WRITE_KEY})

    # when
    policy = socket(event)

    # then
    (statement,) = policy["policyDocument"]["Statement"]
    assert (statement["Effect"], statement["Resource"]) == ("Deny", METHOD_ARN)
    assert policy["context"] == {}


# ---- $connect and $disconnect --------------------------------------------------------------


def test_connect_records_the_page_for_two_hours(socket: Invoke, socket_aws: Aws) -> None:
    """$connect keeps a connection item under the person, expiring two hours after API
    Gateway's request time."""
    # given
    event = route_request("$connect", "conn-1")

    # when
    response = socket(event)

    # then
    assert response == {"statusCode": 200, "body": "ok"}
    (item,) = connection_items(socket_aws, ADA).values()
    assert item["kind"] == {"S": keys.CONNECTION_KIND}
    assert item["expires_at"] == {"N": str(int((NOW + timedelta(hours=2)).timestamp()))}
    assert list(connection_items(socket_aws, ADA)) == ["conn-1"]


def test_an_anonymous_page_is_recorded_under_the_visitor(socket: Invoke, socket_aws: Aws) -> None:
    """A page that connected with only an anonymousId is kept under the visitor."""
    # given
    anonymous = {"principalId": "a:anon-7", "userId": "", "anonymousId": "anon-7"}

    # when
    socket(route_request("$connect", "conn-1", authorizer=anonymous))

    # then
    assert list(connection_items(socket_aws, VISITOR)) == ["conn-1"]
    assert connection_items(socket_aws, ADA) == {}


def test_disconnect_forgets_the_page(socket: Invoke, socket_aws: Aws) -> None:
    """$disconnect deletes the connection item; the person's other page stays."""
    # given
    socket(route_request("$connect", "conn-1"))
    socket(route_request("$connect", "conn-2"))

    # when
    response = socket(route_request("$disconnect", "conn-1"))

    # then
    assert response["statusCode"] == 200
    assert list(connection_items(socket_aws, ADA)) == ["conn-2"]


def test_disconnecting_a_page_never_recorded_is_fine(socket: Invoke) -> None:
    """A $disconnect for a connection never recorded answers 200."""
    # given: no page recorded

    # when
    response = socket(route_request("$disconnect", "conn-unknown"))

    # then
    assert response == {"statusCode": 200, "body": "ok"}


# ---- sync and ack --------------------------------------------------------------------------


def test_sync_posts_the_messages_waiting_for_the_page(socket: Invoke, socket_aws: Aws) -> None:
    """A page's sync gets each message kept for the user or the visitor they were, posted
    through the Management API."""
    # given
    kept(socket_aws, "fire-user")
    kept(socket_aws, "fire-visitor", VISITOR)
    socket(route_request("$connect", "conn-1"))

    # when
    response = socket(route_request("sync", "conn-1", body='{"action":"sync"}'))

    # then
    assert response == {"statusCode": 200, "body": "ok"}
    frames = posted("conn-1")
    assert sorted(frame["fireId"] for frame in frames) == ["fire-user", "fire-visitor"]
    assert {frame["type"] for frame in frames} == {"message"}


def test_an_ack_wins_the_message_and_the_other_page_hears_drop(
    socket: Invoke, socket_aws: Aws
) -> None:
    """The first page to ack hears show, the person's other open page hears drop, and the
    message is no longer kept."""
    # given
    kept(socket_aws, "fire-1")
    socket(route_request("$connect", "conn-1"))
    socket(route_request("$connect", "conn-2"))

    # when
    response = socket(route_request("ack", "conn-1", body='{"action":"ack","fireId":"fire-1"}'))

    # then
    assert response["statusCode"] == 200
    assert posted("conn-1") == [{"type": "show", "fireId": "fire-1"}]
    assert posted("conn-2") == [{"type": "drop", "fireId": "fire-1"}]
    assert InAppStore(socket_aws.dynamodb, socket_aws.table).pending([ADA], NOW) == []


@pytest.mark.parametrize(
    "body",
    [
        '{"action":"ack"}',
        '{"action":"ack","fireId":""}',
        '{"action":"ack","fireId":42}',
        '{"action":"ack","fireId":"' + "f" * 201 + '"}',
        "ack fire-1",
        None,
    ],
    ids=["missing", "empty", "a number", "too long", "not JSON", "no body"],
)
def test_an_ack_without_a_usable_fire_id_is_400(socket: Invoke, body: str | None) -> None:
    """An ack frame with no fireId, or one that cannot be a fire id, is answered 400 and
    posts nothing."""
    # given
    event = route_request("ack", "conn-1", body=body)

    # when
    response = socket(event)

    # then
    assert response == {"statusCode": 400, "body": "ack needs a fireId"}
    assert posted("conn-1") == []


def test_a_route_the_function_does_not_serve_is_400(socket: Invoke) -> None:
    """A route key other than the four (a $default added in the console) is answered 400."""
    # given
    event = route_request("$default", "conn-1", body='{"action":"hello"}')

    # when
    response = socket(event)

    # then
    assert response == {"statusCode": 400, "body": "no route '$default'"}
