"""Event bodies are stored packed (zlib JSON), and items written before that still read."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

from boto3.dynamodb.types import Binary
from nudge.adapters.store import event_body, pack_body, readable_event, stored_event_from_image

from bench.common import track_message
from local.meter import item_size

BODY = {**track_message("ada", 1, "pack"), "receivedAt": "2026-12-05T12:00:00+00:00"}


def test_an_analytics_js_event_packs_to_about_half_its_json():
    # given an analytics.js-shaped track call of about 900 bytes
    text = json.dumps(BODY, separators=(",", ":"))
    # when
    packed = pack_body(BODY)
    # then
    assert len(packed) < 0.7 * len(text.encode())


def test_a_packed_body_reads_back_as_the_same_document():
    assert event_body({"zb": Binary(pack_body(BODY))}) == BODY


def test_an_item_written_before_packing_reads_its_plain_body():
    assert event_body({"body": json.dumps(BODY)}) == BODY


def test_a_stream_image_with_base64_binary_gives_the_event():
    # given the NewImage Lambda hands Evaluate: binary attributes are base64 text
    image = {
        "pk": {"S": "P#u:ada"},
        "sk": {"S": f"E#{BODY['messageId']}"},
        "kind": {"S": "event"},
        "type": {"S": "track"},
        "ts": {"S": BODY["timestamp"]},
        "zb": {"B": base64.b64encode(pack_body(BODY)).decode()},
    }
    # when
    stored = stored_event_from_image(image)
    # then
    assert stored.event.body == BODY
    assert stored.event.received_at == datetime(2026, 12, 5, 12, tzinfo=UTC)


def test_the_event_item_stays_under_one_write_unit():
    # given the item the store writes: keys, kind, type, ts, TTL and the packed body
    item = {
        "pk": {"S": "P#u:ada"},
        "sk": {"S": f"E#{BODY['messageId']}"},
        "kind": {"S": "event"},
        "type": {"S": "track"},
        "ts": {"S": BODY["timestamp"]},
        "zb": {"B": pack_body(BODY)},
        "expires_at": {"N": "1796470000"},
    }
    # then
    assert item_size(item) < 1024


def test_an_export_shows_the_body_as_json_text():
    readable = readable_event({"sk": "E#1", "zb": Binary(pack_body(BODY))})
    assert json.loads(readable["body"]) == BODY
    assert "zb" not in readable
