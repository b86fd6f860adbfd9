"""The Ingest function over moto: write keys, retries, identity, encodings, request cost."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from nudge import bootstrap
from nudge.domain.person import PersonId

from tests.integration._harness import NOW, WRITE_KEY, Aws, Invoke, Stream, beacon, json_body

ANON = "anon-7f3a"
USER = "user-42"


def _stored_ids(user_id: str) -> list[str]:
    return [body["messageId"] for body in bootstrap.event_store().read_person(user_id).events]


@pytest.mark.parametrize(
    "request_with_key",
    [
        pytest.param(lambda body: beacon("track", body), id="Basic auth"),
        pytest.param(
            lambda body: beacon("track", {**body, "writeKey": WRITE_KEY}, auth=None),
            id="body writeKey",
        ),
        pytest.param(
            lambda body: beacon("track", body, auth=None, query={"writeKey": WRITE_KEY}),
            id="query writeKey",
        ),
    ],
)
def test_write_key_is_accepted_from_each_place_segment_clients_send_it(
    request_with_key: Any, ingest: Invoke
):
    """The write key works as Basic auth user name, as a writeKey body field or query parameter."""
    # given
    event = request_with_key({"userId": USER, "event": "Signed Up", "messageId": "m-key"})
    # when
    response = ingest(event)
    # then
    assert response["statusCode"] == 200
    assert _stored_ids(USER) == ["m-key"]


def test_write_key_field_is_not_stored_with_the_event(ingest: Invoke):
    """A writeKey sent in the body authenticates the request and is not kept in the stored event."""
    # given
    event = beacon(
        "track", {"userId": USER, "event": "Signed Up", "writeKey": WRITE_KEY}, auth=None
    )
    # when
    ingest(event)
    # then
    (stored,) = bootstrap.event_store().read_person(USER).events
    assert "writeKey" not in stored
    assert WRITE_KEY not in json.dumps(stored)


def test_same_message_id_twice_is_stored_once_and_counted_once(
    aws: Aws, ingest: Invoke, stream: Stream
):
    """A client's retry (same messageId) overwrites its event, and the profile counts it once."""
    # given
    message = {"userId": USER, "event": "Order Completed", "messageId": "retry-me"}
    ingest(beacon("track", message, at=NOW))
    # when
    ingest(beacon("track", message, at=NOW + timedelta(seconds=5)))
    stream.drain()
    # then
    assert [item["sk"]["S"].removeprefix("E#") for item in aws.event_items()] == ["retry-me"]
    person = PersonId.user(USER)
    profile = bootstrap.event_store().load_profiles([person])[person]
    assert profile.events == 1
    assert profile.event_counts == {"Order Completed": 1}


def test_anonymous_event_after_identify_is_stored_under_the_user(ingest: Invoke):
    """Once identify links an anonymousId to a userId, the visitor's later events are the user's."""
    # given
    ingest(beacon("identify", {"userId": USER, "anonymousId": ANON, "messageId": "m-identify"}))
    # when
    ingest(
        beacon(
            "page",
            {"anonymousId": ANON, "name": "Pricing", "messageId": "m-after"},
            at=NOW + timedelta(minutes=1),
        )
    )
    # then
    assert _stored_ids(USER) == ["m-identify", "m-after"]


def test_anonymous_events_before_identify_join_the_user_once_the_stream_is_folded(
    ingest: Invoke, stream: Stream
):
    """Events sent before identifying are read with the user once the identify is folded."""
    # given
    ingest(
        beacon(
            "page",
            {"anonymousId": ANON, "name": "Home", "messageId": "m-before"},
            at=NOW - timedelta(minutes=2),
        )
    )
    ingest(beacon("identify", {"userId": USER, "anonymousId": ANON, "messageId": "m-identify"}))
    # when
    stream.drain()
    # then
    assert _stored_ids(USER) == ["m-before", "m-identify"]


def test_alias_joins_the_previous_id_to_the_user(ingest: Invoke, stream: Stream):
    """alias(previousId -> userId) makes the previous id's events read as the user's."""
    # given
    ingest(
        beacon(
            "track",
            {"anonymousId": ANON, "event": "Cart Viewed", "messageId": "m-cart"},
            at=NOW - timedelta(minutes=1),
        )
    )
    ingest(beacon("alias", {"previousId": ANON, "userId": USER, "messageId": "m-alias"}))
    # when
    stream.drain()
    ingest(
        beacon(
            "track",
            {"anonymousId": ANON, "event": "Cart Viewed", "messageId": "m-cart-2"},
            at=NOW + timedelta(minutes=1),
        )
    )
    # then
    assert _stored_ids(USER) == ["m-cart", "m-alias", "m-cart-2"]


UNICODE_PROPERTIES = {"note": "Zoë — 東京 🎉", "flag": "🇯🇵", "family": "👩‍👩‍👧", "rtl": "مرحبا"}
UNICODE_USER = "ユーザー-42"
UNICODE_EVENT = "Café ☕ ordered 🍣"


def _unicode_message() -> dict[str, Any]:
    return {"userId": UNICODE_USER, "event": UNICODE_EVENT, "properties": UNICODE_PROPERTIES}


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(
            beacon("track", raw=json.dumps(_unicode_message(), ensure_ascii=False)), id="UTF-8 text"
        ),
        pytest.param(beacon("track", raw=json.dumps(_unicode_message())), id="JSON escapes"),
        pytest.param(
            beacon("track", raw=json.dumps(_unicode_message(), ensure_ascii=False).encode()),
            id="base64",
        ),
    ],
)
def test_unicode_and_emoji_are_stored_intact(event: dict[str, Any], ingest: Invoke):
    """Non-ASCII ids, names and properties (emoji, ZWJ sequences, RTL) come back exactly as sent."""
    # given
    assert event["body"]
    # when
    response = ingest(event)
    # then
    assert json_body(response) == {"success": True}
    (stored,) = bootstrap.event_store().read_person(UNICODE_USER).events
    assert stored["userId"] == UNICODE_USER
    assert stored["event"] == UNICODE_EVENT
    assert stored["properties"] == UNICODE_PROPERTIES


def test_unicode_event_name_is_counted_in_the_profile(ingest: Invoke, stream: Stream):
    """An emoji event name is a profile counter key like any other."""
    # given
    ingest(beacon("track", _unicode_message()))
    # when
    stream.drain()
    # then
    person = PersonId.user(UNICODE_USER)
    profile = bootstrap.event_store().load_profiles([person])[person]
    assert profile.event_counts == {UNICODE_EVENT: 1}


def test_hundred_event_batch_takes_one_write_request(ingest: Invoke):
    """A batch of 100 events of 10 people (and their identity links) costs one write request."""
    # given
    calls: Counter[str] = Counter()

    def count(event_name: str, **_: Any) -> None:
        calls[event_name.rsplit(".", 1)[-1]] += 1

    bootstrap.dynamodb_client().meta.events.register("before-call.dynamodb.*", count)
    batch = [
        {
            "type": "track",
            "userId": f"user-{index % 10}",
            "anonymousId": f"anon-{index % 10}",
            "event": "Item Viewed",
            "properties": {"item": index},
        }
        for index in range(100)
    ]
    # when
    response = ingest(beacon("batch", {"batch": batch}))
    # then
    assert response["statusCode"] == 200
    # each person's ten events are one item: 10 items and 10 links, one request of 25
    assert calls == {"BatchGetItem": 1, "BatchWriteItem": 1}


# ---- a request's events for one person share an item ----------------------------------


def _browser_batch(*message_ids: str) -> dict[str, Any]:
    events = [
        {"type": "track", "userId": USER, "event": "Item Viewed", "messageId": message_id}
        for message_id in message_ids
    ]
    return beacon("batch", {"batch": events})


def _event_items(aws: Aws, user_id: str) -> list[dict[str, Any]]:
    return aws.dynamodb.query(
        TableName=aws.table,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :events)",
        ExpressionAttributeValues={":pk": {"S": f"P#u:{user_id}"}, ":events": {"S": "E#"}},
    )["Items"]


def test_a_batch_of_one_persons_events_is_stored_as_one_item(aws: Aws, ingest: Invoke):
    """Ten events of one browser cost one item (a write unit or two), not ten."""
    # when
    ingest(_browser_batch(*(f"m-{n}" for n in range(10))))
    # then
    assert len(_event_items(aws, USER)) == 1
    assert _stored_ids(USER) == [f"m-{n}" for n in range(10)]


def test_a_retried_batch_rewrites_its_item(aws: Aws, ingest: Invoke):
    """The same request sent twice is stored once: its item's key comes from its messageIds."""
    # given
    ingest(_browser_batch("m-1", "m-2"))
    # when
    ingest(_browser_batch("m-1", "m-2"))
    # then
    assert len(_event_items(aws, USER)) == 1
    assert _stored_ids(USER) == ["m-1", "m-2"]


def test_a_retry_with_newer_events_keeps_them_and_reads_each_event_once(aws: Aws, ingest: Invoke):
    """analytics.js re-queues a failed batch with newer events: the newer are kept, none twice."""
    # given
    ingest(_browser_batch("m-1", "m-2"))
    # when
    ingest(_browser_batch("m-1", "m-2", "m-3"))
    # then
    assert len(_event_items(aws, USER)) == 2
    assert sorted(_stored_ids(USER)) == ["m-1", "m-2", "m-3"]


def test_a_persons_events_past_the_group_limit_are_cut_into_items_none_lost(
    aws: Aws, ingest: Invoke
):
    """250 events of one person make three items (100, 100, 50), and every event reads back."""
    # when
    ingest(_browser_batch(*(f"m-{n:03d}" for n in range(250))))
    # then
    assert len(_event_items(aws, USER)) == 3
    assert sorted(_stored_ids(USER)) == [f"m-{n:03d}" for n in range(250)]
