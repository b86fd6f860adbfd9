"""The read side (`bootstrap.person_views`) on moto: what `nudge explain` and the local
stack's control API show of a person, their fires and how far delivery got."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from nudge import bootstrap
from nudge.adapters.contacts import ContactStore
from nudge.adapters.engine_store import EngineStore
from nudge.adapters.store import EventStore
from nudge.domain.person import PersonId
from nudge.domain.policy import ContactState
from nudge.domain.profile import Profile
from nudge.domain.timefmt import iso
from nudge.domain.triggers.engine import Decision

from tests.integration._harness import NOW, Aws


def _fire(person: str, trigger: str, fired_at: str, fire_id: str) -> dict[str, Any]:
    return {
        "fireId": fire_id,
        "person": person,
        "trigger": trigger,
        "occurrence": "once",
        "firedAt": fired_at,
        "channel": "email",
    }


def _ada_who_was_visitor_v1(aws: Aws) -> None:
    """Ada (u:ada) was visitor v1 before she signed in; Bob is someone else."""
    last_seen = iso(NOW - timedelta(hours=1))
    EventStore(aws.dynamodb, aws.table).save_profiles(
        [
            Profile(
                person=PersonId.user("ada"),
                user_id="ada",
                anonymous_ids=("v1",),
                last_seen=last_seen,
            ),
            Profile(person=PersonId.anonymous("v1"), last_seen=last_seen),
            Profile(person=PersonId.user("bob"), user_id="bob", last_seen=last_seen),
        ]
    )


def _fires_saved(aws: Aws, *fires: dict[str, Any]) -> None:
    engine = EngineStore(aws.dynamodb, aws.table, timedelta(days=30))
    for fire in fires:
        engine.save_fire(fire)


def test_a_persons_fires_include_those_of_the_visitors_they_were(aws: Aws) -> None:
    """fires(user) reads the user's partition and every linked visitor's, not other people's."""
    # given
    _ada_who_was_visitor_v1(aws)
    as_visitor = _fire("a:v1", "product_interest", iso(NOW - timedelta(hours=2)), "f1")
    as_user = _fire("u:ada", "abandoned_cart", iso(NOW), "f2")
    _fires_saved(aws, as_user, as_visitor, _fire("u:bob", "abandoned_cart", iso(NOW), "f3"))
    views = bootstrap.person_views(aws.dynamodb, aws.table)
    # when
    fires = views.fires("ada")
    # then
    assert fires == [as_visitor, as_user]


def test_all_fires_lists_everyones_fires_oldest_first(aws: Aws) -> None:
    """all_fires() finds every fire in the table, whoever it was for, ordered by firedAt."""
    # given
    later = _fire("u:bob", "abandoned_cart", iso(NOW), "f2")
    earlier = _fire("a:v9", "product_interest", iso(NOW - timedelta(minutes=5)), "f1")
    _fires_saved(aws, later, earlier)
    views = bootstrap.person_views(aws.dynamodb, aws.table)
    # when
    fires = views.all_fires()
    # then
    assert fires == [earlier, later]


def test_the_delivery_mark_comes_from_the_persons_contact_record(aws: Aws) -> None:
    """delivery_mark gives the contact record's mark for a fire, and "" for a fire it lacks."""
    # given
    sent = f"sent@{NOW.isoformat()}"
    ContactStore(aws.dynamodb, aws.table).save("u:ada", ContactState(fires={"f1": sent}))
    views = bootstrap.person_views(aws.dynamodb, aws.table)
    # when
    marks = (views.delivery_mark("u:ada", "f1"), views.delivery_mark("u:ada", "f2"))
    # then
    assert marks == (sent, "")


def test_explain_lists_recorded_decisions_then_where_bundled_inactivity_triggers_stand(
    aws: Aws,
) -> None:
    """With the bundled triggers, explain adds re_engagement's pending line after the records."""
    # given
    _ada_who_was_visitor_v1(aws)
    recorded = Decision("abandoned_cart", PersonId.anonymous("v1"), "not_matched", "no cart", NOW)
    EngineStore(aws.dynamodb, aws.table, timedelta(days=30)).save_decisions([recorded])
    views = bootstrap.person_views(aws.dynamodb, aws.table)
    # when
    decisions = views.explain("ada", NOW)
    # then
    assert [(d["trigger"], d["outcome"]) for d in decisions] == [
        ("abandoned_cart", "not_matched"),
        ("re_engagement", "pending"),
    ]


def test_explain_without_trigger_files_shows_only_the_records(aws: Aws, tmp_path: Any) -> None:
    """A triggers folder that does not exist means no inactivity lines, records all the same."""
    # given
    _ada_who_was_visitor_v1(aws)
    recorded = Decision("abandoned_cart", PersonId.user("ada"), "pending", "waiting", NOW)
    EngineStore(aws.dynamodb, aws.table, timedelta(days=30)).save_decisions([recorded])
    views = bootstrap.person_views(aws.dynamodb, aws.table, triggers_dir=tmp_path / "none")
    # when
    decisions = views.explain("ada", NOW)
    # then
    assert [d["trigger"] for d in decisions] == ["abandoned_cart"]


def test_person_views_without_a_table_name_read_the_functions_setting(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No table given: the factory takes NUDGE_TABLE_NAME, as the functions do."""
    # given
    _ada_who_was_visitor_v1(aws)
    monkeypatch.setenv("NUDGE_TABLE_NAME", aws.table)
    bootstrap.settings.cache_clear()
    # when
    view = bootstrap.person_views().person("ada")
    # then
    assert view.profile is not None
    assert [str(profile.person) for profile in view.linked_profiles] == ["a:v1"]
