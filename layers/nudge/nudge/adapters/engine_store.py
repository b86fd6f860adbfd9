"""What the trigger engine keeps in the table: timers, the fire ledger, fires, decisions."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from nudge.adapters import keys
from nudge.adapters.aws_errors import aws_call
from nudge.adapters.packing import (
    DECISIONS_PACKED,
    FIRE_PACKED,
    decisions_held,
    fire_record,
    pack_with_dictionary,
)
from nudge.adapters.store import delete_if, from_attributes, put_if, to_attributes
from nudge.domain.messages import FireMessage
from nudge.domain.person import PersonId
from nudge.domain.timefmt import iso
from nudge.domain.triggers.actions import Decision, Pending  # data only: Send builds this too
from nudge.service.ports import Claim, Conflict, LedgerEntry, Unavailable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from nudge.domain.triggers.model import Reentry

__all__ = ["Claim", "EngineStore", "LedgerEntry"]

_BATCH = 25
_RECORD_FIELDS = ("trigger", "outcome", "reason", "at", "occurrence", "person", "arm", "step")
_TTL_MARGIN = timedelta(days=1)  # TTL is a floor, and clocks differ


class EngineStore:
    def __init__(self, client: DynamoDBClient, table_name: str, decision_ttl: timedelta) -> None:
        self._client = client
        self._table = table_name
        self._decision_ttl = decision_ttl

    # ---- timers ----------------------------------------------------------------------

    def save_timer(self, timer: Pending, schedule: str, replacing: str | None = None) -> bool:
        """False when the occurrence already has a timer (the first one stands). With
        ``replacing``, a journey moving on: the item is rewritten only while it still
        holds that schedule (else another delivery moved the journey on first)."""
        condition = "attribute_not_exists(pk) OR #schedule = :schedule"
        values = {":schedule": {"S": schedule}}
        if replacing is not None:
            condition = "#schedule = :replacing OR #schedule = :schedule"
            values[":replacing"] = {"S": replacing}
        return put_if(
            self._client,
            self._table,
            self._timer_item(timer, schedule),
            condition,
            values=values,
            names={"#schedule": "schedule"},
        )

    def _timer_item(self, timer: Pending, schedule: str) -> dict[str, Any]:
        arm = {"arm": timer.arm} if timer.arm else {}
        step = {"step": timer.step} if timer.step is not None else {}
        return {
            **arm,
            **step,
            **keys.timer_key(timer.person, timer.trigger, timer.occurrence),
            "kind": keys.TIMER_KIND,
            "trigger": timer.trigger,
            "occurrence": timer.occurrence,
            "due": iso(timer.due),
            "timer_kind": timer.kind,
            "schedule": schedule,
            "entry": json.dumps(timer.entry, ensure_ascii=False, separators=(",", ":")),
        }

    def delete_timer(self, timer: Pending, schedule: str | None = None) -> None:
        """Deletes the occurrence's timer; with ``schedule``, only while it holds that one
        (a journey that moved on keeps its newer timer)."""
        key = keys.timer_key(timer.person, timer.trigger, timer.occurrence)
        if schedule is None:
            with aws_call("deleting a timer"):
                self._client.delete_item(TableName=self._table, Key=to_attributes(key))
            return
        delete_if(
            self._client,
            self._table,
            key,
            "#schedule = :schedule",
            values={":schedule": {"S": schedule}},
            names={"#schedule": "schedule"},
        )

    def timers(self, persons: Iterable[PersonId]) -> list[tuple[Pending, str]]:
        """Pending timers under these persons' partitions, with their schedule names."""
        found = []
        for person in persons:
            for item in self._query(person, keys.TIMER_SK_PREFIX):
                timer = Pending(
                    trigger=item["trigger"],
                    person=person,
                    occurrence=item["occurrence"],
                    due=datetime.fromisoformat(item["due"]),
                    kind=item["timer_kind"],
                    entry=json.loads(item["entry"]),
                    arm=item.get("arm"),
                    step=item.get("step"),
                )
                found.append((timer, str(item["schedule"])))
        return found

    # ---- the fire ledger: one conditional write decides ------------------------------

    def claim(
        self,
        person: PersonId,
        trigger: str,
        occurrence: str,
        fire_id: str,
        at: datetime,
        reentry: Reentry,
    ) -> tuple[Claim, LedgerEntry | None]:
        per_occurrence = reentry.mode == "every_time"
        key = keys.ledger_key(person, trigger, occurrence if per_occurrence else None)
        item = {
            **key,
            "kind": keys.LEDGER_KIND,
            "fire_id": fire_id,
            "occurrence": occurrence,
            "fired_at": iso(at),
            "enqueued": False,
            **self._ledger_expiry(at, reentry),
        }
        condition = "attribute_not_exists(pk)"
        values: dict[str, Any] = {}
        if reentry.mode == "once_per" and reentry.period is not None:
            condition += " OR (fired_at < :cutoff AND fire_id <> :fire)"
            values = {":cutoff": {"S": iso(at - reentry.period)}, ":fire": {"S": fire_id}}
        if put_if(self._client, self._table, item, condition, values):
            return "new", None
        existing = self._ledger(key)
        if existing is None:  # removed in between: decide again next delivery
            raise Conflict(f"fire ledger for {trigger} changed while deciding")
        if existing.fire_id != fire_id:
            return "blocked", existing
        handed_on = existing.enqueued or self._fire_saved(person, trigger, existing)
        return ("duplicate" if handed_on else "resume"), existing

    def _fire_saved(self, person: PersonId, trigger: str, entry: LedgerEntry) -> bool:
        """Whether the claimed fire's record was saved: it is written once the fire is on
        the send queue, so it says the fire was handed on, with no mark of its own."""
        key = keys.fire_key(person, entry.fired_at, trigger, entry.occurrence)
        with aws_call("reading a fire record"):
            response = self._client.get_item(
                TableName=self._table,
                Key=to_attributes(key),
                ConsistentRead=True,
                ProjectionExpression="pk",
            )
        return "Item" in response

    def _ledger_expiry(self, at: datetime, reentry: Reentry) -> dict[str, int]:
        """When the ledger entry may go (DynamoDB's TTL deletes it some time after):
        ``once`` never; ``once_per`` when the period is over, when it blocks nothing any
        more; ``every_time`` with the decision records, long after any redelivery of the
        same occurrence could come (stream 24 h, Scheduler 24 h, SQS 4 days)."""
        if reentry.mode == "once_per" and reentry.period is not None:
            return {"expires_at": int((at + reentry.period + _TTL_MARGIN).timestamp())}
        if reentry.mode == "every_time":
            return {"expires_at": int((at + self._decision_ttl).timestamp())}
        return {}

    def mark_enqueued(
        self, person: PersonId, trigger: str, occurrence: str, reentry: Reentry
    ) -> None:
        per_occurrence = reentry.mode == "every_time"
        key = keys.ledger_key(person, trigger, occurrence if per_occurrence else None)
        with aws_call("marking a fire enqueued"):
            self._client.update_item(
                TableName=self._table,
                Key=to_attributes(key),
                UpdateExpression="SET enqueued = :yes",
                ExpressionAttributeValues={":yes": {"BOOL": True}},
            )

    def _ledger(self, key: dict[str, str]) -> LedgerEntry | None:
        with aws_call("reading the fire ledger"):
            response = self._client.get_item(
                TableName=self._table, Key=to_attributes(key), ConsistentRead=True
            )
        if "Item" not in response:
            return None
        item = from_attributes(response["Item"])
        return LedgerEntry(
            item["fire_id"], item["occurrence"], item["fired_at"], bool(item.get("enqueued"))
        )

    # ---- fires and decisions, for delivery, explain and the local stack ---------------

    def save_fire(self, fire: FireMessage) -> None:
        key = keys.fire_key(fire.person, fire.fired_at, fire.trigger, str(fire.occurrence))
        # A fire item is a record for explain and the outbox: kept as long as the decisions.
        expires = datetime.fromisoformat(fire.fired_at) + self._decision_ttl
        # Packed: the record carries its entry event and passed 1 KB (two write units) as text.
        item = {
            **key,
            "kind": keys.FIRE_KIND,
            FIRE_PACKED: pack_with_dictionary(fire.to_record()),
            "expires_at": int(expires.timestamp()),
        }
        with aws_call("saving a fire"):
            self._client.put_item(TableName=self._table, Item=to_attributes(item))

    def fires(self, persons: Iterable[PersonId]) -> list[dict[str, Any]]:
        found = [
            fire_record(item)
            for person in persons
            for item in self._query(person, keys.FIRE_SK_PREFIX)
        ]
        return sorted(found, key=lambda fire: str(fire.get("firedAt")))

    def save_decisions(self, decisions: Sequence[Decision]) -> None:
        """Decision records, 25 items to a request: a person's decisions saved together (a
        stream batch's, a send batch's) share an item: an event often decides several
        triggers at once, and every item costs a write unit."""
        items = [self._decision_item(together) for together in _by_person(decisions)]
        for start in range(0, len(items), _BATCH):
            pending: list[Any] = [
                {"PutRequest": {"Item": item}} for item in items[start : start + _BATCH]
            ]
            for _ in range(8):
                with aws_call("saving decision records"):
                    response = self._client.batch_write_item(RequestItems={self._table: pending})
                pending = list((response.get("UnprocessedItems") or {}).get(self._table, []))
                if not pending:
                    break
            else:
                raise Unavailable("DynamoDB kept refusing decision records")

    def decisions(self, persons: Iterable[PersonId]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = [
            record
            for person in persons
            for item in self._query(person, keys.DECISION_SK_PREFIX)
            for record in _decision_records(item)
        ]
        return sorted(found, key=lambda decision: str(decision.get("at")))

    def _decision_item(self, together: Sequence[Decision]) -> dict[str, Any]:
        first = together[0]
        at = iso(first.at)
        latest = max(decision.at for decision in together)
        key = keys.decision_key(first.person, at, first.trigger, uuid.uuid4().hex[:8])
        item: dict[str, Any] = {
            **key,
            "kind": keys.DECISION_KIND,
            "person": str(first.person),
            "at": at,
            "expires_at": int((latest + self._decision_ttl).timestamp()),
        }
        if len(together) == 1:
            item.update(_decision_fields(first))
        else:
            item[DECISIONS_PACKED] = pack_with_dictionary(
                [{**_decision_fields(decision), "at": iso(decision.at)} for decision in together]
            )
        return to_attributes(item)

    def _query(self, person: PersonId, prefix: str) -> Iterator[dict[str, Any]]:
        paginator = self._client.get_paginator("query")
        pages = paginator.paginate(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={
                ":pk": {"S": keys.person_pk(person)},
                ":prefix": {"S": prefix},
            },
        )
        with aws_call("querying a person's items"):
            for page in pages:
                for raw in page.get("Items", []):
                    yield from_attributes(raw)


def _by_person(decisions: Sequence[Decision]) -> list[list[Decision]]:
    """Decisions grouped by person, in the order they were taken."""
    grouped: dict[PersonId, list[Decision]] = {}
    for decision in decisions:
        grouped.setdefault(decision.person, []).append(decision)
    return list(grouped.values())


def _decision_fields(decision: Decision) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "trigger": decision.trigger,
        "outcome": decision.outcome,
        "reason": decision.reason,
    }
    if decision.occurrence is not None:
        fields["occurrence"] = decision.occurrence
    if decision.arm is not None:
        fields["arm"] = decision.arm
    if decision.step is not None:
        fields["step"] = decision.step
    return fields


def _decision_records(item: dict[str, Any]) -> list[dict[str, Any]]:
    """The decisions an item holds, each with its person and time."""
    return [
        {name: record[name] for name in _RECORD_FIELDS if name in record}
        | {"person": item["person"], "at": record.get("at", item["at"])}
        for record in decisions_held(item)
    ]
