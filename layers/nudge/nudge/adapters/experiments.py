"""Experiment records in the table: each person's assignments, and the counts reports read.

Each count is two plain writes, in this order: the fact that makes it happen once (the
assignment item, its conversion mark, or a fire's ``COUNTED#<measure>`` item), written with
its condition, then the count itself, an item of its own under a key only that count has
(``keys.tally_key``), written unconditionally. A redelivered stream batch or a retried send
finds the fact in place: the condition refuses it, and the refusal hands back the item in
place (``ReturnValuesOnConditionCheckFailure``), which says whether that fact was this very
count's. If it was (the process died between the two writes), the count is written again,
which changes nothing if it was there. So counts are exact, at one write unit each for the
fact and the count, where a two-item transaction bills four.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from nudge.adapters import keys
from nudge.adapters.aws_errors import aws_call
from nudge.adapters.store import from_attributes, to_attributes
from nudge.domain.experiments.attribution import Assignment
from nudge.domain.experiments.counts import MEASURES, CountedUnder, Measure, Tally, counts_of, merge
from nudge.domain.person import PersonId
from nudge.domain.timefmt import iso
from nudge.service.ports import Conflict

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

__all__ = ["ExperimentStore"]

# An assignment item outlives its window by this much, so a late goal event finds it closed
# rather than missing (both count nothing; a closed one says why in tests and explain).
_ASSIGNMENT_KEPT = timedelta(days=7)
# A fire's counted marks: an email is opened or clicked for months; after this, a very late
# first open of an old fire would count once more. Longer than any sane reporting window.
_COUNTED_KEPT = timedelta(days=400)


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
        in_place = self._put_unless_refused(
            item,
            "attribute_not_exists(pk) OR #until <= :since",
            {"#until": "until"},
            {":since": {"S": iso(assignment.since)}},
            "opening an assignment",
        )
        if in_place is not None and not _same_opening(in_place, assignment):
            return False  # another assignment of theirs is open
        self._count(
            CountedUnder(assignment.trigger, assignment.version, assignment.arm),
            assignment.since,
            "assigned",
            _opening(person, assignment),
        )
        return in_place is None

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
        goal = _Goal(person, assignment, event_seq, value, at)
        outcome = self._convert(goal, first=not assignment.converted)
        if outcome != "refused" or assignment.converted:
            return outcome == "counted"
        # Read before another goal event converted it (under another identity, in another
        # batch): this event still brings its value, as a later goal event would.
        return self._convert(goal, first=False) == "counted"

    def _convert(self, goal: _Goal, *, first: bool) -> str:
        """One attempt, conditioned on the stored ``converted`` being what ``first`` says:
        two readers of an unconverted assignment cannot both count the conversion.
        "counted", "replayed" (this event was counted before: its counts are written
        again) or "refused"."""
        if not first and goal.value == 0:
            return "refused"  # nothing to add
        assignment = goal.assignment
        sets = "converted = :yes, goal_seq = :seq" + (", converted_seq = :seq" if first else "")
        in_place = self._update_unless_refused(
            keys.assignment_key(goal.person, assignment.trigger, assignment.version),
            f"SET {sets} ADD revenue :value",
            "#since = :since AND #until > :at AND converted = :was"
            " AND (attribute_not_exists(goal_seq) OR goal_seq < :seq)",
            {"#since": "since", "#until": "until"},
            {
                ":yes": {"BOOL": True},
                ":was": {"BOOL": not first},
                ":seq": {"N": str(goal.event_seq)},
                ":value": {"N": _decimal(goal.value)},
                ":since": {"S": iso(assignment.since)},
                ":at": {"S": iso(goal.at)},
            },
            "counting a conversion",
        )
        if in_place is None:
            self._count_goal(goal, converted=first)
            return "counted"
        if _same_goal(in_place, goal):
            self._count_goal(goal, converted=in_place.get("converted_seq") == goal.event_seq)
            return "replayed"
        return "refused"

    def _count_goal(self, goal: _Goal, *, converted: bool) -> None:
        assignment = goal.assignment
        under = CountedUnder(assignment.trigger, assignment.version, assignment.arm)
        opening = _opening(goal.person, assignment)
        if converted:
            self._count(under, goal.at, "converted", opening)
        if goal.value:
            self._count(under, goal.at, "revenue", f"{opening}#{goal.event_seq}", goal.value)

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
        in_place = self._put_unless_refused(
            mark, "attribute_not_exists(pk)", None, None, f"counting a fire {measure}"
        )
        if in_place is None:
            self._count(under, at, measure, fire_id)
            return True
        # Counted before, perhaps by a try that died before its count was written: written
        # again where and when the mark says (a second open costs that one write).
        self._count(
            _counted_under(in_place), datetime.fromisoformat(str(in_place["at"])), measure, fire_id
        )
        return False

    def sent_as(self, fire_id: str) -> CountedUnder | None:
        with aws_call("reading where a fire was counted"):
            response = self._client.get_item(
                TableName=self._table, Key=to_attributes(keys.counted_key(fire_id, "sent"))
            )
        if "Item" not in response:
            return None
        return _counted_under(from_attributes(response["Item"]))

    # ---- reading the counts ------------------------------------------------------------------

    def tallies(self, trigger: str, version: str) -> list[Tally]:
        """Every day of every arm of one version of a trigger's experiment. Summed in
        decimal, as DynamoDB's ADD summed the counters: revenue of 0.1 and 0.2 is 0.3."""
        summed: dict[tuple[str, str, date], dict[Measure, Decimal]] = {}
        for item in self._query(keys.counter_partition(trigger), f"{version}#"):
            counted_version, arm, day, measure = keys.tally_parts(item["sk"])
            counts = summed.setdefault((counted_version, arm, day), {})
            for counted, amount in _counts(item, measure).items():
                counts[counted] = counts.get(counted, Decimal(0)) + amount
        return merge(
            Tally(counted_version, arm, day, {m: float(amount) for m, amount in counts.items()})
            for (counted_version, arm, day), counts in summed.items()
        )

    # ---- internals -------------------------------------------------------------------------

    def _count(
        self, under: CountedUnder, at: datetime, measure: Measure, counted: str, value: float = 1
    ) -> None:
        key = keys.tally_key(under.trigger, under.version, under.arm, _day(at), measure, counted)
        item: dict[str, Any] = {**key, "kind": keys.COUNTER_KIND}
        if measure == "revenue":
            item["v"] = Decimal(_decimal(value))
        with aws_call(f"counting {measure}"):
            self._client.put_item(TableName=self._table, Item=to_attributes(item))

    def _put_unless_refused(
        self,
        item: Mapping[str, Any],
        condition: str,
        names: Mapping[str, str] | None,
        values: Mapping[str, Any] | None,
        doing: str,
    ) -> dict[str, Any] | None:
        """None when the item was written; the item in place when the condition refused."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "Item": to_attributes(item),
            "ConditionExpression": condition,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        if names:
            request["ExpressionAttributeNames"] = dict(names)
        if values:
            request["ExpressionAttributeValues"] = dict(values)
        try:
            with aws_call(doing):
                self._client.put_item(**request)
        except Conflict as refused:
            return _item_in_place(refused)
        return None

    def _update_unless_refused(
        self,
        key: Mapping[str, str],
        update: str,
        condition: str,
        names: Mapping[str, str],
        values: Mapping[str, Any],
        doing: str,
    ) -> dict[str, Any] | None:
        """None when the item was updated; the item in place when the condition refused."""
        try:
            with aws_call(doing):
                self._client.update_item(
                    TableName=self._table,
                    Key=to_attributes(key),
                    UpdateExpression=update,
                    ConditionExpression=condition,
                    ExpressionAttributeNames=dict(names),
                    ExpressionAttributeValues=dict(values),
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
        except Conflict as refused:
            return _item_in_place(refused)
        return None

    def _query(self, pk: str, prefix: str) -> list[dict[str, Any]]:
        paginator = self._client.get_paginator("query")
        pages = paginator.paginate(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={":pk": {"S": pk}, ":prefix": {"S": prefix}},
        )
        with aws_call("reading experiment records"):
            return [from_attributes(raw) for page in pages for raw in page.get("Items", [])]


@dataclass(frozen=True)
class _Goal:
    """A goal event for an assignment: its ordinal in the person's stream, value and time."""

    person: PersonId
    assignment: Assignment
    event_seq: int
    value: float
    at: datetime


def _item_in_place(refused: Conflict) -> dict[str, Any]:
    """The item a refused conditional write found (DynamoDB returns it with the error when
    asked; empty when there was none, as for an update of a missing item)."""
    response = getattr(refused.__cause__, "response", None) or {}
    return from_attributes(response.get("Item", {}))


def _opening(person: PersonId, assignment: Assignment) -> str:
    """What identifies one assignment of one person: its counts' key."""
    return f"{person}#{iso(assignment.since)}"


def _same_opening(item: Mapping[str, Any], assignment: Assignment) -> bool:
    return item.get("since") == iso(assignment.since) and item.get("arm") == assignment.arm


def _same_goal(item: Mapping[str, Any], goal: _Goal) -> bool:
    return (
        item.get("since") == iso(goal.assignment.since) and item.get("goal_seq") == goal.event_seq
    )


def _counted_under(item: Mapping[str, Any]) -> CountedUnder:
    return CountedUnder(str(item["trigger"]), str(item["version"]), str(item["arm"]))


def _counts(item: Mapping[str, Any], measure: str | None) -> dict[Measure, Decimal]:
    """A count item's one measure (revenue: its value), or an old counter's attributes."""
    if measure is None:
        return {name: Decimal(repr(amount)) for name, amount in counts_of(item).items()}
    for known in MEASURES:
        if known == measure:
            return {known: Decimal(repr(item.get("v", 1))) if known == "revenue" else Decimal(1)}
    return {}


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
