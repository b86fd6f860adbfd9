"""The files in events/ (what `sam local invoke -e` users start from) do what they promise."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import boto3
import pytest
from moto.apigatewaymanagementapi.models import apigatewaymanagementapi_backends
from moto.events.models import EventPattern
from moto.ses.models import ses_backends
from nudge import bootstrap
from nudge.adapters import keys
from nudge.adapters.in_app import InAppStore
from nudge.adapters.receipts import SendReceipts
from nudge.adapters.suppression import SuppressionStore
from nudge.domain.in_app import InAppMessage, SocketIdentity
from nudge.domain.messages import InAppDisplay
from nudge.domain.person import PersonId
from nudge.domain.profile import Profile

from local.template import LocalNames, Template, load_template
from tests.conftest import REPO
from tests.integration._harness import (
    TRACKING_SECRET,
    WRITE_KEY,
    Aws,
    Invoke,
    Stream,
    beacon_messages,
    json_body,
)

SAMPLES = {
    path.name: json.loads(path.read_text()) for path in sorted((REPO / "events").glob("*.json"))
}


# What each email-link route answers, and the event it records (None: records nothing).
LINK_ROUTES: dict[str, tuple[int, str | None, str | None]] = {
    "GET /o/{token}": (200, "image/gif", "Email Opened"),
    "GET /c/{token}": (302, None, "Email Link Clicked"),
    "GET /u/{token}": (200, "text/html; charset=utf-8", None),
    "POST /u/{token}": (200, "text/html; charset=utf-8", "Unsubscribed"),
}
SAMPLE_USER = "user-42"


def _kind(event: dict[str, Any]) -> str:
    if event.get("type") == "REQUEST" and "methodArn" in event:
        return "socket-authorizer"
    if event.get("requestContext", {}).get("eventType") in ("CONNECT", "MESSAGE", "DISCONNECT"):
        return "socket"
    if "Records" in event:
        sources = {record.get("eventSource") for record in event["Records"]}
        return {"aws:sqs": "sqs", "aws:dynamodb": "stream"}.get(str(sources.pop()), "unknown")
    if event.get("source") == "aws.ses":
        return "receipt" if event.get("detail", {}).get("eventType") == "Send" else "feedback"
    if event.get("source") == "nudge.sweep":
        return "sweep"
    if event.get("source") == "aws.events" and event.get("detail-type") == "Scheduled Event":
        return "train"
    if event.get("routeKey") in LINK_ROUTES:
        return "link"
    if str(event.get("routeKey", "")).startswith("GET /v1/reports/"):
        return "report"
    method = event.get("requestContext", {}).get("http", {}).get("method")
    return {"POST": "beacon", "GET": "get"}.get(method, "unknown")


def _samples(kind: str) -> list[str]:
    return [name for name, event in SAMPLES.items() if _kind(event) == kind]


def _route(name: str) -> str:
    return str(SAMPLES[name]["rawPath"]).rsplit("/", 1)[-1]


def test_every_sample_is_a_kind_the_tests_cover():
    """Each file in events/ is a beacon, a GET, an email link, a report request, a stream, a
    send-queue batch, the hourly sweep, or a WebSocket route or its authorizer."""
    # given
    kinds = {name: _kind(event) for name, event in SAMPLES.items()}
    # when
    uncovered = [name for name, kind in kinds.items() if kind == "unknown"]
    # then
    assert SAMPLES
    assert uncovered == []


@pytest.mark.parametrize("name", _samples("beacon"))
def test_beacon_sample_is_accepted(name: str, ingest: Invoke):
    """A beacon sample gets 200 with Segment's {"success": true}."""
    # given
    event = SAMPLES[name]
    # when
    response = ingest(event)
    # then
    assert response["statusCode"] == 200
    assert response["headers"]["Content-Type"] == "application/json"
    assert json_body(response) == {"success": True}


@pytest.mark.parametrize("name", _samples("beacon"))
def test_beacon_sample_stores_every_message(name: str, ingest: Invoke):
    """Every message of a beacon sample can be read back by its userId or anonymousId."""
    # given
    messages = beacon_messages(SAMPLES[name])
    people = {message.get("userId") or message["anonymousId"] for message in messages}
    # when
    ingest(SAMPLES[name])
    # then
    store = bootstrap.event_store()
    stored = [body for person in sorted(people) for body in store.read_person(person).events]
    assert sorted(body["messageId"] for body in stored) == sorted(m["messageId"] for m in messages)
    assert {body["type"] for body in stored} == {
        message.get("type") or _route(name) for message in messages
    }


@pytest.mark.parametrize("name", _samples("get"))
def test_get_sample_returns_the_openapi_document(name: str, aws: Aws, ingest: Invoke):
    """GET /openapi.json returns an OpenAPI 3.1 document covering every route in the template."""
    # given
    template_routes = {
        path for method, path in aws.template.functions["Ingest"].http_routes if method == "POST"
    }
    # when
    response = ingest(SAMPLES[name])
    # then
    document = json_body(response)
    assert response["statusCode"] == 200
    assert document["openapi"] == "3.1.0"
    assert template_routes <= set(document["paths"])


@pytest.mark.parametrize("name", _samples("report"))
def test_report_sample_answers_with_the_triggers_report(name: str, aws: Aws):
    """A reports sample, with the local stack's admin key, gets the trigger's report."""
    # given: the admin key where the template says, as an operator creates it before deploying
    parameter = aws.environment("Reports")["NUDGE_ADMIN_KEY_PARAMETER"]
    boto3.client("ssm").put_parameter(
        Name=parameter, Value="dev-admin-key", Type="SecureString", Overwrite=True
    )
    reports = aws.load_handler("Reports")
    # when
    response = reports(SAMPLES[name])
    # then
    assert response["statusCode"] == 200
    assert json_body(response)["trigger"] == SAMPLES[name]["pathParameters"]["id"]


@pytest.mark.parametrize("name", _samples("link"))
def test_link_sample_answers_as_its_route_does(name: str, track: Invoke):
    """An email-link sample, signed with the local stack's secret, gets its route's answer."""
    # given
    event = SAMPLES[name]
    status, content_type, _ = LINK_ROUTES[event["routeKey"]]
    # when
    response = track(event)
    # then
    assert response["statusCode"] == status
    assert response["headers"].get("Content-Type") == content_type


@pytest.mark.parametrize("name", _samples("link"))
def test_link_sample_records_its_event(name: str, track: Invoke):
    """An email-link sample stores the event its route records, and the confirm page stores none."""
    # given
    event = SAMPLES[name]
    _, _, recorded = LINK_ROUTES[event["routeKey"]]
    # when
    track(event)
    # then
    stored = bootstrap.event_store().read_person(SAMPLE_USER).events
    assert [body["event"] for body in stored] == ([recorded] if recorded else [])


@pytest.mark.parametrize("name", _samples("stream"))
def test_stream_sample_is_folded_without_failures(name: str, aws: Aws, evaluate: Invoke):
    """A stream sample passes the template's filter, reports no failures and builds its profiles."""
    # given
    records = SAMPLES[name]["Records"]
    per_person = Counter(
        keys.person_from_pk(record["dynamodb"]["NewImage"]["pk"]["S"]) for record in records
    )
    # when
    responses = Stream.of(aws, evaluate).deliver(records)
    # then
    assert responses == [{"batchItemFailures": []}]
    folded = bootstrap.event_store().load_profiles(per_person)
    assert {person: profile.events for person, profile in folded.items()} == dict(per_person)


@pytest.mark.parametrize("name", _samples("sqs"))
def test_send_queue_sample_is_delivered(name: str, send: Invoke):
    """A send-queue sample's fires each reach their person's email, with no batch failures."""
    # given
    fires = [json.loads(record["body"]) for record in SAMPLES[name]["Records"]]
    people = {fire["person"]: f"{fire['userId']}@example.com" for fire in fires}
    bootstrap.event_store().save_profiles(
        [
            Profile(person=PersonId.parse(person), traits={"email": email})
            for person, email in people.items()
        ]
    )
    # when
    response = send(SAMPLES[name])
    # then
    assert response == {"batchItemFailures": []}
    sent = ses_backends["123456789012"]["us-east-1"].sent_messages
    # moto lists the To header after SES's Destination: the first is the one sent to.
    assert sorted(message.destinations[0] for message in sent) == sorted(
        people[fire["person"]] for fire in fires
    )


@pytest.mark.parametrize("name", _samples("feedback"))
def test_feedback_sample_suppresses_its_recipient(name: str, aws: Aws):
    """An SES bounce or complaint sample suppresses the address it names."""
    # given
    event = SAMPLES[name]
    detail = event["detail"]
    kind = "bounce" if detail["eventType"] == "Bounce" else "complaint"
    address = detail[kind][f"{'bounced' if kind == 'bounce' else 'complained'}Recipients"][0][
        "emailAddress"
    ]
    feedback = aws.load_handler("Feedback")
    # when
    response = feedback(event)
    # then
    assert response == {"suppressed": 1}
    assert SuppressionStore(aws.dynamodb, aws.table).is_suppressed("email", address)


@pytest.mark.parametrize("name", _samples("receipt"))
def test_send_event_sample_leaves_a_receipt_for_its_fire(name: str, aws: Aws):
    """An SES Send event sample records that SES accepted the fire its header names."""
    # given
    event = SAMPLES[name]
    headers = {h["name"]: h["value"] for h in event["detail"]["mail"]["headers"]}
    feedback = aws.load_handler("Feedback")
    # when
    response = feedback(event)
    # then
    assert response == {"receipt": headers["X-Nudge-Fire"]}
    receipt = SendReceipts(aws.dynamodb, aws.table).find(headers["X-Nudge-Fire"])
    assert receipt is not None
    assert receipt.message_id == event["detail"]["mail"]["messageId"]


@pytest.mark.parametrize("name", [*_samples("feedback"), *_samples("receipt")])
def test_ses_event_samples_match_the_feedback_functions_rule(name: str, aws: Aws):
    """Each SES event sample is one the template's EventBridge rule routes to Feedback."""
    # given
    (pattern,) = aws.template.functions["Feedback"].event_rules
    # when
    matched = EventPattern.load(json.dumps(pattern)).matches_event(SAMPLES[name])
    # then
    assert matched


@pytest.mark.parametrize("name", _samples("sweep"))
def test_sweep_sample_is_the_template_schedules_input(name: str, aws: Aws):
    """The sweep sample is what the template's InactivitySweep sends, its time filled in."""
    # given
    declared = json.loads(aws.template.schedules["InactivitySweep"]["Target"]["Input"])
    # when
    sample = SAMPLES[name]
    # then
    assert sample.keys() == declared.keys()
    assert sample["source"] == declared["source"]


@pytest.mark.parametrize("name", _samples("sweep"))
def test_sweep_sample_decides_nothing_on_an_empty_table(name: str, evaluate: Invoke):
    """On an empty table the sweep finds nobody quiet and decides nothing, without error."""
    # given an empty table
    # when
    response = evaluate(SAMPLES[name])
    # then
    assert response == {"decisions": []}


@pytest.mark.parametrize("name", _samples("train"))
def test_train_sample_on_an_empty_table_keeps_every_model(name: str, aws: Aws):
    """No events: nothing to learn from, so each prediction keeps its current model (the
    shipped churn model stays in the bucket as it was)."""
    # given an empty table, and the models bucket as a fresh stack has it
    shipped = aws.s3.get_object(Bucket=aws.models_bucket, Key="models/churn.json")["Body"].read()
    train = aws.load_handler("Train")
    # when
    response = train(SAMPLES[name])
    # then
    assert response == {"models": {"churn": "kept", "purchase": "kept"}}
    kept = aws.s3.get_object(Bucket=aws.models_bucket, Key="models/churn.json")["Body"].read()
    assert kept == shipped


# ---- the WebSocket API (in-app messages) ---------------------------------------------------

# The samples' WebSocket API is on AWS's domain, so moto answers its Management API.
SOCKET_ENDPOINT = "wss://k3x9q2w7ze.execute-api.us-east-1.amazonaws.com"


@pytest.fixture(scope="module")
def socket_template() -> Template:
    return load_template(
        REPO / "template.yaml",
        {"WriteKey": WRITE_KEY, "TrackingSecret": TRACKING_SECRET},
        LocalNames(websocket_endpoint=SOCKET_ENDPOINT),
    )


@pytest.fixture
def socket_aws(aws: Aws, socket_template: Template) -> Iterator[Aws]:
    # The composition root caches these too; the harness's clear does not know of them.
    bootstrap.socket_settings.cache_clear()
    bootstrap.socket_poster.cache_clear()
    yield replace(aws, template=socket_template)
    bootstrap.socket_settings.cache_clear()
    bootstrap.socket_poster.cache_clear()


def _socket_identity(event: dict[str, Any]) -> SocketIdentity:
    context = event["requestContext"]["authorizer"]
    return SocketIdentity(context["userId"] or None, context["anonymousId"] or None)


def _request_time(event: dict[str, Any]) -> datetime:
    return datetime.fromtimestamp(event["requestContext"]["requestTimeEpoch"] / 1000, tz=UTC)


def _fire_id(event: dict[str, Any]) -> str:
    fire_id: str = json.loads(event.get("body") or "{}").get("fireId", "fire-waiting")
    return fire_id


def _given_a_page_and_a_message(aws: Aws, event: dict[str, Any]) -> None:
    """What a route sample acts on: its connection open for its person, and a message
    (the ack's fire, else one) waiting for them."""
    identity, at = _socket_identity(event), _request_time(event)
    store = InAppStore(aws.dynamodb, aws.table)
    store.connect(
        identity.person, event["requestContext"]["connectionId"], at, at + timedelta(hours=2)
    )
    message = InAppMessage(
        fire_id=_fire_id(event),
        trigger="product_offer",
        html="<p>Still thinking about the Espresso Cup?</p>",
        display=InAppDisplay(delay=5.0),
        expires_at=at + timedelta(days=1),
    )
    store.keep(identity.person, message)


def _posted(connection: str) -> list[dict[str, Any]]:
    """The frames moto's Management API received for a connection, in order."""
    backend = apigatewaymanagementapi_backends["123456789012"]["us-east-1"]
    # moto keys a connection by its id as the URL path carries it, percent-encoded.
    found = backend.connections.get(quote(connection, safe=""))
    data = found.data.decode("utf-8") if found else ""
    decoder, frames, index = json.JSONDecoder(), [], 0
    while index < len(data):
        frame, index = decoder.raw_decode(data, index)
        frames.append(frame)
    return frames


@pytest.mark.parametrize("name", _samples("socket-authorizer"))
def test_socket_authorizer_sample_is_allowed_as_its_user(name: str, socket_aws: Aws):
    """The authorizer sample, with the local stack's write key, is allowed on its method
    ARN, with the user and visitor it names in the context."""
    # given
    event = SAMPLES[name]
    socket = socket_aws.load_handler("Socket")
    # when
    policy = socket(event)
    # then
    (statement,) = policy["policyDocument"]["Statement"]
    assert (statement["Effect"], statement["Resource"]) == ("Allow", event["methodArn"])
    query = event["queryStringParameters"]
    assert policy["context"] == {"userId": query["userId"], "anonymousId": query["anonymousId"]}
    assert policy["principalId"] == f"u:{query['userId']}"


@pytest.mark.parametrize("name", _samples("socket"))
def test_socket_route_sample_answers_200(name: str, socket_aws: Aws):
    """Each WebSocket route sample, its page open and a message waiting, is answered 200."""
    # given
    event = SAMPLES[name]
    _given_a_page_and_a_message(socket_aws, event)
    socket = socket_aws.load_handler("Socket")
    # when
    response = socket(event)
    # then
    assert response == {"statusCode": 200, "body": "ok"}


@pytest.mark.parametrize("name", _samples("socket"))
def test_socket_route_sample_does_what_its_route_says(name: str, socket_aws: Aws):
    """$connect records the page, $disconnect forgets it, sync posts the waiting message,
    ack posts show and takes the message."""
    # given
    event = SAMPLES[name]
    context = event["requestContext"]
    route, connection = context["routeKey"], context["connectionId"]
    identity, at = _socket_identity(event), _request_time(event)
    if route != "$connect":
        _given_a_page_and_a_message(socket_aws, event)
    store = InAppStore(socket_aws.dynamodb, socket_aws.table)
    socket = socket_aws.load_handler("Socket")
    # when
    socket(event)
    # then
    pages = store.connections(identity.person, at)
    waiting = [message.fire_id for message in store.pending(identity.persons, at)]
    frames = [(frame["type"], frame["fireId"]) for frame in _posted(connection)]
    expected = {
        "$connect": ([connection], [], []),
        "$disconnect": ([], [_fire_id(event)], []),
        "sync": ([connection], [_fire_id(event)], [("message", _fire_id(event))]),
        "ack": ([connection], [], [("show", _fire_id(event))]),
    }
    assert (pages, waiting, frames) == expected[route]
