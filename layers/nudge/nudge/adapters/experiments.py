"""Experiment records in the table: each person's assignments, and the counters reports read.

Every count is a transaction of two writes: the fact that makes it happen once (the
assignment item, its conversion mark, or a fire's ``COUNTED#<measure>`` item) with its
condition, and the ``ADD`` to the counter. Either both happen or neither does, so a
redelivered stream batch or a retried send finds the fact in place and counts nothing
again: exact counts, not at-least-once ones. A transaction bills two write units per
item (four per count); bench/README.md says what that comes to per event.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from nudge.adapters import keys
from nudge.adapters.aws_errors import aws_call
from nudge.adapters.store import from_attributes, to_attributes
from nudge.domain.experiments.attribution import Assignment
from nudge.domain.experiments.counts import CountedUnder, Measure, Tally, counts_of, merge
from nudge.domain.person import PersonId
from nudge.domain.timefmt import iso
from nudge.service.ports import Conflict, Unavailable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = ["ExperimentStore"]

# An assignment item outlives its window by this much, so a late goal event finds it closed
# rather than missing (both count nothing; a closed one says why in tests and explain).
_ASSIGNMENT_KEPT = timedelta(days=7)
# A fire's counted marks: an email is opened or clicked for months; after this, a very late
# first open of an old fire would count once more. Longer than any sane reporting window.
_COUNTED_KEPT = timedelta(days=400)
_CONFLICT_RETRIES = 4


class ExperimentStore:
    def __init__(self, client: DynamoDBClient, table_name: str) -> None:
        self._client = client
        self._table = table_name

    # ---- assignments ---------------------------------------------------------------------

    def assign(self, person: PersonId, assignment: Assignment) -> bool:
        """Opens the assignment and counts it, unless one of theirs in that experiment
        version is still open then. True when it was opened now."""
        key = keys.assignment_key(person, assignment.trigger, assignment.version)
        item = {
            **key,
            "kind": keys.ASSIGNMENT_KIND,
            **_assignment_attributes(assignment),
            "expires_at": int((assignment.until + _ASSIGNMENT_KEPT).timestamp()),
        }
        put = {
            "Put": {
                "TableName": self._table,
                "Item": to_attributes(item),
                "ConditionExpression": "attribute_not_exists(pk) OR #until <= :since",
                "ExpressionAttributeNames": {"#until": "until"},
                "ExpressionAttributeValues": {":since": {"S": iso(assignment.since)}},
            }
        }
        counter = self._add(assignment, person, assignment.since, {"assigned": 1})
        return self._transact([put, counter], "opening an assignment")

    def assignments(self, persons: Iterable[PersonId]) -> list[tuple[PersonId, Assignment]]:
        found = []
        for person in dict.fromkeys(persons):
            for item in self._query(keys.person_pk(person), keys.ASSIGNMENT_SK_PREFIX):
                found.append((person, _assignment_from(item)))
        return found

    def convert(
        self, person: PersonId, assignment: Assignment, event_seq: int, value: float, at: datetime
    ) -> bool:
        """Counts one goal event for an open assignment: the conversion the first time, the
        value every time. ``event_seq`` grows with each of the person's events (the stream's
        sequence number), so a redelivered event counts nothing twice. False when it was
        counted before, or the assignment is no longer the one read (closed, replaced)."""
        if self._convert(person, assignment, event_seq, value, at, first=not assignment.converted):
            return True
        if assignment.converted:
            return False
        # Read before another goal event converted it (under another identity, in another
        # batch): this event still brings its value, as a later goal event would.
        return self._convert(person, assignment, event_seq, value, at, first=False)

    def _convert(
        self,
        person: PersonId,
        assignment: Assignment,
        event_seq: int,
        value: float,
        at: datetime,
        *,
        first: bool,
    ) -> bool:
        """One attempt, conditioned on the stored ``converted`` being what ``first`` says:
        two readers of an unconverted assignment cannot both count the conversion."""
        if not first and value == 0:
            return False  # nothing to add
        key = keys.assignment_key(person, assignment.trigger, assignment.version)
        mark = {
            "Update": {
                "TableName": self._table,
                "Key": to_attributes(key),
                "UpdateExpression": "SET converted = :yes, goal_seq = :seq ADD revenue :value",
                "ConditionExpression": (
                    "#since = :since AND #until > :at AND converted = :was"
                    " AND (attribute_not_exists(goal_seq) OR goal_seq < :seq)"
                ),
                "ExpressionAttributeNames": {"#since": "since", "#until": "until"},
                "ExpressionAttributeValues": {
                    ":yes": {"BOOL": True},
                    ":was": {"BOOL": not first},
                    ":seq": {"N": str(event_seq)},
                    ":value": {"N": _decimal(value)},
                    ":since": {"S": iso(assignment.since)},
                    ":at": {"S": iso(at)},
                },
            }
        }
        counts: dict[Measure, float] = {"revenue": value}
        if first:
            counts["converted"] = 1
        counter = self._add(assignment, person, at, counts)
        return self._transact([mark, counter], "counting a conversion")

    # ---- fires: sent, opened, clicked ... once each ----------------------------------------

    def count_fire(self, fire_id: str, measure: Measure, under: CountedUnder, at: datetime) -> bool:
        """Counts ``measure`` for the fire, once: False when it was counted before. The mark
        remembers where it was counted, so the fire's opens and clicks count there too."""
        mark = {
            **keys.counted_key(fire_id, measure),
            "kind": keys.COUNTED_KIND,
            "trigger": under.trigger,
            "version": under.version,
            "arm": under.arm,
            "at": iso(at),
            "expires_at": int((at + _COUNTED_KEPT).timestamp()),
        }
        put = {
            "Put": {
                "TableName": self._table,
                "Item": to_attributes(mark),
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }
        key = keys.counter_key(
            under.trigger, under.version, under.arm, _day(at), keys.counter_shard(fire_id)
        )
        counter = self._counter_update(key, {measure: 1})
        return self._transact([put, counter], f"counting a fire {measure}")

    def sent_as(self, fire_id: str) -> CountedUnder | None:
        with aws_call("reading where a fire was counted"):
            response = self._client.get_item(
                TableName=self._table, Key=to_attributes(keys.counted_key(fire_id, "sent"))
            )
        if "Item" not in response:
            return None
        item = from_attributes(response["Item"])
        return CountedUnder(str(item["trigger"]), str(item["version"]), str(item["arm"]))

    # ---- reading the counters ----------------------------------------------------------------

    def tallies(self, trigger: str, version: str) -> list[Tally]:
        """Every day of every arm of one version of a trigger's experiment."""
        rows = [
            Tally(*keys.counter_parts(item["sk"]), counts=counts_of(item))
            for item in self._query(keys.counter_partition(trigger), f"{version}#")
        ]
        return merge(rows)

    # ---- internals -------------------------------------------------------------------------

    def _add(
        self,
        assignment: Assignment,
        person: PersonId,
        at: datetime,
        counts: Mapping[Measure, float],
    ) -> dict[str, Any]:
        key = keys.counter_key(
            assignment.trigger,
            assignment.version,
            assignment.arm,
            _day(at),
            keys.counter_shard(str(person)),
        )
        return self._counter_update(key, counts)

    def _counter_update(
        self, key: Mapping[str, str], counts: Mapping[Measure, float]
    ) -> dict[str, Any]:
        names = {f"#m{index}": measure for index, measure in enumerate(counts)}
        values: dict[str, Any] = {
            f":m{index}": {"N": _decimal(amount)} for index, amount in enumerate(counts.values())
        }
        values[":kind"] = {"S": keys.COUNTER_KIND}
        adds = ", ".join(f"#m{index} :m{index}" for index in range(len(counts)))
        return {
            "Update": {
                "TableName": self._table,
                "Key": to_attributes(key),
                "UpdateExpression": f"SET kind = :kind ADD {adds}",
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
            }
        }

    def _transact(self, items: list[dict[str, Any]], doing: str) -> bool:
        """True when the transaction wrote; False when a condition refused it. A conflict
        with a concurrent transaction on the same counter is tried again a few times."""
        for attempt in range(_CONFLICT_RETRIES):
            try:
                with aws_call(doing):
                    self._client.transact_write_items(TransactItems=items)  # type: ignore[arg-type]
            except Conflict:
                return False
            except Unavailable:
                if attempt == _CONFLICT_RETRIES - 1:
                    raise
                time.sleep(0.02 * 2**attempt)
                continue
            return True
        raise AssertionError("unreachable")

    def _query(self, pk: str, prefix: str) -> list[dict[str, Any]]:
        paginator = self._client.get_paginator("query")
        pages = paginator.paginate(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={":pk": {"S": pk}, ":prefix": {"S": prefix}},
        )
        with aws_call("reading experiment records"):
            return [from_attributes(raw) for page in pages for raw in page.get("Items", [])]


def _assignment_attributes(assignment: Assignment) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "trigger": assignment.trigger,
        "version": assignment.version,
        "arm": assignment.arm,
        "since": iso(assignment.since),
        "until": iso(assignment.until),
        "goal": assignment.goal,
        "converted": assignment.converted,
    }
    if assignment.value_path:
        attributes["value_path"] = assignment.value_path
    return attributes


def _assignment_from(item: Mapping[str, Any]) -> Assignment:
    return Assignment(
        trigger=str(item["trigger"]),
        version=str(item["version"]),
        arm=str(item["arm"]),
        since=datetime.fromisoformat(str(item["since"])),
        until=datetime.fromisoformat(str(item["until"])),
        goal=str(item["goal"]),
        value_path=item.get("value_path"),
        converted=bool(item.get("converted")),
    )


def _day(at: datetime) -> date:
    return at.astimezone(UTC).date()


def _decimal(amount: float) -> str:
    """A number as DynamoDB takes it: ints as ints, floats without binary noise."""
    if float(amount).is_integer():
        return str(int(amount))
    return str(Decimal(repr(float(amount))))
