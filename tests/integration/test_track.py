"""The Track function over moto: open pixel, click redirect, unsubscribe page and one-click."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import boto3
import pytest
from nudge import bootstrap
from nudge.adapters.store import EventStore
from nudge.domain.person import PersonId
from nudge.domain.tokens import sign_token
from nudge.service.ports import Unavailable

from tests.integration._harness import (
    NOW,
    TRACKING_SECRET,
    Aws,
    Invoke,
    Stream,
    json_body,
    link_request,
)

USER = "user-42"
EMAIL = "Ada.Lovelace@Example.com"
TARGET = "https://acme.example/cart?id=42&utm_source=nudge"
ONE_CLICK = "List-Unsubscribe=One-Click"
FORM_HEADERS = {"content-type": "application/x-www-form-urlencoded"}


def _token(kind: str, person: str = f"u:{USER}", **extra: str) -> str:
    claims = {"k": kind, "f": "fire-1", "p": person, "t": "abandoned_cart", **extra}
    if kind == "c":
        claims.setdefault("url", TARGET)
    if kind == "u":
        claims.setdefault("e", EMAIL)
    return sign_token(claims, TRACKING_SECRET.encode())


def _tampered(token: str) -> str:
    middle = len(token) // 2
    return token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]


def _events(user_id: str = USER) -> list[dict[str, Any]]:
    return bootstrap.event_store().read_person(user_id).events


def _one_click(token: str, **options: Any) -> dict[str, Any]:
    return link_request("POST", f"/u/{token}", body=ONE_CLICK, headers=FORM_HEADERS, **options)


def _suppressed(address: str) -> bool:
    return bootstrap.suppression_store().is_suppressed("email", address)


# ---- open -------------------------------------------------------------------------------


def test_open_answers_a_transparent_one_pixel_gif_never_cached(track: Invoke):
    """GET /o/{token} answers a 1x1 GIF, as image/gif, with Cache-Control: no-store."""
    # given
    event = link_request("GET", f"/o/{_token('o')}")
    # when
    response = track(event)
    # then
    body = base64.b64decode(response["body"])
    assert response["statusCode"] == 200
    assert response["isBase64Encoded"] is True
    assert response["headers"]["Content-Type"] == "image/gif"
    assert response["headers"]["Cache-Control"] == "no-store"
    assert body.startswith(b"GIF89a\x01\x00\x01\x00")


def test_open_records_an_email_opened_event_for_the_person(track: Invoke):
    """An open is stored as a Segment track event 'Email Opened' naming the fire and trigger."""
    # given
    event = link_request("GET", f"/o/{_token('o')}", at=NOW)
    # when
    track(event)
    # then
    (stored,) = _events()
    assert stored["type"] == "track"
    assert stored["event"] == "Email Opened"
    assert stored["userId"] == USER
    assert stored["timestamp"] == "2026-11-28T10:00:00.000Z"
    assert stored["properties"] == {
        "channel": "email",
        "fireId": "fire-1",
        "trigger": "abandoned_cart",
    }


def test_an_open_from_a_pixel_with_its_send_time_records_when_it_was_sent(track: Invoke):
    """The pixel's signed send time becomes the event's sentAt: the profile reads it to tell
    a proxy's prefetch on arrival from the person opening the message."""
    # given
    sent = int((NOW - timedelta(minutes=3)).timestamp())
    event = link_request("GET", f"/o/{_token('o', s=str(sent))}", at=NOW)
    # when
    track(event)
    # then
    (stored,) = _events()
    assert stored["properties"]["sentAt"] == "2026-11-28T09:57:00.000Z"


def test_an_open_the_table_refuses_is_queued_then_stored_from_the_queue(
    aws: Aws, track: Invoke, monkeypatch: pytest.MonkeyPatch
):
    """The pixel is served while DynamoDB refuses writes; the open waits on TrackRetryQueue,
    and Track, given the queue's batch, stores it once."""

    # given
    def refuse(*_: Any, **__: Any) -> int:
        raise Unavailable("writing events: ProvisionedThroughputExceededException")

    with monkeypatch.context() as table_down:
        table_down.setattr(EventStore, "put_events", refuse)
        served = track(link_request("GET", f"/o/{_token('o')}", at=NOW))
    url = aws.environment("Track")["NUDGE_TRACK_RETRY_QUEUE_URL"]
    (queued,) = aws.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert (served["statusCode"], _events()) == (200, [])
    # when
    answer = track({"Records": [_sqs_record(queued)]})
    # then
    assert answer == {"batchItemFailures": []}
    (stored,) = _events()
    assert (stored["event"], stored["timestamp"]) == ("Email Opened", "2026-11-28T10:00:00.000Z")


def _sqs_record(message: Mapping[str, Any]) -> dict[str, Any]:
    """A received message as Lambda's SQS event source hands it to the function."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "0"},
        "messageAttributes": {},
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:TrackRetryQueue",
        "awsRegion": "us-east-1",
    }


def test_repeated_open_is_stored_once(aws: Aws, track: Invoke):
    """The same pixel loaded twice (a client re-rendering the email) is one stored event."""
    # given
    token = _token("o")
    track(link_request("GET", f"/o/{token}", at=NOW))
    # when
    track(link_request("GET", f"/o/{token}", at=NOW + timedelta(minutes=5)))
    # then
    assert len(aws.event_items()) == 1


def test_open_by_an_anonymous_person_is_stored_under_their_anonymous_id(track: Invoke):
    """A token naming a:<id> stores the event with that anonymousId and no userId."""
    # given
    event = link_request("GET", f"/o/{_token('o', person='a:anon-7f3a')}")
    # when
    track(event)
    # then
    (stored,) = _events("anon-7f3a")
    assert stored["anonymousId"] == "anon-7f3a"
    assert "userId" not in stored


def test_opens_reach_the_profile_like_any_other_event(track: Invoke, stream: Stream):
    """The stored open is an INSERT the evaluator folds into the person's event counts."""
    # given
    track(link_request("GET", f"/o/{_token('o')}"))
    # when
    stream.drain()
    # then
    person = PersonId.user(USER)
    profile = bootstrap.event_store().load_profiles([person])[person]
    assert profile.event_counts == {"Email Opened": 1}


# ---- click ------------------------------------------------------------------------------


def test_click_redirects_to_the_signed_url(track: Invoke):
    """GET /c/{token} answers 302 with the URL the token signed as Location."""
    # given
    event = link_request("GET", f"/c/{_token('c')}")
    # when
    response = track(event)
    # then
    assert response["statusCode"] == 302
    assert response["headers"]["Location"] == TARGET


def test_click_records_an_email_link_clicked_event_with_its_url(track: Invoke):
    """A click is stored as 'Email Link Clicked' with the target in properties.url."""
    # given
    event = link_request("GET", f"/c/{_token('c')}")
    # when
    track(event)
    # then
    (stored,) = _events()
    assert stored["event"] == "Email Link Clicked"
    assert stored["properties"]["url"] == TARGET


def test_click_on_a_signed_non_web_url_is_refused(aws: Aws, track: Invoke):
    """Even a validly signed token cannot redirect to anything but an http(s) URL."""
    # given
    event = link_request("GET", f"/c/{_token('c', url='javascript:alert(1)')}")
    # when
    response = track(event)
    # then
    assert response["statusCode"] == 400
    assert "Location" not in response["headers"]
    assert aws.item_count() == 0


def test_token_for_another_link_kind_is_refused(aws: Aws, track: Invoke):
    """An open token presented as a click link neither redirects nor records anything."""
    # given
    event = link_request("GET", f"/c/{_token('o')}")
    # when
    response = track(event)
    # then
    assert response["statusCode"] == 400
    assert json_body(response)["code"] == "invalid_token"
    assert aws.item_count() == 0


# ---- unsubscribe ------------------------------------------------------------------------


def test_unsubscribe_page_shows_a_form_that_posts_back(track: Invoke):
    """GET /u/{token} answers an HTML page whose form POSTs the one-click body to itself."""
    # given
    event = link_request("GET", f"/u/{_token('u')}")
    # when
    response = track(event)
    # then
    page = response["body"]
    assert response["statusCode"] == 200
    assert response["headers"]["Content-Type"] == "text/html; charset=utf-8"
    assert '<form method="post" action="">' in page
    assert 'name="List-Unsubscribe" value="One-Click"' in page
    assert EMAIL in page


def test_unsubscribe_page_does_not_unsubscribe(aws: Aws, track: Invoke):
    """Loading the page (as a link scanner would) writes no suppression and no event."""
    # given
    event = link_request("GET", f"/u/{_token('u')}")
    # when
    track(event)
    # then
    assert aws.item_count() == 0
    assert not _suppressed(EMAIL)


def test_one_click_post_suppresses_the_address(track: Invoke):
    """POST /u/{token} with List-Unsubscribe=One-Click suppresses the token's address."""
    # given
    event = _one_click(_token("u"))
    # when
    response = track(event)
    # then
    assert response["statusCode"] == 200
    assert _suppressed(EMAIL)


def test_suppression_ignores_the_address_case(track: Invoke):
    """The address is suppressed whatever its case: the key is the lower-cased address."""
    # given
    event = _one_click(_token("u"))
    # when
    track(event)
    # then
    assert _suppressed(EMAIL.upper())
    assert _suppressed(EMAIL.lower())


def test_suppression_item_has_its_documented_shape(aws: Aws, track: Invoke):
    """The suppression is pk S#email:<address lower-cased>, sk SUPPRESS, with reason and time."""
    # given
    event = _one_click(_token("u"), at=NOW)
    # when
    track(event)
    # then
    item = aws.dynamodb.get_item(
        TableName=aws.table, Key={"pk": {"S": f"S#email:{EMAIL.lower()}"}, "sk": {"S": "SUPPRESS"}}
    )["Item"]
    assert item["kind"] == {"S": "suppression"}
    assert item["reason"] == {"S": "unsubscribe"}
    assert item["at"] == {"S": "2026-11-28T10:00:00.000Z"}


def test_one_click_post_records_an_unsubscribed_event(track: Invoke):
    """An unsubscribe is stored as an 'Unsubscribed' track event for the person."""
    # given
    event = _one_click(_token("u"))
    # when
    track(event)
    # then
    assert [body["event"] for body in _events()] == ["Unsubscribed"]


def test_repeated_unsubscribe_keeps_the_first_suppression_time(aws: Aws, track: Invoke):
    """Unsubscribing twice leaves one suppression, dated by the first request."""
    # given
    token = _token("u")
    track(_one_click(token, at=NOW))
    # when
    response = track(_one_click(token, at=NOW + timedelta(days=1)))
    # then
    item = aws.dynamodb.get_item(
        TableName=aws.table, Key={"pk": {"S": f"S#email:{EMAIL.lower()}"}, "sk": {"S": "SUPPRESS"}}
    )["Item"]
    assert response["statusCode"] == 200
    assert item["at"] == {"S": "2026-11-28T10:00:00.000Z"}


# ---- tampered and malformed tokens ------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "prefix", "kind"),
    [("GET", "o", "o"), ("GET", "c", "c"), ("POST", "u", "u")],
    ids=["open", "click", "one-click"],
)
@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(_tampered, id="tampered"),
        pytest.param(lambda token: token[:-4], id="truncated"),
        pytest.param(lambda token: "not-a-token", id="malformed"),
    ],
)
def test_bad_token_is_refused_with_json_and_nothing_stored(
    aws: Aws, track: Invoke, method: str, prefix: str, kind: str, spoil: Any
):
    """A bad token on /o, /c or POST /u gets 400 invalid_token (field token) and stores nothing."""
    # given
    event = link_request(method, f"/{prefix}/{spoil(_token(kind))}", body=ONE_CLICK)
    # when
    response = track(event)
    # then
    body = json_body(response)
    assert response["statusCode"] == 400
    assert response["headers"]["Content-Type"] == "application/json"
    assert body["code"] == "invalid_token"
    assert body["field"] == "token"
    assert body["message"]
    assert aws.item_count() == 0


def test_bad_token_on_the_unsubscribe_page_gets_an_html_400(aws: Aws, track: Invoke):
    """A tampered token on GET /u gets a 400 HTML page, not JSON, and stores nothing."""
    # given
    event = link_request("GET", f"/u/{_tampered(_token('u'))}")
    # when
    response = track(event)
    # then
    assert response["statusCode"] == 400
    assert response["headers"]["Content-Type"] == "text/html; charset=utf-8"
    assert "<h1>This link does not work</h1>" in response["body"]
    assert aws.item_count() == 0


# ---- the secret, read from SSM ----------------------------------------------------------

NEW_SECRET = "a-new-tracking-secret-4f1c"


def _store_tracking_secret(aws: Aws, value: str) -> None:
    name = aws.template.parameters["TrackingSecretParameter"]
    boto3.client("ssm").put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=True)


def test_a_link_signed_before_the_rotation_still_redirects(aws: Aws):
    """With "new,old" in the SSM parameter, a click link sent with the old secret still
    verifies and redirects."""
    # given
    _store_tracking_secret(aws, f"{NEW_SECRET},{TRACKING_SECRET}")
    track = aws.load_handler("Track")
    # when
    response = track(link_request("GET", f"/c/{_token('c')}"))
    # then
    assert response["statusCode"] == 302
    assert response["headers"]["Location"] == TARGET


def test_a_link_signed_with_a_dropped_secret_is_refused(aws: Aws):
    """Once the parameter holds the new secret alone, an old link is answered 400."""
    # given
    _store_tracking_secret(aws, NEW_SECRET)
    track = aws.load_handler("Track")
    # when
    response = track(link_request("GET", f"/c/{_token('c')}"))
    # then
    assert response["statusCode"] == 400
