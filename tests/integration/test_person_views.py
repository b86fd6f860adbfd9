"""The read side (`bootstrap.person_views`) on moto: what `nudge explain` and the local
stack's control API show of a person, their fires and how far delivery got.

The table is filled the way the functions fill it: beacons through Ingest, the stream
through Evaluate (product_interest fires at once on a long product view)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from nudge import bootstrap
from nudge.adapters.contacts import ContactStore
from nudge.domain.policy import ContactState

from tests.integration._harness import NOW, Aws, Invoke, Stream, beacon

EARLIER = NOW - timedelta(minutes=10)


def _viewed(product: str, message_id: str, at: datetime, **who: str) -> dict[str, Any]:
    """A product page looked at for five minutes: product_interest fires."""
    return {
        "type": "track",
        "event": "Page Engaged",
        "messageId": message_id,
        "timestamp": at.isoformat(),
        "properties": {"product_id": product, "active_seconds": 300},
        **who,
    }


def _identified(user: str, anonymous_id: str, at: datetime) -> dict[str, Any]:
    """The visitor signs in: their partition is linked to the user's."""
    return {
        "type": "identify",
        "userId": user,
        "anonymousId": anonymous_id,
        "messageId": f"identify-{user}",
        "timestamp": at.isoformat(),
        "traits": {"email": f"{user}@example.com"},
    }


def _evaluated(ingest: Invoke, stream: Stream, at: datetime, *messages: dict[str, Any]) -> None:
    """Ingested at ``at``, and decided by Evaluate at ``at`` (the stream record's time)."""
    response = ingest(beacon("batch", {"batch": list(messages)}, at=at))
    assert response["statusCode"] == 200, response
    records = stream.read()
    for record in records:
        record["dynamodb"]["ApproximateCreationDateTime"] = int(at.timestamp())
    stream.deliver(records)


def _ada_who_was_visitor_v1_and_bob(ingest: Invoke, stream: Stream) -> None:
    """Visitor v1 views p1; ten minutes later v1 signs in as ada, ada views p2, bob views p3."""
    _evaluated(ingest, stream, EARLIER, _viewed("p1", "view-1", EARLIER, anonymousId="v1"))
    _evaluated(
        ingest,
        stream,
        NOW,
        _identified("ada", "v1", NOW),
        _viewed("p2", "view-2", NOW, userId="ada"),
        _viewed("p3", "view-3", NOW, userId="bob"),
    )


def _interest(fires: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """product_interest's fires (the same look fires the in-app product_offer too)."""
    return [fire for fire in fires if fire["trigger"] == "product_interest"]


def _persons_and_products(fires: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(fire["person"], fire["occurrence"]) for fire in _interest(fires)]


def test_a_person_is_the_user_and_the_visitors_they_were(
    aws: Aws, ingest: Invoke, stream: Stream
) -> None:
    """person(user) holds the user's profile, the linked visitor's profile and all events."""
    # given
    _ada_who_was_visitor_v1_and_bob(ingest, stream)
    views = bootstrap.person_views(aws.dynamodb, aws.table)
    # when
    view = views.person("ada")
    # then
    assert view.profile is not None
    assert [str(profile.person) for profile in view.linked_profiles] == ["a:v1"]
    assert [event["messageId"] for event in view.events] == ["view-1", "identify-ada", "view-2"]


def test_a_persons_fires_include_those_of_the_visitors_they_were(
    aws: Aws, ingest: Invoke, stream: Stream
) -> None:
    """fires(user) reads the user's partition and the linked visitor's, not other people's."""
    # given
    _ada_who_was_visitor_v1_and_bob(ingest, stream)
    views = bootstrap.person_views(aws.dynamodb, aws.table)
    # when
    fires = views.fires("ada")
    # then
    assert _persons_and_products(fires) == [("a:v1", "product_id=p1"), ("u:ada", "product_id=p2")]


def test_all_fires_lists_everyones_fires_oldest_first(
    aws: Aws, ingest: Invoke, stream: Stream
) -> None:
    """all_fires() finds every fire in the table, whoever it was for, the earliest first."""
    # given
    _ada_who_was_visitor_v1_and_bob(ingest, stream)
    views = bootstrap.person_views(aws.dynamodb, aws.table)
    # when
    fires = views.all_fires()
    # then
    assert _persons_and_products(fires)[0] == ("a:v1", "product_id=p1")
    assert sorted(_persons_and_products(fires)[1:]) == [
        ("u:ada", "product_id=p2"),
        ("u:bob", "product_id=p3"),
    ]


def test_the_delivery_mark_comes_from_the_persons_contact_record(
    aws: Aws, ingest: Invoke, stream: Stream
) -> None:
    """delivery_mark gives the contact record's mark for a fire, and "" for a fire it lacks."""
    # given
    _ada_who_was_visitor_v1_and_bob(ingest, stream)
    views = bootstrap.person_views(aws.dynamodb, aws.table)
    sent_fire, unmarked_fire = _interest(views.fires("ada"))
    sent = f"sent@{NOW.isoformat()}"
    ContactStore(aws.dynamodb, aws.table).save(
        sent_fire["person"], ContactState(fires={sent_fire["fireId"]: sent})
    )
    # when
    marks = [views.delivery_mark(sent_fire), views.delivery_mark(unmarked_fire)]
    # then
    assert marks == [sent, ""]


def test_explain_ends_with_where_the_bundled_inactivity_triggers_stand(
    aws: Aws, ingest: Invoke, stream: Stream
) -> None:
    """By default the bundled triggers are read: re_engagement's pending line comes last."""
    # given
    _ada_who_was_visitor_v1_and_bob(ingest, stream)
    views = bootstrap.person_views(aws.dynamodb, aws.table)
    # when
    decisions = views.explain("ada", NOW)
    # then
    assert ("product_interest", "fired") in [(d["trigger"], d["outcome"]) for d in decisions]
    assert (decisions[-1]["trigger"], decisions[-1]["outcome"]) == ("re_engagement", "pending")


def test_explain_without_trigger_files_shows_only_the_records(
    aws: Aws, ingest: Invoke, stream: Stream, tmp_path: Any
) -> None:
    """A triggers folder that does not exist means no inactivity lines, the records all the same."""
    # given
    _ada_who_was_visitor_v1_and_bob(ingest, stream)
    views = bootstrap.person_views(aws.dynamodb, aws.table, triggers_dir=tmp_path / "none")
    # when
    decisions = views.explain("ada", NOW)
    # then
    assert decisions
    assert "re_engagement" not in [decision["trigger"] for decision in decisions]


def test_person_views_without_a_table_name_read_the_functions_setting(
    aws: Aws, ingest: Invoke, stream: Stream, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No client and no table given: the factory uses NUDGE_TABLE_NAME, as the functions do."""
    # given
    _ada_who_was_visitor_v1_and_bob(ingest, stream)
    monkeypatch.setenv("NUDGE_TABLE_NAME", aws.table)
    bootstrap.settings.cache_clear()
    # when
    view = bootstrap.person_views().person("bob")
    # then
    assert view.profile is not None
    assert [event["messageId"] for event in view.events] == ["view-3"]
