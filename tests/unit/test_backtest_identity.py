"""The backtest resolves who an event belongs to as Ingest does, so its fires are the live
stack's: a request's links apply to all its messages, and an exported item is its
partition's person's."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from nudge.adapters import keys
from nudge.domain.person import PersonId
from nudge.domain.triggers.loader import load_triggers
from nudge.domain.triggers.model import Trigger
from nudge.service.backtest import backtest
from nudge.service.recorded_events import read_events

from tests.conftest import REPO

DAY_0 = datetime(2026, 11, 2, 9, 10, tzinfo=UTC)


@pytest.fixture
def re_engagement(tmp_path: Path) -> Trigger:
    """triggers/re_engagement.yaml as shipped: fewer than 3 pages in the last session."""
    shutil.copy(REPO / "triggers" / "re_engagement.yaml", tmp_path)
    shutil.copytree(REPO / "triggers" / "templates", tmp_path / "templates")
    loaded = load_triggers(tmp_path)
    assert loaded.ok, loaded.problems
    (trigger,) = loaded.triggers
    return trigger


def at(minutes: float) -> str:
    return (DAY_0 + timedelta(minutes=minutes)).isoformat()


def visit_with_login(user: str) -> list[dict[str, Any]]:
    """A visitor's home page, then a login (the link), then two product pages: three pages
    in the session, all the user's once the link is known."""
    anonymous = {"anonymousId": f"anon-{user}"}
    known = {**anonymous, "userId": user}
    traits = {"crm_status": "inactive"}
    return [
        {**anonymous, "type": "page", "name": "Home", "timestamp": at(0)},
        {**known, "type": "identify", "traits": traits, "timestamp": at(1)},
        {**known, "type": "page", "name": "Product 1", "timestamp": at(2)},
        {**known, "type": "page", "name": "Product 2", "timestamp": at(3)},
    ]


def test_an_anonymous_page_in_the_request_that_logs_in_is_the_users(
    re_engagement: Trigger,
) -> None:
    """A home page sent in the same batch as the login that links its visitor counts as
    the user's page, as Ingest stores it: three pages, so re_engagement does not fire."""
    # given
    line = json.dumps({"batch": visit_with_login("ada")})

    # when
    events, _ = read_events([line])
    report = backtest(events, [re_engagement], until=DAY_0 + timedelta(days=8))

    # then
    assert {event.user_id for event in events} == {"ada"}
    assert events[0].body.get("userId") is None  # the body stays as sent
    assert report.triggers["re_engagement"].fires == 0


def test_an_anonymous_page_sent_before_the_login_request_stays_the_visitors(
    re_engagement: Trigger,
) -> None:
    """A home page sent in its own request before the login stays the visitor's, as
    Ingest stores it: the user has two pages in the session and is re-engaged."""
    # given
    home, *rest = visit_with_login("ada")
    lines = [json.dumps(home), json.dumps({"batch": rest})]

    # when
    events, _ = read_events(lines)
    report = backtest(events, [re_engagement], until=DAY_0 + timedelta(days=8))

    # then
    assert events[0].user_id is None
    assert report.triggers["re_engagement"].fires == 1


def test_an_exported_item_is_read_as_the_person_of_its_partition() -> None:
    """An anonymous message exported from a user's partition is that user's event."""
    # given
    home = visit_with_login("ada")[0]
    item = {**keys.event_key(PersonId.user("ada"), "m1"), "body": json.dumps(home)}

    # when
    events, skipped = read_events([json.dumps(item)])

    # then
    assert skipped == []
    assert [(event.user_id, event.anonymous_id) for event in events] == [("ada", "anon-ada")]
