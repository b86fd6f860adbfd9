"""Bad input over real HTTP: each is refused with the right status and a JSON error naming
the field, stores nothing, and leaves the service serving the next request."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
import requests

from tests.e2e.conftest import StackClient

pytestmark = pytest.mark.e2e


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _track(user_id: str, **extra: Any) -> dict[str, Any]:
    return {"userId": user_id, "event": "Product Added", "messageId": str(uuid.uuid4()), **extra}


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


@dataclass(frozen=True)
class Request:
    path: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    auth: bool = True


@dataclass(frozen=True)
class Case:
    """A bad request, built for a user id and the stack's current time, and its refusal."""

    build: Callable[[str, datetime], Request]
    status: int
    code: str
    field: str


def _nested(depth: int) -> bytes:
    return b'{"userId":"U","event":"e","properties":{"deep":' + b"[" * depth + b"]" * depth + b"}}"


CASES: dict[str, Case] = {
    "malformed JSON": Case(
        lambda user, now: Request("/v1/track", b'{"userId": "' + user.encode() + b'", "event": '),
        400, "invalid_request", "body",
    ),
    "empty body": Case(lambda user, now: Request("/v1/track", b""), 400, "invalid_request", "body"),
    "JSON array": Case(
        lambda user, now: Request("/v1/track", _json([_track(user)])),
        400, "invalid_request", "body",
    ),
    "JSON string": Case(
        lambda user, now: Request("/v1/track", _json(user)), 400, "invalid_request", "body"
    ),
    "neither userId nor anonymousId": Case(
        lambda user, now: Request("/v1/track", _json({"event": "e", "properties": {"who": user}})),
        400, "invalid_request", "userId",
    ),
    "track without event": Case(
        lambda user, now: Request("/v1/track", _json({"userId": user})),
        400, "invalid_request", "event",
    ),
    "unknown type in a batch": Case(
        lambda user, now: Request(
            "/v1/batch",
            _json({"batch": [{**_track(user), "type": "track"}, {"type": "nope", "userId": user}]}),
        ),
        400, "invalid_request", "batch[1].type",
    ),
    "message over 32 KB": Case(
        lambda user, now: Request(
            "/v1/track", _json(_track(user, properties={"pad": "x" * 33_000}))
        ),
        413, "payload_too_large", "body",
    ),
    "batch over 500 KB": Case(
        lambda user, now: Request(
            "/v1/batch",
            _json({
                "batch": [
                    {**_track(user, properties={"pad": "x" * 26_000}), "type": "track"}
                    for _ in range(20)
                ]
            }),
        ),
        413, "payload_too_large", "body",
    ),
    "batch over 2,500 items": Case(
        lambda user, now: Request(
            "/v1/batch", _json({"batch": [{**_track(user), "type": "track"} for _ in range(2_501)]})
        ),
        413, "payload_too_large", "batch",
    ),
    "non-ISO timestamp": Case(
        lambda user, now: Request("/v1/track", _json(_track(user, timestamp="last tuesday"))),
        400, "invalid_request", "timestamp",
    ),
    "timestamp 400 days ago": Case(
        lambda user, now: Request(
            "/v1/track", _json(_track(user, timestamp=_iso(now - timedelta(days=400))))
        ),
        400, "invalid_request", "timestamp",
    ),
    "timestamp 2 days ahead": Case(
        lambda user, now: Request(
            "/v1/track", _json(_track(user, timestamp=_iso(now + timedelta(days=2))))
        ),
        400, "invalid_request", "timestamp",
    ),
    "wrong write key": Case(
        lambda user, now: Request(
            "/v1/track",
            _json(_track(user)),
            {"Authorization": "Basic " + base64.b64encode(b"not-the-key:").decode()},
        ),
        401, "unauthorized", "Authorization",
    ),
    "wrong write key in the body": Case(
        lambda user, now: Request(
            "/v1/track", _json(_track(user, writeKey="not-the-key")), auth=False
        ),
        401, "unauthorized", "writeKey",
    ),
    "missing write key": Case(
        lambda user, now: Request("/v1/track", _json(_track(user)), auth=False),
        401, "unauthorized", "Authorization",
    ),
    "missing write key on an invalid message": Case(
        lambda user, now: Request("/v1/track", _json({"userId": user}), auth=False),
        401, "unauthorized", "Authorization",
    ),
    "Authorization not Basic": Case(
        lambda user, now: Request(
            "/v1/track", _json(_track(user)), {"Authorization": "Bearer dev-write-key"}
        ),
        401, "unauthorized", "Authorization",
    ),
    "Authorization with bad base64": Case(
        lambda user, now: Request(
            "/v1/track", _json(_track(user)), {"Authorization": "Basic !!not*base64!!"}
        ),
        401, "unauthorized", "Authorization",
    ),
    "gzip header on a plain body": Case(
        lambda user, now: Request(
            "/v1/track", _json(_track(user)), {"Content-Encoding": "gzip"}
        ),
        400, "invalid_request", "body",
    ),
    "nesting 5,000 deep": Case(
        lambda user, now: Request("/v1/track", _nested(5_000).replace(b'"U"', _json(user))),
        400, "invalid_request", "body",
    ),
    "escaped NUL in a property": Case(
        lambda user, now: Request(
            "/v1/track", _json(_track(user, properties={"note": "a\u0000b"}))
        ),
        400, "invalid_request", "properties.note",
    ),
    "raw NUL byte": Case(
        lambda user, now: Request(
            "/v1/track", _json(_track(user, event="ab")).replace(b"ab", b"a\x00b")
        ),
        400, "invalid_request", "body",
    ),
    "lone UTF-16 surrogate": Case(
        lambda user, now: Request(
            "/v1/track", _json(_track(user, event="x")).replace(b'"x"', b'"\\ud800"')
        ),
        400, "invalid_request", "event",
    ),
    "invalid UTF-8": Case(
        lambda user, now: Request(
            "/v1/track", _json(_track(user, event="ab")).replace(b"ab", b"a\xff\xfeb")
        ),
        400, "invalid_request", "body",
    ),
    "one invalid item in a batch": Case(
        lambda user, now: Request(
            "/v1/batch",
            _json({
                "batch": [
                    {**_track(user), "type": "track"},
                    {"type": "track", "userId": user},
                    {**_track(user), "type": "track"},
                ]
            }),
        ),
        400, "invalid_request", "batch[1].event",
    ),
}  # fmt: skip


def _send(stack: StackClient, case: Case, user_id: str) -> requests.Response:
    request = case.build(user_id, stack.now())
    return stack.post(request.path, request.body, request.headers, auth=request.auth)


@pytest.mark.parametrize("name", CASES)
def test_bad_request_is_refused_with_a_json_error(stack: StackClient, name: str):
    """The bad request is refused with its 4xx status and a JSON code, message and field."""
    # given
    case = CASES[name]

    # when
    response = _send(stack, case, f"bad-{uuid.uuid4().hex[:8]}")

    # then
    assert response.status_code == case.status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    error = response.json()
    assert error["code"] == case.code
    assert error["field"] == case.field
    assert isinstance(error["message"], str)
    assert error["message"]


@pytest.mark.parametrize("name", CASES)
def test_bad_request_stores_nothing(stack: StackClient, name: str):
    """Nothing of a refused request is stored for the user it names."""
    # given
    user_id = f"bad-{uuid.uuid4().hex[:8]}"

    # when
    response = _send(stack, CASES[name], user_id)

    # then
    assert 400 <= response.status_code < 500, response.text
    assert stack.user(user_id) is None


@pytest.mark.parametrize("name", CASES)
def test_service_keeps_serving_after_a_bad_request(stack: StackClient, name: str):
    """A good request right after a refused one is accepted and stored."""
    # given
    user_id = f"good-{uuid.uuid4().hex[:8]}"
    _send(stack, CASES[name], user_id)
    good = _track(user_id)

    # when
    response = stack.post("/v1/track", good)

    # then
    assert response.status_code == 200, response.text
    assert [event["messageId"] for event in stack.events(user_id)] == [good["messageId"]]


def test_unicode_and_emoji_round_trip_intact(stack: StackClient):
    """Names and properties in any script, with emoji, are stored exactly as sent."""
    # given
    user_id = "ユーザー-🙂-" + uuid.uuid4().hex[:8]
    properties = {
        "título": "Café crème ☕",
        "emoji": "🚀👩🏽‍💻🇫🇷",
        "cjk": "漢字かなカナ",
        "rtl": "שלום مرحبا",
        "combining": "e\u0301",
        "nested": {"ключ": ["значение", "🎉"]},
    }
    message = _track(user_id, event="Añadido al carrito 🛒", properties=properties)

    # when
    response = stack.post("/v1/track", message)

    # then
    assert response.status_code == 200, response.text
    view = stack.user(user_id)
    assert view is not None
    assert view["userId"] == user_id
    (stored,) = view["events"]
    assert stored["event"] == "Añadido al carrito 🛒"
    assert stored["properties"] == properties
    assert view["profile"]["eventCounts"] == {"Añadido al carrito 🛒": 1}
