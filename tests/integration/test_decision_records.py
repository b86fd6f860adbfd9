"""Decision records on DynamoDB: a person's decisions saved together share an item."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from nudge.adapters.engine_store import EngineStore
from nudge.domain.person import PersonId
from nudge.domain.triggers.engine import Decision

from tests.integration._harness import Aws

NOW = datetime(2026, 11, 28, 10, tzinfo=UTC)
ADA = PersonId.user("ada")


def _item_count(aws: Aws) -> int:
    return len(aws.dynamodb.scan(TableName=aws.table)["Items"])


def test_decisions_saved_together_share_one_item_and_read_back_each(aws: Aws):
    # given an event that decided two triggers for ada, a later one in the same batch, and
    # bob's
    store = EngineStore(aws.dynamodb, aws.table, timedelta(days=30))
    interest = Decision("product_interest", ADA, "fired", "looked 2 min", NOW, "p=1")
    offer = Decision("product_offer", ADA, "fired", "looked 2 min", NOW, "p=1", "h24")
    later = Decision("abandoned_cart", ADA, "pending", "due at 11:00", NOW + timedelta(hours=1))
    bobs = Decision("abandoned_cart", PersonId.user("bob"), "pending", "due at 11:00", NOW)
    # when
    store.save_decisions([interest, offer, bobs, later])
    # then one item holds ada's three, one bob's, and explain's reading gives each as it was
    assert _item_count(aws) == 2
    assert store.decisions([ADA]) == [
        {
            "trigger": "product_interest",
            "outcome": "fired",
            "reason": "looked 2 min",
            "at": "2026-11-28T10:00:00.000Z",
            "occurrence": "p=1",
            "person": "u:ada",
        },
        {
            "trigger": "product_offer",
            "outcome": "fired",
            "reason": "looked 2 min",
            "at": "2026-11-28T10:00:00.000Z",
            "occurrence": "p=1",
            "person": "u:ada",
            "arm": "h24",
        },
        {
            "trigger": "abandoned_cart",
            "outcome": "pending",
            "reason": "due at 11:00",
            "at": "2026-11-28T11:00:00.000Z",
            "person": "u:ada",
        },
    ]
