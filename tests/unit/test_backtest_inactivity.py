"""The shipped re_engagement trigger in the backtest: the hourly sweep on the replay's clock."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from nudge.domain.triggers.loader import load_triggers
from nudge.domain.triggers.model import Trigger
from nudge.service.backtest import BacktestReport, backtest
from nudge.service.recorded_events import read_events

from tests.conftest import REPO

DAY_0 = datetime(2026, 11, 2, 9, 10, tzinfo=UTC)


@pytest.fixture
def re_engagement(tmp_path: Path) -> Trigger:
    """triggers/re_engagement.yaml as shipped, loaded on its own with the templates."""
    shutil.copy(REPO / "triggers" / "re_engagement.yaml", tmp_path)
    shutil.copytree(REPO / "triggers" / "templates", tmp_path / "templates")
    loaded = load_triggers(tmp_path)
    assert loaded.ok, loaded.problems
    (trigger,) = loaded.triggers
    return trigger


def at(days: float, minutes: float = 0) -> str:
    return (DAY_0 + timedelta(days=days, minutes=minutes)).isoformat()


def short_visit(user: str, day: float, crm_status: str | None = "inactive") -> list[dict[str, Any]]:
    """An identify (when crm_status is given) and two page views within a few minutes."""
    identify: list[dict[str, Any]] = (
        [{"type": "identify", "userId": user, "traits": {"crm_status": crm_status}}]
        if crm_status
        else []
    )
    pages: list[dict[str, Any]] = [
        {"type": "page", "userId": user, "name": f"Page {n}"} for n in (1, 2)
    ]
    return [
        {**message, "timestamp": at(day, minutes=n)}
        for n, message in enumerate([*identify, *pages])
    ]


def bystander(day: float) -> list[dict[str, Any]]:
    """Someone else's event: it runs the replay's clock to ``day``."""
    return [{"type": "track", "userId": "bystander", "event": "Ping", "timestamp": at(day)}]


def replay(trigger: Trigger, *messages: dict[str, Any]) -> BacktestReport:
    events, skipped = read_events(json.dumps(message) for message in messages)
    assert skipped == []
    return backtest(events, [trigger])


def test_a_quiet_inactive_customer_is_re_engaged_once(re_engagement: Trigger) -> None:
    """A user the CRM calls inactive who viewed two pages and was then quiet for eight days
    is re-engaged once, on the day the week of quiet ended."""
    # given
    messages = [*short_visit("ada", day=0), *bystander(day=8)]

    # when
    report = replay(re_engagement, *messages)

    # then
    fires = report.triggers["re_engagement"]
    assert fires.fires == 1
    assert dict(fires.per_day) == {"2026-11-09": 1}


def test_a_customer_who_came_back_is_not_re_engaged_a_week_after_the_first_visit(
    re_engagement: Trigger,
) -> None:
    """Coming back on day 5 starts the week of quiet again: nothing has fired by day 8."""
    # given
    messages = [*short_visit("ada", day=0), *short_visit("ada", day=5), *bystander(day=8)]

    # when
    report = replay(re_engagement, *messages)

    # then
    assert report.triggers["re_engagement"].fires == 0


def test_a_customer_who_came_back_is_re_engaged_a_week_after_the_return(
    re_engagement: Trigger,
) -> None:
    """Quiet for a week after coming back on day 5, the customer is re-engaged on day 12."""
    # given
    messages = [*short_visit("ada", day=0), *short_visit("ada", day=5), *bystander(day=13)]

    # when
    report = replay(re_engagement, *messages)

    # then
    fires = report.triggers["re_engagement"]
    assert fires.fires == 1
    assert dict(fires.per_day) == {"2026-11-14": 1}


def test_a_customer_the_crm_calls_active_is_not_re_engaged(re_engagement: Trigger) -> None:
    """However long the quiet, someone outside the audience (crm_status active) is not fired for."""
    # given
    messages = [*short_visit("ada", day=0, crm_status="active"), *bystander(day=8)]

    # when
    report = replay(re_engagement, *messages)

    # then
    assert report.triggers["re_engagement"].fires == 0


def test_the_replay_stops_short_of_a_sweep_not_yet_due(re_engagement: Trigger) -> None:
    """The clock runs to the last event only: six days of quiet decide nothing yet."""
    # given
    messages = [*short_visit("ada", day=0), *bystander(day=6)]

    # when
    report = replay(re_engagement, *messages)

    # then
    assert report.triggers["re_engagement"].fires == 0


def test_a_long_quiet_fires_only_once(re_engagement: Trigger) -> None:
    """Forty days of quiet are one quiet spell: one fire, not one per sweep or per week."""
    # given
    messages = [*short_visit("ada", day=0), *bystander(day=40)]

    # when
    report = replay(re_engagement, *messages)

    # then
    assert report.triggers["re_engagement"].fires == 1


ONE_VIEW_THEN_QUIET = """\
id: one_view_then_quiet
when:
  inactive: 7d
audience:
  count: {event: Item Viewed, within: 30d}
  eq: 1
reentry: once
send:
  channel: email
  template: re_engagement
"""


def test_the_sweep_counts_a_persons_history_once(tmp_path: Path) -> None:
    """A sweep's conditions see each of the person's events once, not once per time their
    partition is listed."""
    # given a trigger for people whose last 30 days hold exactly one Item Viewed
    (tmp_path / "one_view_then_quiet.yaml").write_text(ONE_VIEW_THEN_QUIET)
    shutil.copytree(REPO / "triggers" / "templates", tmp_path / "templates")
    loaded = load_triggers(tmp_path)
    assert loaded.ok, loaded.problems
    (trigger,) = loaded.triggers
    viewed = {"type": "track", "userId": "ada", "event": "Item Viewed", "timestamp": at(0)}
    # when ada views one item and is quiet for more than a week
    report = replay(trigger, viewed, *bystander(8))
    # then the sweep a week later finds her one view, and fires
    assert report.triggers["one_view_then_quiet"].fires == 1


def test_the_clock_runs_on_to_until_and_decides_the_sweeps_due_by_then(
    re_engagement: Trigger,
) -> None:
    """A quiet customer with no later event is re-engaged when the replay's clock is run on
    past the week of quiet (``until``), as a live stack's advanced clock would."""
    # given
    events, _ = read_events(json.dumps(message) for message in short_visit("ada", day=0))

    # when
    stopped = backtest(events, [re_engagement])
    ran_on = backtest(events, [re_engagement], until=DAY_0 + timedelta(days=8))

    # then
    assert stopped.triggers["re_engagement"].fires == 0
    assert ran_on.triggers["re_engagement"].fires == 1
    assert ran_on.last_time == DAY_0 + timedelta(days=8)


def test_each_fire_is_listed_with_its_person_and_occurrence(re_engagement: Trigger) -> None:
    """The report lists every fire that passed the ledger: trigger, person and occurrence,
    what a live run's fire records are compared with."""
    # given
    messages = [*short_visit("ada", day=0), *short_visit("bob", day=0), *bystander(day=8)]

    # when
    report = replay(re_engagement, *messages)

    # then
    assert sorted((f.trigger, str(f.person)) for f in report.fired) == [
        ("re_engagement", "u:ada"),
        ("re_engagement", "u:bob"),
    ]
    assert all(f.occurrence for f in report.fired)
    assert len(report.fired) == report.triggers["re_engagement"].fires
