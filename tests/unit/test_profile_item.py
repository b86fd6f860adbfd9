"""A profile is one item written on every batch of the person's events: its free-form parts
are stored packed so it stays under the 1 KB a write unit covers."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

from nudge.adapters.store import _profile_from_item, _profile_item, from_attributes
from nudge.domain.person import PersonId
from nudge.domain.profile import Miss, Profile

from local.meter import item_size

REASONS = {
    "abandoned_cart": "traits.email exists true failed: found missing",
    "product_interest": "properties.active_seconds gt 120 failed: found 30",
    "product_offer": "properties.active_seconds gt 120 failed: found 30",
    "vip_checkout_call": "traits.tier eq vip failed: found regular",
    "re_engagement": "traits.crm_status eq inactive failed: found active",
}
SHOPPER = Profile(
    person=PersonId.user("shopper-11"),
    user_id="shopper-11",
    anonymous_ids=("0c109f7d-bd78-b0e9-ff84-74611fb7dc68",),
    traits={
        "email": "shopper-11@example.com",
        "timezone": "Europe/Berlin",
        "tier": "vip",
        "crm_status": "inactive",
    },
    first_seen="2026-12-08T04:00:00.213Z",
    last_seen="2026-12-09T09:15:00.237Z",
    session_id="u:shopper-11@2026-12-09T09:00:00.256Z",
    session_started="2026-12-09T09:00:00.256Z",
    session_pages=6,
    session_events=18,
    sessions=2,
    events=27,
    pages=8,
    event_counts={
        "Product Added": 3,
        "Product Viewed": 8,
        "Page Engaged": 4,
        "Checkout Started": 2,
        "Order Completed": 1,
    },
    applied_seq=1100000000017454423573,
    applied_index=7,
    recent_ids=bytes(range(144)),
    folded_at="2026-12-09T09:15:00.262Z",
    arms={"abandoned_cart@000bbfdb8469": "h48"},
    # Twenty hours of the week with engagement: weeks of a regular visitor's sessions.
    engaged_hours={hour: 1 + hour % 7 for hour in range(8, 168, 8)},
    misses={
        trigger: Miss.of("2026-12-09T09:15:00.262Z", "product_id=sku-104", reason)
        for trigger, reason in REASONS.items()
    },
)


def _stored(profile: Profile) -> dict[str, object]:
    return _profile_item(profile, shards=1, kept=timedelta(days=400))


def test_a_busy_shoppers_profile_stays_under_one_write_unit():
    # given a shopper with traits, five event names, an experiment arm and five triggers'
    # "why not" (the profile that cost two units when each part was an attribute)
    # then
    assert item_size(_stored(SHOPPER)) < 1024


def test_a_profile_reads_back_as_it_was_saved():
    assert _profile_from_item(from_attributes(_stored(SHOPPER))) == SHOPPER


def test_a_profile_saved_before_packing_still_reads():
    # given an item with traits, groups and misses as JSON text and counts as a map
    item = {
        "pk": "P#u:shopper-11",
        "sk": "PROFILE",
        "kind": "profile",
        "traits": json.dumps(SHOPPER.traits),
        "groups": "{}",
        "event_counts": SHOPPER.event_counts,
        "arms": SHOPPER.arms,
        "misses": json.dumps({"abandoned_cart": ["2026-12-09T09:15:00.262Z", "c1", "why"]}),
    }
    # when
    profile = _profile_from_item(item)
    # then
    assert (profile.traits, profile.event_counts, profile.arms) == (
        SHOPPER.traits,
        SHOPPER.event_counts,
        SHOPPER.arms,
    )
    assert profile.misses == {"abandoned_cart": Miss("2026-12-09T09:15:00.262Z", "c1", "why")}


SCORED = replace(
    SHOPPER,
    scores={"churn": 73, "purchase": 21},
    score_models={"churn": "20261205T2136Z", "purchase": "20261205T2140Z"},
)


def test_a_scored_profile_reads_back_with_its_scores_and_model_versions():
    """Scores and the versions of the models that gave them round-trip through the item."""
    assert _profile_from_item(from_attributes(_stored(SCORED))) == SCORED


def test_two_scores_add_under_fifty_bytes_to_a_profile():
    """The scores ride in the packed details, a score and a minute-precise model version
    each: two of them add under 50 bytes (this busy shopper, at 996 bytes without, crosses
    the 1 KB of one write unit; most profiles are far below it)."""
    assert item_size(_stored(SCORED)) - item_size(_stored(SHOPPER)) < 50
