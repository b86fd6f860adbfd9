"""Good requests: what parse_request accepts and how it normalises them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from nudge.domain.intake import Limits
from nudge.domain.timefmt import iso

from tests.unit.builders import NOW, encode, gzipped, parse, track

MINIMAL_BY_TYPE: dict[str, dict[str, Any]] = {
    "track": {"userId": "user-1", "event": "Signed Up"},
    "identify": {"userId": "user-1", "traits": {"plan": "pro"}},
    "page": {"anonymousId": "anon-1", "name": "Home"},
    "screen": {"anonymousId": "anon-1", "name": "Settings"},
    "group": {"userId": "user-1", "groupId": "acme"},
    "alias": {"userId": "user-1", "previousId": "anon-1"},
}


def test_unicode_and_emoji_survive_intact_in_the_body() -> None:
    """Non-ASCII event names and property values are stored exactly as sent."""
    # given
    message = track(
        event="Añadido al carrito 🛒",
        properties={"title": "Café ☕ 東京", "emoji": "👩‍👩‍👧‍👦", "ключ": "значение"},
    )

    # when
    (accepted,) = parse(message).events

    # then
    assert accepted.body["event"] == "Añadido al carrito 🛒"
    assert accepted.name == "Añadido al carrito 🛒"
    assert accepted.body["properties"] == {
        "title": "Café ☕ 東京",
        "emoji": "👩‍👩‍👧‍👦",
        "ключ": "значение",
    }


@pytest.mark.parametrize(
    ("route", "expected_type"),
    [
        ("t", "track"),
        ("i", "identify"),
        ("p", "page"),
        ("s", "screen"),
        ("g", "group"),
        ("a", "alias"),
        ("track", "track"),
        ("identify", "identify"),
        ("page", "page"),
        ("screen", "screen"),
        ("group", "group"),
        ("alias", "alias"),
    ],
)
def test_single_message_routes_map_to_their_type(route: str, expected_type: str) -> None:
    """Each long and one-letter route yields one event of the type it stands for."""
    # given
    message = MINIMAL_BY_TYPE[expected_type]

    # when
    intake = parse(message, route=route)

    # then
    assert [accepted.type for accepted in intake.events] == [expected_type]
    assert intake.events[0].body["type"] == expected_type


@pytest.mark.parametrize("route", ["b", "batch", "import"])
def test_batch_routes_accept_a_batch_of_mixed_types(route: str) -> None:
    """The b, batch and import routes all read a batch array of typed messages."""
    # given
    batch = [{**message, "type": kind} for kind, message in MINIMAL_BY_TYPE.items()]

    # when
    intake = parse({"batch": batch}, route=route)

    # then
    assert [accepted.type for accepted in intake.events] == list(MINIMAL_BY_TYPE)


def test_the_route_decides_the_type_of_a_single_message() -> None:
    """A type field in the body of a single-message route is overridden by the route."""
    # given
    message = track(type="identify")

    # when
    (accepted,) = parse(message, route="t").events

    # then
    assert accepted.type == "track"


def test_metrics_route_is_accepted_and_dropped() -> None:
    """/v1/m (analytics.js client metrics) is accepted, marked dropped and yields no event."""
    # given
    metrics = {"series": [{"type": "Counter", "metric": "analytics_js.invoke", "value": 1}]}

    # when
    intake = parse(metrics, route="m")

    # then
    assert intake.dropped is True
    assert intake.events == []


def test_metrics_route_is_dropped_without_reading_the_body() -> None:
    """/v1/m never fails, even on a body that would be rejected anywhere else."""
    # given
    garbage = b"\xff\x00 not json"

    # when
    intake = parse(garbage, route="m")

    # then
    assert intake.dropped is True
    assert intake.events == []


def test_batch_context_is_merged_into_items_with_item_keys_winning() -> None:
    """Batch-level context reaches every item, but an item's own context key overrides it."""
    # given
    payload = {
        "context": {"library": {"name": "analytics-python"}, "ip": "10.0.0.1"},
        "batch": [
            {**track(), "type": "track", "context": {"ip": "192.0.2.7"}},
            {**track(), "type": "track"},
        ],
    }

    # when
    first, second = parse(payload, route="batch").events

    # then
    assert first.body["context"] == {"library": {"name": "analytics-python"}, "ip": "192.0.2.7"}
    assert second.body["context"] == {"library": {"name": "analytics-python"}, "ip": "10.0.0.1"}


def test_batch_integrations_are_merged_into_items_with_item_keys_winning() -> None:
    """Batch-level integrations reach every item, and an item's own flags override them."""
    # given
    payload = {
        "integrations": {"All": True, "Mixpanel": False},
        "batch": [{**track(), "type": "track", "integrations": {"Mixpanel": True}}],
    }

    # when
    (accepted,) = parse(payload, route="batch").events

    # then
    assert accepted.body["integrations"] == {"All": True, "Mixpanel": True}


def test_batch_sent_at_corrects_the_skew_of_every_item() -> None:
    """A batch-level sentAt is used to correct each item's clock skew."""
    # given
    client_clock = NOW + timedelta(hours=5)  # the client's clock runs five hours fast
    payload = {
        "sentAt": iso(client_clock),
        "batch": [
            {**track(), "type": "track", "timestamp": iso(client_clock - timedelta(minutes=2))},
            {**track(), "type": "track", "timestamp": iso(client_clock - timedelta(minutes=1))},
        ],
    }

    # when
    first, second = parse(payload, route="batch").events

    # then
    assert first.timestamp == NOW - timedelta(minutes=2)
    assert second.timestamp == NOW - timedelta(minutes=1)


def test_an_items_own_sent_at_wins_over_the_batch_sent_at() -> None:
    """An item that carries its own sentAt is corrected with it, not with the batch's."""
    # given
    payload = {
        "sentAt": iso(NOW + timedelta(hours=5)),
        "batch": [
            {
                **track(),
                "type": "track",
                "sentAt": iso(NOW - timedelta(hours=2)),
                "timestamp": iso(NOW - timedelta(hours=2, minutes=3)),
            }
        ],
    }

    # when
    (accepted,) = parse(payload, route="batch").events

    # then
    assert accepted.timestamp == NOW - timedelta(minutes=3)


def test_clock_skew_is_corrected_as_segment_does() -> None:
    """timestamp = receivedAt - (sentAt - originalTimestamp), so a wrong client clock is undone."""
    # given
    client_clock = NOW - timedelta(days=3)  # the client's clock is three days behind
    message = track(
        originalTimestamp=iso(client_clock - timedelta(seconds=40)),
        sentAt=iso(client_clock),
    )

    # when
    (accepted,) = parse(message).events

    # then
    assert accepted.timestamp == NOW - timedelta(seconds=40)
    assert accepted.body["timestamp"] == "2026-11-28T11:59:20.000Z"


def test_the_original_client_timestamp_is_kept_beside_the_corrected_one() -> None:
    """After correction the body still records what the client said, as originalTimestamp."""
    # given
    message = track(timestamp="2026-11-25T08:00:00Z", sentAt="2026-11-25T08:00:10Z")

    # when
    (accepted,) = parse(message).events

    # then
    assert accepted.body["originalTimestamp"] == "2026-11-25T08:00:00.000Z"
    assert accepted.body["timestamp"] == "2026-11-28T11:59:50.000Z"


def test_a_timestamp_without_sent_at_is_taken_as_sent() -> None:
    """Without sentAt there is nothing to correct with, so the client's timestamp stands."""
    # given
    message = track(timestamp="2026-11-28T11:15:30.250Z")

    # when
    (accepted,) = parse(message).events

    # then
    assert accepted.body["timestamp"] == "2026-11-28T11:15:30.250Z"


def test_a_timestamp_without_an_offset_is_read_as_utc() -> None:
    """A naive ISO 8601 timestamp is interpreted as UTC."""
    # given
    message = track(timestamp="2026-11-28T11:00:00")

    # when
    (accepted,) = parse(message).events

    # then
    assert accepted.timestamp == NOW - timedelta(hours=1)


def test_a_timestamp_with_an_offset_is_stored_in_utc() -> None:
    """A timestamp sent with a UTC offset is stored as the same instant in UTC."""
    # given
    message = track(timestamp="2026-11-28T13:30:00+02:00")

    # when
    (accepted,) = parse(message).events

    # then
    assert accepted.body["timestamp"] == "2026-11-28T11:30:00.000Z"


def test_a_missing_timestamp_uses_received_at() -> None:
    """A message without any timestamp happened when it was received."""
    # given
    message = track()

    # when
    (accepted,) = parse(message).events

    # then
    assert accepted.timestamp == NOW
    assert accepted.body["timestamp"] == accepted.body["receivedAt"] == "2026-11-28T12:00:00.000Z"
    assert "originalTimestamp" not in accepted.body


def test_a_missing_message_id_comes_from_the_id_factory() -> None:
    """Without a messageId, the injected new_id supplies one, on the event and in its body."""
    # given
    message = track()

    # when
    (accepted,) = parse(message).events

    # then
    assert accepted.message_id == "generated-1"
    assert accepted.body["messageId"] == "generated-1"


def test_a_message_id_sent_by_the_client_is_kept() -> None:
    """A client's messageId is kept, so retries of one message deduplicate."""
    # given
    message = track(messageId="ajs-next-1700000000000-abc")

    # when
    (accepted,) = parse(message).events

    # then
    assert accepted.message_id == "ajs-next-1700000000000-abc"
    assert accepted.body["messageId"] == "ajs-next-1700000000000-abc"


def test_each_batch_item_without_an_id_gets_its_own() -> None:
    """Items of one batch without messageId get distinct ids from the factory."""
    # given
    payload = {"batch": [{**track(), "type": "track"}, {**track(), "type": "track"}]}

    # when
    intake = parse(payload, route="batch")

    # then
    assert [accepted.message_id for accepted in intake.events] == ["generated-1", "generated-2"]


def test_numeric_ids_are_stored_as_strings() -> None:
    """Numeric userId and messageId, as some server clients send them, become strings."""
    # given
    message = track(userId=42, messageId=7)

    # when
    (accepted,) = parse(message).events

    # then
    assert accepted.user_id == "42"
    assert accepted.message_id == "7"


def test_the_write_key_is_popped_and_returned() -> None:
    """writeKey in the body is returned in Intake.write_key and left out of the stored body."""
    # given
    message = track(writeKey="wk_live_123")

    # when
    intake = parse(message)

    # then
    assert intake.write_key == "wk_live_123"
    assert "writeKey" not in intake.events[0].body


def test_a_batch_write_key_is_popped_and_returned() -> None:
    """A batch's writeKey is returned and appears in none of the stored items."""
    # given
    payload = {"writeKey": "wk_live_123", "batch": [{**track(), "type": "track"}]}

    # when
    intake = parse(payload, route="batch")

    # then
    assert intake.write_key == "wk_live_123"
    assert all("writeKey" not in accepted.body for accepted in intake.events)


def test_no_write_key_in_the_body_returns_none() -> None:
    """Without a writeKey in the body (Basic auth instead), Intake.write_key is None."""
    # given
    message = track()

    # when
    intake = parse(message)

    # then
    assert intake.write_key is None


def test_a_gzip_body_is_accepted() -> None:
    """A gzip-compressed body with Content-Encoding: gzip is inflated and parsed."""
    # given
    raw = gzipped(track(properties={"sku": "A-1"}))

    # when
    (accepted,) = parse(raw, content_encoding="gzip").events

    # then
    assert accepted.body["properties"] == {"sku": "A-1"}


def test_content_encoding_is_matched_case_insensitively() -> None:
    """Content-Encoding: GZip is the same as gzip."""
    # given
    raw = gzipped(track())

    # when
    (accepted,) = parse(raw, content_encoding=" GZip ").events

    # then
    assert accepted.body["event"] == "Product Viewed"


def test_identity_content_encoding_is_read_as_plain() -> None:
    """Content-Encoding: identity means the body is not compressed."""
    # given
    raw = encode(track())

    # when
    (accepted,) = parse(raw, content_encoding="identity").events

    # then
    assert accepted.body["event"] == "Product Viewed"


def test_unknown_top_level_fields_are_kept() -> None:
    """Fields Segment tolerates but does not define (_metadata, version) are kept, not refused."""
    # given
    message = track(_metadata={"bundled": ["Segment.io"]}, version=2)

    # when
    (accepted,) = parse(message).events

    # then
    assert accepted.body["_metadata"] == {"bundled": ["Segment.io"]}
    assert accepted.body["version"] == 2


def test_an_anonymous_message_keeps_its_anonymous_id() -> None:
    """A message with only anonymousId is accepted with no user id."""
    # given
    message = {"anonymousId": "anon-9", "event": "Product Viewed"}

    # when
    (accepted,) = parse(message).events

    # then
    assert accepted.anonymous_id == "anon-9"
    assert accepted.user_id is None


def test_a_page_event_is_named_by_its_name() -> None:
    """Event.name of a page is the page's name field."""
    # given
    message = {"anonymousId": "anon-1", "name": "Pricing"}

    # when
    (accepted,) = parse(message, route="page").events

    # then
    assert accepted.name == "Pricing"


def test_an_alias_exposes_its_previous_id() -> None:
    """Event.previous_id of an alias is the id being merged."""
    # given
    message = {"userId": "user-1", "previousId": "anon-1"}

    # when
    (accepted,) = parse(message, route="alias").events

    # then
    assert accepted.previous_id == "anon-1"


def test_a_message_of_exactly_the_size_limit_is_accepted() -> None:
    """The size limit is inclusive: a body of exactly max_message_bytes passes."""
    # given
    skeleton = encode(track(properties={"pad": ""}))
    limits = Limits(max_message_bytes=len(skeleton) + 100)
    raw = encode(track(properties={"pad": "x" * 100}))

    # when
    (accepted,) = parse(raw, limits=limits).events

    # then
    assert len(raw) == limits.max_message_bytes
    assert accepted.body["properties"]["pad"] == "x" * 100


def test_a_timestamp_just_inside_the_skew_bounds_is_accepted() -> None:
    """Timestamps exactly at the past and future bounds are still accepted."""
    # given
    limits = Limits()
    oldest = track(timestamp=iso(NOW - limits.max_past))
    newest = track(timestamp=iso(NOW + limits.max_future))

    # when
    (old,) = parse(oldest).events
    (new,) = parse(newest).events

    # then
    assert old.timestamp == NOW - limits.max_past
    assert new.timestamp == NOW + limits.max_future


def test_a_write_key_inside_a_batch_item_is_not_stored() -> None:
    """A writeKey repeated inside each batch message is dropped from what is stored."""
    # given
    item = {**track(), "type": "track", "writeKey": "secret"}

    # when
    intake = parse({"batch": [item]}, route="batch")

    # then
    assert "writeKey" not in intake.events[0].body


def test_an_accepted_event_carries_its_timestamp_as_the_body_writes_it() -> None:
    """Intake hands on the timestamp's text it wrote into the body: the fold reads it."""
    # given
    message = track(timestamp="2026-11-28T13:15:30.123456+02:00")

    # when
    (accepted,) = parse(message).events

    # then
    assert accepted.moment == accepted.body["timestamp"] == iso(accepted.timestamp)
    assert accepted.moment == "2026-11-28T11:15:30.123Z"


def test_timestamps_are_written_at_a_fixed_width_whatever_the_offset_or_the_year() -> None:
    """iso writes UTC to the millisecond, four-digit years too, so the text sorts as time."""
    # given
    paris = timezone(timedelta(hours=1))

    # when
    written = [
        iso(datetime(2026, 11, 28, 13, 0, 0, 999999, tzinfo=paris)),
        iso(datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC)),
    ]

    # then
    assert written == ["2026-11-28T12:00:00.999Z", "0999-01-02T03:04:05.000Z"]
