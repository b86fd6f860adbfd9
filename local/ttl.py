"""DynamoDB's Time to Live on the virtual clock: moto stores the TTL setting but never
deletes anything, so a long run kept every item it ever wrote.

What AWS does, and this follows:

- An item is expired when its TTL attribute (the table's ``TimeToLiveSpecification``) is a
  top-level Number, epoch seconds, less than the current time. An item without it, with
  another type, or more than five years in the past is ignored ("Using DynamoDB Time to
  Live (TTL)", Formatting an item's TTL attribute:
  https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/time-to-live-ttl-before-you-start.html).
- Expired items are deleted in the background, "typically within a few days" (48 hours
  in the API reference), and until then reads, queries and scans still return them
  ("How it works: DynamoDB Time to Live",
  https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/howitworks-ttl.html;
  UpdateTimeToLive in the API reference).
- A deletion costs no write capacity (same pages), and it is a ``REMOVE`` record on the
  table's stream whose ``userIdentity`` is the service's ("DynamoDB Streams and Time to
  Live": ``{"type": "Service", "principalId": "dynamodb.amazonaws.com"}``,
  https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/time-to-live-ttl-streams.html;
  the Streams API spells the fields ``Type`` and ``PrincipalId``, API_streams_Identity).

Timing is the only difference: AWS picks its moment, this picks one that depends on the
virtual clock alone. A sweep runs at the top of every hour of virtual time and deletes
what expired before that hour began, so an item goes at most an hour after its TTL (AWS:
up to days), and a stepped advance (``LocalStack.advance``) deletes it at the same moment
however the clock was moved. The items are deleted inside moto, in this process, not over
its API: the meter (``local/meter.py``) never sees them, as DynamoDB bills no write.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from local.template import ACCOUNT

__all__ = [
    "SWEEP_EVERY",
    "TTL_IDENTITY",
    "TtlSweeper",
    "last_sweep",
    "sweep_moment",
    "ttl_eligible",
]

log = logging.getLogger("nudge.local")

SWEEP_EVERY = timedelta(hours=1)
# "No more than five years in the past": taken as 5 * 365 days (AWS does not say how a
# leap day counts).
OLDEST_EXPIRY = timedelta(days=5 * 365)
# The stream record's userIdentity as the DynamoDB Streams API returns it (GetRecords);
# Lambda hands it to functions with the field names lower-cased (local/sources.py).
TTL_IDENTITY = {"PrincipalId": "dynamodb.amazonaws.com", "Type": "Service"}
# How far back from a stream's end to look for the REMOVE record just appended: other
# threads (the functions' requests) may append records in between.
_RECORD_LOOKBACK = 1000


def ttl_eligible(value: Any, at: float) -> float | None:
    """The epoch seconds of a TTL attribute (moto's ``DynamoType``) the sweep at ``at``
    would act on: a finite Number no more than five years before ``at``; else None."""
    if value is None or getattr(value, "type", None) != "N":
        return None
    try:
        seconds = float(value.value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(seconds) or seconds < at - OLDEST_EXPIRY.total_seconds():
        return None
    return seconds


def sweep_moment(after: datetime) -> datetime:
    """The first sweep strictly after ``after``: the next top of the hour."""
    every = SWEEP_EVERY.total_seconds()
    start = math.floor(after.timestamp() / every) * every + every
    return datetime.fromtimestamp(start, tz=UTC)


def last_sweep(at: datetime) -> datetime:
    """The sweep at or before ``at``."""
    every = SWEEP_EVERY.total_seconds()
    return datetime.fromtimestamp(math.floor(at.timestamp() / every) * every, tz=UTC)


@dataclass
class TtlSweeper:
    """Every TTL-enabled table of moto's DynamoDB in ``region``, swept on ``now``'s clock."""

    region: str
    now: Callable[[], datetime]
    swept: datetime | None = None  # the last sweep's moment

    def poll(self) -> int:
        """Runs the sweep that is due, once; returns how many items it deleted."""
        moment = last_sweep(self.now())
        if self.swept is not None and moment <= self.swept:
            return 0
        self.swept = moment
        return self.sweep(moment)

    def sweep(self, moment: datetime) -> int:
        """Deletes every item that expired before ``moment``."""
        at = moment.timestamp()
        deleted = 0
        for table, attribute in self._tables():
            for item in list(_items(table)):
                expiry = ttl_eligible(item.attrs.get(attribute), at)
                if expiry is not None and expiry < at:
                    deleted += _delete(table, item)
        if deleted:
            log.info("TTL deleted %d expired item(s) at %s", deleted, moment.isoformat())
        return deleted

    def next_due(self, after: datetime) -> datetime | None:
        """The first sweep after ``after`` that has an item to delete; None when no item
        will ever expire. A table scan, in this process."""
        earliest: float | None = None
        at = after.timestamp()
        for table, attribute in self._tables():
            for item in _items(table):
                expiry = ttl_eligible(item.attrs.get(attribute), at)
                if expiry is not None and (earliest is None or expiry < earliest):
                    earliest = expiry
        if earliest is None:
            return None
        return sweep_moment(max(after, datetime.fromtimestamp(earliest, tz=UTC)))

    def _tables(self) -> Iterator[tuple[Any, str]]:
        from moto.dynamodb.models import dynamodb_backends

        backend = dynamodb_backends[ACCOUNT][self.region]
        for table in list(backend.tables.values()):
            ttl = getattr(table, "ttl", None) or {}
            if ttl.get("TimeToLiveStatus") == "ENABLED" and ttl.get("AttributeName"):
                yield table, str(ttl["AttributeName"])


def _items(table: Any) -> Iterator[Any]:
    """A snapshot of the table's items: the functions write to it from other threads, and
    copying a dict's values happens under the GIL in one step."""
    for partition in list(table.items.values()):
        if table.range_key_attr:
            yield from list(partition.values())
        else:
            yield partition


def _delete(table: Any, item: Any) -> int:
    """moto's own delete (its stream gets the REMOVE record), then the record marked as
    the service's. 0 if the item went in the meantime."""
    if table.delete_item(item.hash_key, item.range_key) is None:
        return 0
    shard = table.stream_shard
    if shard is not None:
        keys = {table.hash_key_attr: item.hash_key.to_json()}
        if table.range_key_attr is not None:
            keys[table.range_key_attr] = item.range_key.to_json()
        for stream_record in reversed(shard.items[-_RECORD_LOOKBACK:]):
            record = stream_record.record
            if record["eventName"] == "REMOVE" and record["dynamodb"]["Keys"] == keys:
                record.setdefault("userIdentity", dict(TTL_IDENTITY))
                break
    return 1
