"""A profile past its ``expires_at`` that DynamoDB's TTL has not deleted yet (it takes up to a
few days) is no one's to Evaluate: the person starts afresh, as they would once it is
deleted, so a decision does not depend on when the deletion ran. The backtest, which has no
TTL, forgets the profile at the same moment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from nudge.adapters import keys
from nudge.adapters.store import EventStore, to_attributes
from nudge.domain.person import PersonId

from local.template import Template
from tests.integration._equivalence import Sent, backtested, live, per_day
from tests.integration._harness import NOW, Aws, Invoke, Stream, beacon

TRIGGER = "vip_checkout_call"  # audience: traits.tier is vip
ADA = PersonId.user("ada")
SECOND = timedelta(seconds=1)
DAY = timedelta(days=1)


def _identify_vip(at: datetime) -> dict[str, Any]:
    return {
        "type": "identify",
        "userId": "ada",
        "messageId": f"identify-{at.isoformat()}",
        "timestamp": at.isoformat(),
        "traits": {"email": "ada@example.com", "tier": "vip"},
    }


def _checkout(at: datetime) -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Checkout Started",
        "userId": "ada",
        "messageId": f"checkout-{at.isoformat()}",
        "timestamp": at.isoformat(),
        "properties": {"cart_id": "c1"},
    }


def _decided(ingest: Invoke, stream: Stream, message: dict[str, Any], at: datetime) -> None:
    """Ingest receives the message at ``at``; Evaluate decides it then (the stream's time)."""
    response = ingest(beacon("batch", {"batch": [message]}, at=at))
    assert response["statusCode"] == 200, response
    records = stream.read()
    for record in records:
        record["dynamodb"]["ApproximateCreationDateTime"] = int(at.timestamp())
    assert stream.deliver(records) == [{"batchItemFailures": []}]


def _profile_item(aws: Aws) -> dict[str, Any]:
    key = to_attributes(keys.profile_key(ADA))
    item: dict[str, Any] = aws.dynamodb.get_item(TableName=aws.table, Key=key)["Item"]
    return item


def _vip_calls_armed(aws: Aws) -> int:
    group = aws.environment("Evaluate")["NUDGE_SCHEDULE_GROUP"]
    names = [s["Name"] for s in aws.scheduler.list_schedules(GroupName=group)["Schedules"]]
    return sum(1 for name in names if TRIGGER in name)


@pytest.fixture
def vip_expires(aws: Aws, ingest: Invoke, stream: Stream) -> datetime:
    """ada identified as a VIP at NOW; when her profile expires (its stored expires_at)."""
    _decided(ingest, stream, _identify_vip(NOW), NOW)
    return datetime.fromtimestamp(int(_profile_item(aws)["expires_at"]["N"]), UTC)


def test_a_profile_past_its_expiry_still_in_the_table_is_not_used(
    aws: Aws, ingest: Invoke, stream: Stream, vip_expires: datetime
):
    """A VIP's Checkout Started decided when her profile's expires_at has come, the profile
    still stored, is a new person's: no tier, no call armed, counts from one."""
    # given: the profile is still in the table (nothing has deleted it)
    assert _profile_item(aws)["kind"] == {"S": "profile"}
    # when
    _decided(ingest, stream, _checkout(vip_expires), vip_expires)
    # then
    assert _vip_calls_armed(aws) == 0
    profile = EventStore(aws.dynamodb, aws.table).load_profiles([ADA])[ADA]
    assert (profile.traits, profile.events) == ({}, 1)


def test_a_profile_a_second_before_its_expiry_is_used(
    aws: Aws, ingest: Invoke, stream: Stream, vip_expires: datetime
):
    """The same Checkout Started a second before the profile expires sees the VIP: the
    call is armed, and the profile continues."""
    # given: the vip_expires fixture
    at = vip_expires - SECOND
    # when
    _decided(ingest, stream, _checkout(at), at)
    # then
    assert _vip_calls_armed(aws) == 1
    profile = EventStore(aws.dynamodb, aws.table).load_profiles([ADA])[ADA]
    assert (profile.traits["tier"], profile.events) == ("vip", 2)


def test_the_live_path_and_the_backtest_forget_an_expired_profile_alike(
    template: Template, boto_session: boto3.Session
):
    """A VIP checking out a month on is called by both; back after her profile has expired
    (100 days after that), she is a new person to both, and is not called."""
    # given
    month, later = NOW + 30 * DAY, NOW + 130 * DAY
    sent = [
        Sent(NOW, _identify_vip(NOW)),
        Sent(month, _checkout(month)),
        Sent(later, _checkout(later)),
    ]
    until = later + DAY
    # when
    live_days = per_day(live(template, boto_session, sent, TRIGGER, until), until)
    backtest_days = backtested(sent, TRIGGER)
    # then
    assert live_days == backtest_days == {month.date().isoformat(): 1}
