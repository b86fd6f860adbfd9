"""The beacon API over real HTTP: every route, both content types, gzip, CORS, retries, docs."""

from __future__ import annotations

import gzip
import json
import uuid
from typing import Any

import pytest

from tests.e2e.conftest import StackClient

pytestmark = pytest.mark.e2e


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def _message(kind: str, user_id: str) -> dict[str, Any]:
    """A minimal valid message of one type, for one user, with its own messageId."""
    extra: dict[str, dict[str, Any]] = {
        "track": {"event": "Product Added", "properties": {"sku": "42"}},
        "identify": {"traits": {"plan": "pro"}},
        "page": {"name": "Pricing"},
        "screen": {"name": "Home"},
        "group": {"groupId": "acme"},
        "alias": {"previousId": _id("old")},
    }
    return {"userId": user_id, "messageId": _id("msg"), **extra[kind]}


def _ids(events: list[dict[str, Any]]) -> list[str]:
    return [str(event["messageId"]) for event in events]


SINGLE_ROUTES = [
    ("/v1/track", "track"),
    ("/v1/t", "track"),
    ("/v1/identify", "identify"),
    ("/v1/i", "identify"),
    ("/v1/page", "page"),
    ("/v1/p", "page"),
    ("/v1/screen", "screen"),
    ("/v1/s", "screen"),
    ("/v1/group", "group"),
    ("/v1/g", "group"),
    ("/v1/alias", "alias"),
    ("/v1/a", "alias"),
]


@pytest.mark.parametrize(("path", "kind"), SINGLE_ROUTES)
def test_single_message_route_stores_its_message(stack: StackClient, path: str, kind: str):
    """Each single-message route stores the message it receives, typed by the route."""
    # given
    user_id = _id("route")
    message = _message(kind, user_id)

    # when
    response = stack.post(path, message)

    # then
    assert response.status_code == 200, response.text
    assert response.json() == {"success": True}
    (stored,) = stack.events(user_id)
    assert stored["messageId"] == message["messageId"]
    assert stored["type"] == kind


@pytest.mark.parametrize("path", ["/v1/batch", "/v1/b", "/v1/import"])
def test_batch_route_stores_every_message(stack: StackClient, path: str):
    """The batch routes store every message of the batch, each with its own type."""
    # given
    user_id = _id("batch")
    messages = [{**_message(kind, user_id), "type": kind} for kind in ("track", "identify", "page")]

    # when
    response = stack.post(path, {"batch": messages})

    # then
    assert response.status_code == 200, response.text
    stored = stack.events(user_id)
    assert sorted(_ids(stored)) == sorted(message["messageId"] for message in messages)
    assert sorted(event["type"] for event in stored) == ["identify", "page", "track"]


def test_client_metrics_route_answers_200_and_stores_nothing(stack: StackClient):
    """/v1/m is accepted so analytics.js stops retrying, and nothing is stored."""
    # given
    user_id = _id("metrics")

    # when
    response = stack.post("/v1/m", {"userId": user_id, "series": [{"type": "Counter"}]})

    # then
    assert response.status_code == 200, response.text
    assert stack.user(user_id) is None


@pytest.mark.parametrize("content_type", ["text/plain", "application/json"])
def test_body_parses_whatever_the_content_type(stack: StackClient, content_type: str):
    """A JSON body is parsed both as text/plain (sendBeacon) and as application/json."""
    # given
    user_id = _id("ctype")
    message = _message("track", user_id)

    # when
    response = stack.post("/v1/t", json.dumps(message), {"Content-Type": content_type})

    # then
    assert response.status_code == 200, response.text
    assert _ids(stack.events(user_id)) == [message["messageId"]]


def test_gzip_body_is_accepted(stack: StackClient):
    """A gzip body sent with Content-Encoding: gzip is inflated and stored."""
    # given
    user_id = _id("gzip")
    message = _message("track", user_id)
    body = gzip.compress(json.dumps({"batch": [{**message, "type": "track"}]}).encode())

    # when
    response = stack.post("/v1/batch", body, {"Content-Encoding": "gzip"})

    # then
    assert response.status_code == 200, response.text
    assert _ids(stack.events(user_id)) == [message["messageId"]]


def test_cors_preflight_is_answered_with_the_allowed_headers(stack: StackClient):
    """A browser's preflight gets 204 and the headers a beacon with Basic auth needs."""
    # given
    headers = {
        "Origin": "https://shop.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }

    # when
    response = stack.session.options(stack.url("/v1/track"), headers=headers, timeout=10)

    # then
    assert response.status_code == 204
    allowed = {
        name.strip().lower() for name in response.headers["Access-Control-Allow-Headers"].split(",")
    }
    assert {"authorization", "content-type", "x-retry-count"} <= allowed
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    assert response.headers["Access-Control-Allow-Origin"] in ("*", "https://shop.example")


def test_cross_origin_post_carries_the_allow_origin_header(stack: StackClient):
    """A beacon posted from another origin is answered with Access-Control-Allow-Origin."""
    # given
    message = _message("track", _id("cors"))

    # when
    response = stack.post("/v1/t", message, {"Origin": "https://shop.example"})

    # then
    assert response.status_code == 200, response.text
    assert response.headers["Access-Control-Allow-Origin"] in ("*", "https://shop.example")


def test_retried_message_is_stored_once(stack: StackClient):
    """A message retried with the same messageId is stored once, not twice."""
    # given
    user_id = _id("retry")
    message = _message("track", user_id)
    assert stack.post("/v1/track", message).status_code == 200

    # when
    retry = stack.post("/v1/track", message, {"X-Retry-Count": "1"})

    # then
    assert retry.status_code == 200, retry.text
    assert _ids(stack.events(user_id)) == [message["messageId"]]


def test_retried_message_is_counted_once_in_the_profile(stack: StackClient):
    """A retry of an already folded message leaves the profile's counts unchanged."""
    # given
    user_id = _id("retry")
    message = _message("track", user_id)
    assert stack.post("/v1/track", message).status_code == 200
    stack.drain()

    # when
    assert stack.post("/v1/track", message, {"X-Retry-Count": "1"}).status_code == 200

    # then
    view = stack.user(user_id)
    assert view is not None
    assert view["profile"]["events"] == 1
    assert view["profile"]["eventCounts"] == {"Product Added": 1}


def test_identify_links_earlier_anonymous_events_to_the_user(stack: StackClient):
    """After identify links an anonymousId to a userId, the user shows the anonymous events."""
    # given
    anonymous_id, user_id = _id("anon"), _id("user")
    before = {"anonymousId": anonymous_id, "event": "Viewed Pricing", "messageId": _id("msg")}
    assert stack.post("/v1/track", before).status_code == 200
    stack.drain()

    # when
    identify = {"anonymousId": anonymous_id, "userId": user_id, "messageId": _id("msg")}
    response = stack.post("/v1/identify", identify)

    # then
    assert response.status_code == 200, response.text
    assert set(_ids(stack.events(user_id))) == {before["messageId"], identify["messageId"]}


def test_openapi_document_is_openapi_3_1(stack: StackClient):
    """/openapi.json is an OpenAPI 3.1 document that lists the beacon routes."""
    # when
    response = stack.get("/openapi.json")

    # then
    assert response.status_code == 200
    document = response.json()
    assert str(document["openapi"]).startswith("3.1")
    assert document["info"]["title"]
    assert {"/v1/track", "/v1/batch", "/v1/import"} <= set(document["paths"])
    assert "post" in document["paths"]["/v1/track"]


def test_docs_page_references_local_swagger_assets(stack: StackClient):
    """/docs is an HTML page whose Swagger UI assets are served locally."""
    # when
    page = stack.get("/docs")

    # then
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    for asset in ("/docs/swagger-ui.css", "/docs/swagger-ui-bundle.min.js"):
        assert asset in page.text
        served = stack.get(asset)
        assert served.status_code == 200, asset
        assert len(served.content) > 1000


def test_unknown_route_is_a_404_json(stack: StackClient):
    """A path no route serves answers 404 with a JSON body."""
    # when
    response = stack.post("/v1/nonexistent", {"userId": "u", "event": "e"})

    # then
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("application/json")
    assert isinstance(response.json(), dict)
