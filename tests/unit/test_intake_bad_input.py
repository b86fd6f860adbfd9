"""Bad requests: each is refused whole, with the right error class, status and field."""

from __future__ import annotations

import gzip
from datetime import timedelta
from typing import Any

import pytest
from nudge.domain.errors import InvalidRequest, NotFound, PayloadTooLarge
from nudge.domain.intake import Limits
from nudge.domain.timefmt import iso
from nudge.entrypoints.http_errors import status_of

from tests.unit.builders import NOW, encode, parse, track


def nested(levels: int) -> dict[str, Any]:
    """``levels`` objects inside one another: {"a": {"a": ... {}}}."""
    value: dict[str, Any] = {}
    for _ in range(levels):
        value = {"a": value}
    return value


def batch_of(*items: dict[str, Any], **batch_fields: Any) -> dict[str, Any]:
    return {"batch": [{"type": "track", **item} for item in items], **batch_fields}


def test_malformed_json_is_rejected() -> None:
    """A body that is not valid JSON is a 400 naming the body."""
    # given
    raw = b'{"userId": "user-1", "event": "Signed Up",'

    # when
    with pytest.raises(InvalidRequest) as caught:
        parse(raw)

    # then
    assert type(caught.value) is InvalidRequest
    assert status_of(caught.value) == 400
    assert caught.value.field == "body"
    assert "malformed JSON" in caught.value.reason


def test_an_empty_body_is_rejected() -> None:
    """An empty body is a 400 naming the body."""
    # given
    raw = b""

    # when
    with pytest.raises(InvalidRequest) as caught:
        parse(raw)

    # then
    assert type(caught.value) is InvalidRequest
    assert status_of(caught.value) == 400
    assert caught.value.field == "body"
    assert "empty" in caught.value.reason


def test_a_whitespace_only_body_is_rejected_as_empty() -> None:
    """A body of only whitespace counts as empty."""
    # given
    raw = b" \r\n\t "

    # when
    with pytest.raises(InvalidRequest) as caught:
        parse(raw)

    # then
    assert type(caught.value) is InvalidRequest
    assert status_of(caught.value) == 400
    assert caught.value.field == "body"
    assert "empty" in caught.value.reason


def test_a_json_array_instead_of_an_object_is_rejected() -> None:
    """A top-level JSON array is a 400 naming the body."""
    # given
    raw = encode([track()])

    # when
    with pytest.raises(InvalidRequest) as caught:
        parse(raw)

    # then
    assert type(caught.value) is InvalidRequest
    assert status_of(caught.value) == 400
    assert caught.value.field == "body"
    assert caught.value.reason == "must be a JSON object, not an array"


def test_a_json_string_instead_of_an_object_is_rejected() -> None:
    """A top-level JSON string is a 400 naming the body."""
    # given
    raw = encode("userId=user-1&event=Signed+Up")

    # when
    with pytest.raises(InvalidRequest) as caught:
        parse(raw)

    # then
    assert type(caught.value) is InvalidRequest
    assert status_of(caught.value) == 400
    assert caught.value.field == "body"
    assert caught.value.reason == "must be a JSON object, not a string"


def test_a_message_with_neither_user_id_nor_anonymous_id_is_rejected() -> None:
    """A message naming nobody is a 400 pointing at userId."""
    # given
    message = {"event": "Signed Up"}

    # when
    with pytest.raises(InvalidRequest) as caught:
        parse(message)

    # then
    assert type(caught.value) is InvalidRequest
    assert status_of(caught.value) == 400
    assert caught.value.field == "userId"
    assert "anonymousId" in caught.value.reason


def test_an_empty_user_id_counts_as_missing() -> None:
    """An empty userId string is a 400 naming userId."""
    # given
    message = track(userId="")

    # when
    with pytest.raises(InvalidRequest) as caught:
        parse(message)

    # then
    assert type(caught.value) is InvalidRequest
    assert status_of(caught.value) == 400
    assert caught.value.field == "userId"


def test_a_track_without_event_is_rejected() -> None:
    """A track with no event name is a 400 naming event."""
    # given
    message = {"userId": "user-1", "properties": {"sku": "A-1"}}

    # when
    with pytest.raises(InvalidRequest) as caught:
        parse(message, route="track")

    # then
    assert type(caught.value) is InvalidRequest
    assert status_of(caught.value) == 400
    assert caught.value.field == "event"
    assert caught.value.reason == "is required for track"


def test_a_too_long_event_name_is_rejected() -> None:
    """An event name over 512 characters is a 400 naming event."""
    # given
    message = track(event="x" * 513)

    # when
    with pytest.raises(InvalidRequest) as caught:
        parse(message)

    # then
    assert type(caught.value) is InvalidRequest
    assert status_of(caught.value) == 400
    assert caught.value.field == "event"


def test_a_group_without_group_id_is_rejected() -> None:
    """A group call without groupId is a 400 naming groupId."""
    # given
    message = {"userId": "user-1", "traits": {"name": "Acme"}}

    # when
    with pytest.raises(InvalidRequest) as caught:
        parse(message, route="group")

    # then
    assert type(caught.value) is InvalidRequest
    assert status_of(caught.value) == 400
    assert caught.value.field == "groupId"


def test_an_alias_without_user_id_is_rejected() -> None:
    """An alias needs the new userId even when anonymousId is present."""
    # given
    message = {"anonymousId": "anon-1", "previousId": "anon-0"}

    # when
    with pytest.raises(InvalidRequest) as caught:
        parse(message, route="alias")

    # then
    assert type(caught.value) is InvalidRequest
    assert status_of(caught.value) == 400
    assert caught.value.field == "userId"


def test_properties_that_are_not_an_object_are_rejected() -> None:
    """properties sent as an array is a 400 naming properties."""
    # given
    message = track(properties=["sku", "A-1"])

    # when
    with pytest.raises(InvalidRequest) as caught:
        parse(message)

    # then
    assert type(caught.value) is InvalidRequest
    assert status_of(caught.value) == 400
    assert caught.value.field == "properties"
    assert caught.value.reason == "must be a JSON object"


def test_a_write_key_that_is_not_a_string_is_rejected() -> None:
    """A non-string writeKey is a 400 naming writeKey."""
    # given
    message = track(writeKey=12345)

    # when
    with pytest.raises(InvalidRequest) as caught:
        parse(message)

    # then
    assert type(caught.value) is InvalidRequest
    assert status_of(caught.value) == 400
    assert caught.value.field == "writeKey"


def test_an_unknown_route_is_not_found() -> None:
    """A route outside Segment's API is a 404 naming the path."""
    # given
    route = "events"

    # when
    with pytest.raises(NotFound) as caught:
        parse(track(), route=route)

    # then
    assert type(caught.value) is NotFound
    assert status_of(caught.value) == 404
    assert caught.value.field == "path"


def test_an_unknown_type_inside_a_batch_names_the_item() -> None:
    """A batch item of an unknown type is a 400 naming batch[i].type."""
    # given
    payload = {"batch": [{"type": "track", **track()}, {"type": "purchase", **track()}]}

    # when
    with pytest.raises(InvalidRequest) as caught:
        parse(payload, route="batch")

    # then
    assert type(caught.value) is InvalidRequest
    assert status_of(caught.value) == 400
    assert caught.value.field == "batch[1].type"
    assert "'purchase'" in caught.value.reason


def test_a_batch_item_without_a_type_names_the_item() -> None:
    """A batch item with no type at all is a 400 naming batch[i].type."""
    # given
    payload = {"batch": [track()]}

    # when
    with pytest.raises(InvalidRequest) as caught:
        parse(payload, route="batch")

    # then
    assert type(caught.value) is InvalidRequest
    assert status_of(caught.value) == 400
    assert caught.value.field == "batch[0].type"


def test_a_batch_item_that_is_not_an_object_names_the_item() -> None:
    """A batch item that is a string is a 400 naming batch[i]."""
    # given
    payload = {"batch": [{"type": "track", **track()}, "Signed Up"]}

    # when
    with pytest.raises(InvalidRequest) as caught:
        parse(payload, route="batch")

    # then
    assert type(caught.value) is InvalidRequest
    assert status_of(caught.value) == 400
    assert caught.value.field == "batch[1]"


def test_a_batch_without_a_batch_array_is_rejected() -> None:
    """A batch request whose batch field is missing is a 400 naming batch."""
    # given
    payload = track()

    # when
    with pytest.raises(InvalidRequest) as caught:
        parse(payload, route="batch")

    # then
    assert type(caught.value) is InvalidRequest
    assert status_of(caught.value) == 400
    assert caught.value.field == "batch"


def test_an_empty_batch_is_rejected() -> None:
    """A batch with no messages is a 400 naming batch."""
    # given
    payload: dict[str, Any] = {"batch": []}

    # when
    with pytest.raises(InvalidRequest) as caught:
        parse(payload, route="batch")

    # then
    assert type(caught.value) is InvalidRequest
    assert status_of(caught.value) == 400
    assert caught.value.field == "batch"


def test_a_batch_with_one_invalid_item_is_rejected_whole() -> None:
    """One bad item among good ones rejects the batch, and the error names that item's index."""
    # given
    payload = batch_of(track(), track(), {"userId": "user-1"}, track())

    # when
    with pytest.raises(InvalidRequest) as caught:
        parse(payload, route="batch")

    # then
    assert type(caught.value) is InvalidRequest
    assert status_of(caught.value) == 400
    assert caught.value.field == "batch[2].event"


def test_a_single_message_over_32_kb_is_too_large() -> None:
    """A single message over 32 KB is a 413 naming the body."""
    # given
    message = track(properties={"blob": "x" * (32 * 1024)})

    # when
    with pytest.raises(PayloadTooLarge) as caught:
        parse(message)

    # then
    assert type(caught.value) is PayloadTooLarge
    assert status_of(caught.value) == 413
    assert caught.value.field == "body"


def test_a_batch_item_over_32_kb_is_too_large() -> None:
    """A batch under 500 KB with one item over 32 KB is a 413 naming that item."""
    # given
    payload = batch_of(track(), track(properties={"blob": "x" * (32 * 1024)}))

    # when
    with pytest.raises(PayloadTooLarge) as caught:
        parse(payload, route="batch")

    # then
    assert type(caught.value) is PayloadTooLarge
    assert status_of(caught.value) == 413
    assert caught.value.field == "batch[1]"


def test_a_batch_over_500_kb_is_too_large() -> None:
    """A batch body over 500 KB is a 413 naming the body, though each item is small."""
    # given
    item = track(properties={"blob": "x" * (20 * 1024)})
    payload = batch_of(*[item] * 26)

    # when
    with pytest.raises(PayloadTooLarge) as caught:
        parse(payload, route="batch")

    # then
    assert len(encode(payload)) > 500 * 1024
    assert type(caught.value) is PayloadTooLarge
    assert status_of(caught.value) == 413
    assert caught.value.field == "body"


def test_a_batch_over_2500_items_is_too_large() -> None:
    """A batch of 2,501 small items is a 413 naming batch."""
    # given
    payload = batch_of(*[{"userId": "u", "event": "e"}] * 2501)

    # when
    with pytest.raises(PayloadTooLarge) as caught:
        parse(payload, route="batch")

    # then
    assert len(encode(payload)) < 500 * 1024
    assert type(caught.value) is PayloadTooLarge
    assert status_of(caught.value) == 413
    assert caught.value.field == "batch"


def test_a_timestamp_that_is_not_iso_8601_is_rejected() -> None:
    """A timestamp in another format is a 400 naming timestamp."""
    # given
    message = track(timestamp="28/11/2026 12:00")

    # when
    with pytest.raises(InvalidRequest) as caught:
        parse(message)

    # then
    assert type(caught.value) is InvalidRequest
    assert status_of(caught.value) == 400
    assert caught.value.field == "timestamp"
    assert "ISO 8601" in caught.value.reason


def test_an_epoch_number_timestamp_is_rejected() -> None:
    """A numeric epoch timestamp is not ISO 8601 and is a 400 naming timestamp."""
    # given
    message = track(timestamp=1_764_331_200)

    # when
    with pytest.raises(InvalidRequest) as caught:
        parse(message)

    # then
    assert type(caught.value) is InvalidRequest
    assert status_of(caught.value) == 400
    assert caught.value.field == "timestamp"


def test_a_timestamp_too_far_in_the_past_is_rejected() -> None:
    """A timestamp older than the past bound (30 days) is a 400 naming timestamp."""
    # given
    message = track(timestamp=iso(NOW - timedelta(days=30, seconds=1)))

    # when
    with pytest.raises(InvalidRequest) as caught:
        parse(message)

    # then
    assert type(caught.value) is InvalidRequest
    assert status_of(caught.value) == 400
    assert caught.value.field == "timestamp"
    assert "in the past" in caught.value.reason


def test_a_timestamp_too_far_in_the_future_is_rejected() -> None:
    """A timestamp beyond the future bound (1 hour) is a 400 naming timestamp."""
    # given
    message = track(timestamp=iso(NOW + timedelta(hours=1, seconds=1)))

    # when
    with pytest.raises(InvalidRequest) as caught:
        parse(message)

    # then
    assert type(caught.value) is InvalidRequest
    assert status_of(caught.value) == 400
    assert caught.value.field == "timestamp"
    assert "in the future" in caught.value.reason


def test_a_skewed_batch_item_names_its_index() -> None:
    """A batch item with an out-of-bounds timestamp is a 400 naming batch[i].timestamp."""
    # given
    payload = batch_of(track(), track(timestamp=iso(NOW - timedelta(days=90))))

    # when
    with pytest.raises(InvalidRequest) as caught:
        parse(payload, route="batch")

    # then
    assert type(caught.value) is InvalidRequest
    assert status_of(caught.value) == 400
    assert caught.value.field == "batch[1].timestamp"


def test_a_skew_correction_that_leaves_the_calendar_is_rejected() -> None:
    """Timestamps whose correction falls outside datetime's range are a 400, not a crash."""
    # given
    message = track(timestamp="0001-01-01T00:00:00Z", sentAt="9999-12-31T00:00:00Z")

    # when
    with pytest.raises(InvalidRequest) as caught:
        parse(message)

    # then
    assert type(caught.value) is InvalidRequest
    assert status_of(caught.value) == 400
    assert caught.value.field == "timestamp"


def test_a_timestamp_that_leaves_the_calendar_in_utc_is_rejected() -> None:
    """A timestamp near year 9999 whose UTC instant overflows is a 400, not a crash."""
    # given
    message = track(timestamp="9999-12-31T23:00:00-05:00", sentAt="9999-12-31T23:00:00-05:00")

    # when
    with pytest.raises(InvalidRequest) as caught:
        parse(message)

    # then
    assert type(caught.value) is InvalidRequest
    assert status_of(caught.value) == 400
    assert caught.value.field == "timestamp"


def test_gzip_encoding_with_a_body_that_is_not_gzip_is_rejected() -> None:
    """Content-Encoding: gzip on a plain JSON body is a 400 naming the body."""
    # given
    raw = encode(track())

    # when
    with pytest.raises(InvalidRequest) as caught:
        parse(raw, content_encoding="gzip")

    # then
    assert type(caught.value) is InvalidRequest
    assert status_of(caught.value) == 400
    assert caught.value.field == "body"
    assert "not gzip" in caught.value.reason


def test_a_truncated_gzip_body_is_rejected() -> None:
    """A gzip stream cut short is a 400 naming the body."""
    # given
    raw = gzip.compress(encode(track()))[:-12]

    # when
    with pytest.raises(InvalidRequest) as caught:
        parse(raw, content_encoding="gzip")

    # then
    assert type(caught.value) is InvalidRequest
    assert status_of(caught.value) == 400
    assert caught.value.field == "body"
    assert "truncated" in caught.value.reason


def test_an_unsupported_content_encoding_is_rejected() -> None:
    """Content-Encoding other than gzip or identity is a 400 naming Content-Encoding."""
    # given
    raw = encode(track())

    # when
    with pytest.raises(InvalidRequest) as caught:
        parse(raw, content_encoding="br")

    # then
    assert type(caught.value) is InvalidRequest
    assert status_of(caught.value) == 400
    assert caught.value.field == "Content-Encoding"


def test_a_gzip_bomb_is_too_large() -> None:
    """A small gzip body that inflates past the batch limit is a 413 naming the body."""
    # given
    padding = b" " * (20 * 1024 * 1024)
    raw = gzip.compress(encode(track())[:-1] + padding + b"}")

    # when
    with pytest.raises(PayloadTooLarge) as caught:
        parse(raw, route="batch", content_encoding="gzip")

    # then
    assert len(raw) < 100 * 1024
    assert type(caught.value) is PayloadTooLarge
    assert status_of(caught.value) == 413
    assert caught.value.field == "body"


def test_a_depth_bomb_of_ten_thousand_objects_is_rejected() -> None:
    """10,000 nested objects (in a batch, to fit its size limit) are a 400, not a RecursionError."""
    # given
    bomb = b'{"a":' * 10_000 + b"{}" + b"}" * 10_000
    raw = b'{"batch":[{"type":"track","userId":"u","event":"e","properties":' + bomb + b"}]}"

    # when
    with pytest.raises(InvalidRequest) as caught:
        parse(raw, route="batch")

    # then
    assert type(caught.value) is InvalidRequest
    assert status_of(caught.value) == 400
    assert caught.value.field == "body"
    assert "nested deeper" in caught.value.reason


def test_a_depth_bomb_of_ten_thousand_arrays_is_rejected() -> None:
    """10,000 nested arrays in a single message are a 400 naming the body."""
    # given
    raw = b'{"userId":"u","event":"e","properties":{"a":' + b"[" * 10_000 + b"]" * 10_000 + b"}}"

    # when
    with pytest.raises(InvalidRequest) as caught:
        parse(raw)

    # then
    assert type(caught.value) is InvalidRequest
    assert status_of(caught.value) == 400
    assert caught.value.field == "body"
    assert "nested deeper" in caught.value.reason


def test_thirty_levels_of_nesting_are_rejected_at_the_level_that_breaks_the_limit() -> None:
    """Properties nested 30 levels deep are a 400 naming the first object past the limit."""
    # given
    message = track(properties=nested(30))

    # when
    with pytest.raises(InvalidRequest) as caught:
        parse(message)

    # then
    assert type(caught.value) is InvalidRequest
    assert status_of(caught.value) == 400
    # the body is level 1 and properties level 2, so level 25 is properties + 23 keys
    assert caught.value.field == "properties" + ".a" * 23
    assert caught.value.reason == "nested deeper than 24 levels"


def test_nesting_up_to_the_limit_is_accepted() -> None:
    """Exactly max_depth levels, counting the body itself, are accepted."""
    # given
    message = track(properties=nested(22))

    # when
    (accepted,) = parse(message).events

    # then
    assert accepted.body["properties"] == nested(22)


def test_a_nul_escape_inside_a_string_is_rejected() -> None:
    """A \\u0000 inside a property value is a 400 naming that property."""
    # given
    raw = b'{"userId":"u","event":"e","properties":{"items":[{"note":"a\\u0000b"}]}}'

    # when
    with pytest.raises(InvalidRequest) as caught:
        parse(raw)

    # then
    assert type(caught.value) is InvalidRequest
    assert status_of(caught.value) == 400
    assert caught.value.field == "properties.items[0].note"
    assert "NUL" in caught.value.reason


def test_a_nul_escape_inside_a_key_is_rejected() -> None:
    """A \\u0000 inside a property name is a 400 naming that key."""
    # given
    raw = b'{"userId":"u","event":"e","properties":{"k\\u0000ey":1}}'

    # when
    with pytest.raises(InvalidRequest) as caught:
        parse(raw)

    # then
    assert type(caught.value) is InvalidRequest
    assert status_of(caught.value) == 400
    assert caught.value.field == "properties.k\x00ey"
    assert "NUL" in caught.value.reason


def test_invalid_utf8_bytes_are_rejected() -> None:
    """A body that is not valid UTF-8 is a 400 naming the body and the offending byte."""
    # given
    raw = b'{"userId":"u","event":"caf\xe9"}'

    # when
    with pytest.raises(InvalidRequest) as caught:
        parse(raw)

    # then
    assert type(caught.value) is InvalidRequest
    assert status_of(caught.value) == 400
    assert caught.value.field == "body"
    assert "0xe9 at offset 26" in caught.value.reason


def test_an_unpaired_surrogate_escape_is_rejected() -> None:
    """A lone \\ud800 escape in a value is a 400 naming that field."""
    # given
    raw = b'{"userId":"u","event":"Signed Up \\ud800"}'

    # when
    with pytest.raises(InvalidRequest) as caught:
        parse(raw)

    # then
    assert type(caught.value) is InvalidRequest
    assert status_of(caught.value) == 400
    assert caught.value.field == "event"
    assert "surrogate" in caught.value.reason


def test_an_unpaired_surrogate_escape_in_a_key_is_rejected() -> None:
    """A lone \\udfff escape in a property name is a 400 naming the properties path."""
    # given
    raw = b'{"userId":"u","event":"e","properties":{"x\\udfff":1}}'

    # when
    with pytest.raises(InvalidRequest) as caught:
        parse(raw)

    # then
    assert type(caught.value) is InvalidRequest
    assert status_of(caught.value) == 400
    assert caught.value.field.startswith("properties.x")
    assert "surrogate" in caught.value.reason


def test_a_paired_surrogate_escape_is_accepted() -> None:
    """A correctly paired \\ud83d\\uded2 escape is one emoji, not an error."""
    # given
    raw = b'{"userId":"u","event":"cart \\ud83d\\uded2"}'

    # when
    (accepted,) = parse(raw).events

    # then
    assert accepted.body["event"] == "cart 🛒"


def test_an_integer_literal_over_the_digit_limit_is_rejected() -> None:
    """A 5,000-digit number is a 400 naming the body, not a ValueError from json."""
    # given
    raw = b'{"userId":"u","event":"e","properties":{"n":' + b"9" * 5000 + b"}}"

    # when
    with pytest.raises(InvalidRequest) as caught:
        parse(raw)

    # then
    assert type(caught.value) is InvalidRequest
    assert status_of(caught.value) == 400
    assert caught.value.field == "body"


def test_configured_limits_are_the_ones_enforced() -> None:
    """A tighter max_future from settings rejects what the default would accept."""
    # given
    limits = Limits(max_future=timedelta(minutes=5))
    message = track(timestamp=iso(NOW + timedelta(minutes=10)))

    # when
    with pytest.raises(InvalidRequest) as caught:
        parse(message, limits=limits)

    # then
    assert type(caught.value) is InvalidRequest
    assert caught.value.field == "timestamp"
    assert caught.value.reason == "10.0 minutes in the future; at most 5.0 minutes accepted"


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_numbers_are_rejected(literal: str) -> None:
    """NaN, infinities and numbers that overflow to infinity are a 400, not silently nulled."""
    # given
    raw = f'{{"userId":"u","event":"e","properties":{{"x":{literal}}}}}'.encode()

    # when
    with pytest.raises(InvalidRequest) as caught:
        parse(raw)

    # then
    assert status_of(caught.value) == 400
    assert caught.value.field == "body"
    assert "not a JSON number" in caught.value.reason


def test_a_surrogate_in_a_key_gives_an_encodable_field() -> None:
    """The error for a lone surrogate in a key names the key in a form that encodes as UTF-8."""
    # given
    raw = b'{"userId":"u","event":"e","properties":{"x\\udfff":1}}'

    # when
    with pytest.raises(InvalidRequest) as caught:
        parse(raw)

    # then
    assert caught.value.field == "properties.x\\udfff"
    assert caught.value.message.encode("utf-8")


def test_an_empty_user_id_is_named_in_plain_words() -> None:
    """An empty userId is refused with 'must not be empty', not a validator's internal wording."""
    # given
    raw = encode(track(userId=""))

    # when
    with pytest.raises(InvalidRequest) as caught:
        parse(raw)

    # then
    assert caught.value.field == "userId"
    assert caught.value.reason == "must not be empty"
