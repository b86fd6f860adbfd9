"""Event bodies are stored packed (zlib JSON), a request's events for one person together,
and items written before that still read."""

from __future__ import annotations

import base64
import json
import zlib
from datetime import UTC, datetime

from boto3.dynamodb.types import Binary
from nudge.adapters.store import (
    event_bodies,
    pack_body,
    readable_events,
    stored_events_from_image,
)

from bench.common import track_message
from local.meter import item_size

BODY = {**track_message("ada", 1, "pack"), "receivedAt": "2026-12-05T12:00:00+00:00"}
BATCH = [
    {**track_message("ada", index, "pack"), "receivedAt": "2026-12-05T12:00:00+00:00"}
    for index in range(10)
]


def _image(packed: bytes, first_id: str) -> dict[str, dict[str, str]]:
    """The NewImage Lambda hands Evaluate: binary attributes are base64 text."""
    return {
        "pk": {"S": "P#u:ada"},
        "sk": {"S": f"E#{first_id}"},
        "kind": {"S": "event"},
        "ts": {"S": BODY["timestamp"]},
        "zd": {"B": base64.b64encode(packed).decode()},
    }


def test_an_analytics_js_event_packs_to_about_half_its_json():
    # given an analytics.js-shaped track call of about 900 bytes
    text = json.dumps(BODY, separators=(",", ":"))
    # when
    packed = pack_body(BODY)
    # then
    assert len(packed) < 0.7 * len(text.encode())


def test_a_packed_body_reads_back_as_the_same_document():
    assert event_bodies({"zd": Binary(pack_body(BODY))}) == [BODY]


def test_an_item_packed_before_the_dictionary_still_reads():
    packed = zlib.compress(json.dumps(BODY).encode())
    assert event_bodies({"zb": Binary(packed)}) == [BODY]


def test_an_item_written_before_packing_reads_its_plain_body():
    assert event_bodies({"body": json.dumps(BODY)}) == [BODY]


def test_a_packed_group_reads_back_in_the_order_sent():
    assert event_bodies({"zd": Binary(pack_body(BATCH))}) == BATCH


def test_a_stream_image_of_one_event_gives_that_event():
    # when
    (stored,) = stored_events_from_image(_image(pack_body(BODY), BODY["messageId"]))
    # then
    assert stored.event.body == BODY
    assert stored.event.received_at == datetime(2026, 12, 5, 12, tzinfo=UTC)


def test_a_stream_image_of_a_group_gives_its_events_in_order_under_the_items_id():
    # when
    stored = stored_events_from_image(_image(pack_body(BATCH), BATCH[0]["messageId"]))
    # then
    assert [s.event.message_id for s in stored] == [body["messageId"] for body in BATCH]
    assert {s.item_id for s in stored} == {BATCH[0]["messageId"]}
    assert [s.event.type for s in stored] == ["track"] * 10


def test_a_single_event_item_stays_under_one_write_unit():
    # given the item the store writes: keys, kind, type, ts, TTL and the packed body
    item = {
        "pk": {"S": "P#u:ada"},
        "sk": {"S": f"E#{BODY['messageId']}"},
        "kind": {"S": "event"},
        "type": {"S": "track"},
        "ts": {"S": BODY["timestamp"]},
        "zd": {"B": pack_body(BODY)},
        "expires_at": {"N": "1796470000"},
    }
    # then
    assert item_size(item) < 1024


def test_ten_browser_events_packed_together_cost_a_fifth_of_ten_items():
    # given a browser batch of ten analytics.js events, which share their page context
    item = {**_image(pack_body(BATCH), BATCH[0]["messageId"]), "expires_at": {"N": "1796470000"}}
    item["zd"] = {"B": pack_body(BATCH)}  # type: ignore[dict-item]
    # then it fits in two write units, where ten items cost ten
    assert item_size(item) <= 2 * 1024


def test_an_export_shows_each_event_of_a_group_with_its_body_as_json_text():
    # when
    readable = readable_events(
        {"sk": "E#1", "kind": "event", "ts": "x", "zd": Binary(pack_body(BATCH))}
    )
    # then
    assert [json.loads(entry["body"]) for entry in readable] == BATCH
    assert [entry["ts"] for entry in readable] == [body["timestamp"] for body in BATCH]
    assert all("zd" not in entry for entry in readable)
