"""Events are compressed with a preset dictionary of what every Segment message shares."""

from __future__ import annotations

import json
import zlib

from nudge.adapters.packing import (
    fire_record,
    pack_with_dictionary,
    unpack,
    unpack_with_dictionary,
)

from bench.common import track_message

BODY = {**track_message("ada", 1, "pack"), "receivedAt": "2026-12-05T12:00:00+00:00"}


def test_a_value_packed_with_the_dictionary_reads_back_the_same():
    assert unpack_with_dictionary(pack_with_dictionary([BODY, BODY])) == [BODY, BODY]


def test_the_dictionary_makes_a_lone_analytics_js_event_smaller():
    # given the same event compressed without a dictionary, as items were before
    without = zlib.compress(json.dumps(BODY, separators=(",", ":")).encode(), 6)
    # when
    packed = pack_with_dictionary(BODY)
    # then
    assert len(packed) < 0.8 * len(without)


def test_a_value_packed_without_the_dictionary_still_reads():
    assert unpack(zlib.compress(json.dumps(BODY).encode())) == BODY


FIRE = {"fireId": "f-1", "trigger": "abandoned_cart", "entry": BODY}


def test_a_fire_item_holds_its_record_packed():
    assert fire_record({"zf": pack_with_dictionary(FIRE)}) == FIRE


def test_a_fire_item_written_as_text_still_reads():
    assert fire_record({"fire": json.dumps(FIRE)}) == FIRE
