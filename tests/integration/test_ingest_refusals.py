"""A bad request is refused whole, with a status, a code and the field at fault; none stored."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest

from tests.integration._harness import NOW, Aws, Invoke, basic_auth, beacon, json_body

CODES = {400: "invalid_request", 401: "unauthorized", 413: "payload_too_large"}


@dataclass(frozen=True)
class Refusal:
    request: Callable[[], dict[str, Any]]
    status: int
    field: str
    says: str  # a fragment of the message a client developer would need to see


def _track(**fields: Any) -> dict[str, Any]:
    return {"userId": "user-1", "event": "Signed Up", **fields}


def _batch_item(index: int) -> dict[str, Any]:
    return {
        "type": "track",
        "userId": f"user-{index}",
        "event": "Item Viewed",
        "messageId": f"m-{index}",
    }


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


REFUSALS: dict[str, Refusal] = {
    "malformed JSON": Refusal(
        lambda: beacon("track", raw='{"userId": "user-1", "event": '), 400, "body", "malformed JSON"
    ),
    "empty body": Refusal(lambda: beacon("track", raw=""), 400, "body", "empty body"),
    "JSON array": Refusal(lambda: beacon("track", [_track()]), 400, "body", "not an array"),
    "JSON string": Refusal(lambda: beacon("track", "Signed Up"), 400, "body", "not a string"),
    "no userId or anonymousId": Refusal(
        lambda: beacon("track", {"event": "Signed Up"}), 400, "userId", "userId or anonymousId"
    ),
    "track without event": Refusal(
        lambda: beacon("track", {"userId": "user-1"}), 400, "event", "required for track"
    ),
    "unknown type in batch": Refusal(
        lambda: beacon(
            "batch", {"batch": [_batch_item(0), {"type": "explode", "userId": "user-1"}]}
        ),
        400,
        "batch[1].type",
        "unknown message type 'explode'",
    ),
    "message over 32 KB": Refusal(
        lambda: beacon("track", _track(properties={"blob": "x" * 33 * 1024})),
        413,
        "body",
        "at most 32768",
    ),
    "batch over 500 KB": Refusal(
        lambda: beacon(
            "batch",
            {
                "batch": [
                    {**_batch_item(index), "properties": {"blob": "x" * 30_000}}
                    for index in range(18)
                ]
            },
        ),
        413,
        "body",
        "at most 512000",
    ),
    "batch over 2,500 items": Refusal(
        lambda: beacon("batch", {"batch": [_batch_item(index) for index in range(2501)]}),
        413,
        "batch",
        "2501 items; at most 2500",
    ),
    "timestamp not ISO 8601": Refusal(
        lambda: beacon("track", _track(timestamp="28/11/2026 10:00")), 400, "timestamp", "ISO 8601"
    ),
    "timestamp too far in the past": Refusal(
        lambda: beacon("track", _track(timestamp=(NOW - timedelta(days=31)).isoformat())),
        400,
        "timestamp",
        "in the past",
    ),
    "timestamp too far in the future": Refusal(
        lambda: beacon("track", _track(timestamp=(NOW + timedelta(hours=2)).isoformat())),
        400,
        "timestamp",
        "in the future",
    ),
    "wrong write key": Refusal(
        lambda: beacon("track", _track(), auth=basic_auth("not-the-key")),
        401,
        "Authorization",
        "not recognised",
    ),
    "wrong write key in body": Refusal(
        lambda: beacon("track", _track(writeKey="not-the-key"), auth=None),
        401,
        "writeKey",
        "not recognised",
    ),
    "missing write key": Refusal(
        lambda: beacon("track", _track(), auth=None), 401, "Authorization", "missing"
    ),
    "Authorization not Basic": Refusal(
        lambda: beacon("track", _track(), auth="Bearer dev-write-key"),
        401,
        "Authorization",
        "Basic",
    ),
    "Authorization not base64": Refusal(
        lambda: beacon("track", _track(), auth="Basic !!not*base64!!"),
        401,
        "Authorization",
        "base64",
    ),
    "gzip header on a plain body": Refusal(
        lambda: beacon("track", _track(), headers={"content-encoding": "gzip"}),
        400,
        "body",
        "not gzip",
    ),
    "depth bomb": Refusal(
        lambda: beacon(
            "track",
            raw='{"userId":"user-1","event":"e","properties":{"x":' + _nested(15_000) + "}}",
        ),
        400,
        "body",
        "nested deeper",
    ),
    "nested past the depth limit": Refusal(
        lambda: beacon(
            "track", raw='{"userId":"user-1","event":"e","properties":{"x":' + _nested(30) + "}}"
        ),
        400,
        "properties.x" + "[0]" * 22,  # root, properties and x are the first 3 levels
        "nested deeper than 24 levels",
    ),
    "NUL byte": Refusal(lambda: beacon("track", _track(event="Signed\x00Up")), 400, "event", "NUL"),
    "unpaired surrogate": Refusal(
        lambda: beacon("track", raw='{"userId":"user-1","event":"Signed \\ud800 Up"}'),
        400,
        "event",
        "surrogate",
    ),
    "invalid UTF-8": Refusal(
        lambda: beacon("track", raw=b'{"userId":"user-1","event":"Sign\xffed Up"}'),
        400,
        "body",
        "not valid UTF-8 (byte 0xff",
    ),
    "batch with one invalid item": Refusal(
        lambda: beacon(
            "batch",
            {"batch": [_batch_item(0), _batch_item(1), {"type": "track", "userId": "user-2"}]},
        ),
        400,
        "batch[2].event",
        "batch[2].event: is required for track",
    ),
    "unknown route": Refusal(
        lambda: beacon("tracks", _track()), 404, "path", "unknown route /v1/tracks"
    ),
}
CODES[404] = "not_found"


def _good_request() -> dict[str, Any]:
    return beacon("track", _track(messageId="good-after-bad"))


@pytest.mark.parametrize("case", list(REFUSALS), ids=list(REFUSALS))
def test_bad_request_is_refused_with_status_code_and_field(case: str, ingest: Invoke):
    """A bad request gets the right 4xx and a JSON {code, message, field} naming what is wrong."""
    # given
    refusal = REFUSALS[case]
    # when
    response = ingest(refusal.request())
    # then
    body = json_body(response)
    assert response["statusCode"] == refusal.status
    assert response["headers"]["Content-Type"] == "application/json"
    assert set(body) == {"code", "message", "field"}
    assert body["code"] == CODES[refusal.status]
    assert body["field"] == refusal.field
    assert refusal.says in body["message"]


@pytest.mark.parametrize("case", list(REFUSALS), ids=list(REFUSALS))
def test_bad_request_stores_nothing(case: str, aws: Aws, ingest: Invoke):
    """A refused request leaves the table exactly as it was, even the valid messages of a batch."""
    # given
    ingest(beacon("track", _track(messageId="before")))
    items_before = aws.item_count()
    # when
    ingest(REFUSALS[case].request())
    # then
    assert aws.item_count() == items_before


@pytest.mark.parametrize("case", list(REFUSALS), ids=list(REFUSALS))
def test_good_request_after_a_bad_one_succeeds(case: str, aws: Aws, ingest: Invoke):
    """A refused request leaves the warm function healthy: the next good request is stored."""
    # given
    ingest(REFUSALS[case].request())
    # when
    response = ingest(_good_request())
    # then
    assert response["statusCode"] == 200
    assert [item["sk"]["S"].removeprefix("E#") for item in aws.event_items()] == ["good-after-bad"]


def test_gzip_bomb_is_refused_without_inflating_it(ingest: Invoke):
    """A small gzip body that inflates past the batch limit is refused with 413."""
    # given
    padding = " " * (2 * 1024 * 1024)
    bomb = gzip.compress(json.dumps(_track()).encode()[:-1] + padding.encode() + b"}")
    # when
    response = ingest(beacon("track", raw=bomb, headers={"content-encoding": "gzip"}))
    # then
    assert len(bomb) < 10_000
    assert response["statusCode"] == 413
    assert json_body(response)["field"] == "body"
