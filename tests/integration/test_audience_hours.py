"""The audience's engagement by hour of the week on moto: Evaluate adds what its batches
fold, in one item, and Send's reader reads it back (cached for an hour)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from nudge.adapters import keys
from nudge.adapters.audience import READ_EVERY, AudienceStore
from nudge.adapters.store import to_attributes

from tests.integration._harness import NOW, Aws, Invoke, Stream, beacon

SATURDAY_10_UTC = 5 * 24 + 10  # NOW, 28 November 2026 10:00 UTC, is a Saturday


def _page(user: str, message_id: str) -> dict[str, Any]:
    return {"type": "page", "userId": user, "messageId": message_id, "timestamp": NOW.isoformat()}


def test_evaluate_adds_the_sessions_its_batch_started_to_the_audiences_hours(
    aws: Aws, ingest: Invoke, stream: Stream
) -> None:
    # given
    pages = [_page("ada", "p-1"), _page("bob", "p-2")]
    ingest(beacon("batch", {"batch": pages}, at=NOW))
    # when
    stream.deliver(stream.read())
    # then
    assert AudienceStore(aws.dynamodb, aws.table).hours(NOW) == {SATURDAY_10_UTC: 2}


def test_added_counts_accumulate(aws: Aws) -> None:
    # given
    store = AudienceStore(aws.dynamodb, aws.table)
    store.add({3: 1, 19: 2})
    # when
    store.add({19: 5, 200: 9, 4: 0})  # out of the week's range, and nothing: not written
    # then
    assert AudienceStore(aws.dynamodb, aws.table).hours(NOW) == {3: 1, 19: 7}


def test_the_reader_keeps_what_it_read_for_an_hour(aws: Aws) -> None:
    # given
    reader = AudienceStore(aws.dynamodb, aws.table)
    AudienceStore(aws.dynamodb, aws.table).add({3: 1})
    assert reader.hours(NOW) == {3: 1}
    AudienceStore(aws.dynamodb, aws.table).add({3: 1})
    # when
    cached = reader.hours(NOW + READ_EVERY - timedelta(seconds=1))
    fresh = reader.hours(NOW + READ_EVERY)
    # then
    assert (cached, fresh) == ({3: 1}, {3: 2})


def test_the_audience_item_holds_no_person(aws: Aws) -> None:
    """A count by hour and nothing else: nothing a privacy request would have to find."""
    # given
    AudienceStore(aws.dynamodb, aws.table).add({3: 1})
    # when
    item = aws.dynamodb.get_item(TableName=aws.table, Key=to_attributes(keys.audience_hours_key()))[
        "Item"
    ]
    # then
    assert set(item) == {"pk", "sk", "kind", "h3"}
