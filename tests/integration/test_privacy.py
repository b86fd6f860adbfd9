"""Privacy requests on moto: a person exported, erased with everything under their
partitions, and their later events dropped by Evaluate."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from nudge import bootstrap
from nudge.service.privacy import PrivacyService

from tests.arms import shopper_in
from tests.integration._harness import NOW, Aws, Invoke, Stream, beacon

ANON = "anon-privacy-1"


@pytest.fixture
def user() -> str:
    return shopper_in("privacy")  # in an emailed arm: a cart arms a timer and a schedule


@pytest.fixture
def privacy(aws: Aws) -> PrivacyService:
    for name, value in aws.environment("Privacy").items():
        aws.monkeypatch.setenv(name, value)
    bootstrap.scheduler_client.cache_clear()
    return bootstrap.privacy_service(aws.dynamodb, aws.table)


def _send(ingest: Invoke, *messages: dict[str, Any]) -> None:
    response = ingest(beacon("batch", {"batch": list(messages)}, at=NOW))
    assert response["statusCode"] == 200, response


def _shopped(user: str, ingest: Invoke, stream: Stream) -> None:
    """A visitor signs in as ``user`` with an email and a name, then adds to a cart."""
    _send(
        ingest,
        {
            "type": "identify",
            "userId": user,
            "anonymousId": ANON,
            "messageId": "id-1",
            "timestamp": (NOW - timedelta(minutes=5)).isoformat(),
            "traits": {"email": f"{user}@example.com", "first_name": "Ada"},
        },
        {
            "type": "track",
            "userId": user,
            "anonymousId": ANON,
            "event": "Product Added",
            "messageId": "add-1",
            "timestamp": (NOW - timedelta(minutes=4)).isoformat(),
            "properties": {"cart_id": "c1", "product_id": "p1", "name": "Mug", "price": 9.5},
        },
    )
    stream.drain()


def _timer_schedules(aws: Aws) -> list[str]:
    """The one-time schedules in the timers' group (the recurring sweep lives there too)."""
    group = aws.environment("Privacy")["NUDGE_SCHEDULE_GROUP"]
    names = [s["Name"] for s in aws.scheduler.list_schedules(GroupName=group)["Schedules"]]
    return [name for name in names if not name.endswith("InactivitySweep")]


def _kinds(aws: Aws) -> list[str]:
    items = aws.dynamodb.scan(TableName=aws.table)["Items"]
    return sorted(item["kind"]["S"] for item in items if item["pk"]["S"].startswith("P#"))


def test_export_holds_the_persons_events_profile_and_decisions(
    aws: Aws, ingest: Invoke, stream: Stream, privacy: PrivacyService, user: str
):
    """Export gives every partition of the person, the visitor they were included, by kind."""
    # given
    _shopped(user, ingest, stream)

    # when
    document = privacy.export(user)

    # then
    kinds = {kind for part in document["partitions"] for kind in part["items"]}
    assert {"event", "profile", "link", "timer"} <= kinds
    persons = {part["person"] for part in document["partitions"]}
    assert persons == {f"u:{user}", f"a:{ANON}"}
    bodies = [e["body"] for part in document["partitions"] for e in part["items"].get("event", [])]
    assert {body["messageId"] for body in bodies} == {"add-1", "id-1"}


def test_forget_leaves_only_tombstones_and_cancels_the_schedules(
    aws: Aws, ingest: Invoke, stream: Stream, privacy: PrivacyService, user: str
):
    """Erasure deletes every item under the user's and the visitor's partitions, cancels the
    cart's schedule, and leaves one tombstone per partition."""
    # given
    _shopped(user, ingest, stream)
    assert aws.scheduler.list_schedules(
        GroupName=aws.environment("Privacy")["NUDGE_SCHEDULE_GROUP"]
    )["Schedules"]

    # when
    summary = privacy.forget(user, NOW)

    # then
    assert _kinds(aws) == ["tombstone", "tombstone", "tombstone"]
    assert summary["schedulesCancelled"] == 1
    assert _timer_schedules(aws) == []


def test_forgetting_twice_deletes_nothing_more(
    aws: Aws, ingest: Invoke, stream: Stream, privacy: PrivacyService, user: str
):
    """Erasure is idempotent: a second request finds only the tombstones and keeps them."""
    # given
    _shopped(user, ingest, stream)
    privacy.forget(user, NOW)

    # when
    again = privacy.forget(user, NOW)

    # then
    assert again["deleted"] == {}
    assert _kinds(aws) == ["tombstone", "tombstone", "tombstone"]


def test_a_late_event_of_a_forgotten_person_is_dropped(
    aws: Aws, ingest: Invoke, stream: Stream, privacy: PrivacyService, user: str
):
    """An event arriving after the erasure is deleted by Evaluate: no event, no profile."""
    # given
    _shopped(user, ingest, stream)
    privacy.forget(user, NOW)

    # when
    _send(
        ingest,
        {
            "type": "track",
            "userId": user,
            "event": "Page Engaged",
            "messageId": "late-1",
            "timestamp": NOW.isoformat(),
            "properties": {"active_seconds": 10},
        },
    )
    stream.drain()

    # then
    assert _kinds(aws) == ["tombstone", "tombstone", "tombstone"]
