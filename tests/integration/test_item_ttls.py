"""Which items expire, and when (DynamoDB's TTL on ``expires_at``): the ledger as long as
it can still block or dedupe something, fire records with the decisions, profiles with the
events they sum, contact records a month after the last send they mention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from nudge.adapters import keys
from nudge.adapters.contacts import CONTACT_KEPT, ContactStore
from nudge.adapters.engine_store import EngineStore
from nudge.adapters.store import EventStore, from_attributes, to_attributes
from nudge.domain.messages import FireMessage
from nudge.domain.person import PersonId
from nudge.domain.policy import ContactState
from nudge.domain.profile import Profile
from nudge.domain.triggers.model import Reentry

from tests.integration._harness import Aws

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
ADA = PersonId.user("ada")
DECISIONS_KEPT = timedelta(days=30)


def _item(aws: Aws, key: dict[str, str]) -> dict[str, Any]:
    response = aws.dynamodb.get_item(TableName=aws.table, Key=to_attributes(key))
    return from_attributes(response["Item"])


def _ledger_expiry(aws: Aws, reentry: str) -> int | None:
    store = EngineStore(aws.dynamodb, aws.table, DECISIONS_KEPT)
    rule = Reentry.model_validate(reentry)
    store.claim(ADA, "t", "o-1", "fire-1", NOW, rule)
    scope = "o-1" if rule.mode == "every_time" else None
    expires: int | None = _item(aws, keys.ledger_key(ADA, "t", scope)).get("expires_at")
    return expires


@pytest.mark.parametrize(
    ("reentry", "kept_for"),
    [
        ("once", None),
        ("once_per 7d", timedelta(days=8)),
        ("every_time", DECISIONS_KEPT),
    ],
    ids=["once: never", "once_per: the period and a day", "every_time: with the decisions"],
)
def test_a_ledger_entry_expires_when_it_can_block_nothing_more(
    aws: Aws, reentry: str, kept_for: timedelta | None
) -> None:
    """once keeps its entry for good; once_per until its period is over (and a day);
    every_time as long as decision records, long after any redelivery could come."""
    # given / when
    expires = _ledger_expiry(aws, reentry)

    # then
    assert expires == (None if kept_for is None else int((NOW + kept_for).timestamp()))


def test_a_fire_record_expires_with_the_decision_records(aws: Aws) -> None:
    """A fire item is kept as long as the decisions that explain it."""
    # given
    store = EngineStore(aws.dynamodb, aws.table, DECISIONS_KEPT)
    fire = FireMessage(
        fire_id="fire-1",
        trigger="t",
        person=ADA,
        occurrence="o-1",
        fired_at="2026-12-04T12:00:00.000Z",
        channel="email",
        template="abandoned_cart",
    )

    # when
    store.save_fire(fire)

    # then
    item = _item(aws, keys.fire_key(ADA, fire.fired_at, "t", "o-1"))
    assert item["expires_at"] == int((NOW + DECISIONS_KEPT).timestamp())


def test_a_profile_expires_after_its_persons_last_activity_plus_the_retention(aws: Aws) -> None:
    """A profile goes when the events it sums have gone: its last activity's hour, plus
    what the store is told to keep it (Evaluate: the retention, at least 91 days)."""
    # given
    store = EventStore(aws.dynamodb, aws.table, profile_kept=timedelta(days=91))
    profile = Profile(person=ADA, last_seen="2026-12-04T12:20:00.000Z")

    # when
    store.save_profiles([profile])

    # then
    expected = datetime(2026, 12, 4, 13, 0, tzinfo=UTC) + timedelta(days=91)
    assert _item(aws, keys.profile_key(ADA))["expires_at"] == int(expected.timestamp())


def test_a_contact_record_expires_a_month_after_the_last_send_it_mentions(aws: Aws) -> None:
    """The contact record is needed while its cooldowns and marks can decide a send:
    31 days after the latest moment it holds, it expires."""
    # given
    state = ContactState(
        day="2026-12-04",
        last_sent={"abandoned_cart": "2026-12-03T09:00:00+00:00"},
        fires={"fire-1": "sent@2026-12-04T12:00:00+00:00"},
    )

    # when
    ContactStore(aws.dynamodb, aws.table).save(ADA, state)

    # then
    expected = NOW + CONTACT_KEPT
    assert _item(aws, keys.contact_key(ADA))["expires_at"] == int(expected.timestamp())
