"""Attribution's pure core: the window an entry opens (from the goal's ``within``), which
assignments a goal event counts for (its name, inside [since, until)), and what a goal
event is worth (the goal's value path, else ``properties.total``; only finite numbers)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from nudge.domain.experiments.attribution import (
    Assignment,
    goal_value,
    new_assignment,
    open_for_goal,
)
from nudge.domain.triggers.loader import parse_trigger
from nudge.domain.triggers.model import Trigger

from tests.conftest import REPO

NOW = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
DAY = timedelta(days=1)
CART = """\
id: abandoned_cart
when: {event: Product Added}
key: properties.cart_id
unless: {event: Order Completed, within: 24h, same: properties.cart_id}
send: {channel: email, template: abandoned_cart}
"""
EXPERIMENT = """\
experiment:
  variants:
    - {id: h24, weight: 45, unless: {within: 24h}}
    - {id: h48, weight: 45, unless: {within: 48h}}
  holdout: 10%
"""
GOAL = "  goal: {event: Checkout Finished, within: 3d, value: properties.revenue}\n"


def _trigger(text: str) -> Trigger:
    trigger, problems = parse_trigger(text, "abandoned_cart.yaml", REPO / "triggers" / "templates")
    assert problems == []
    assert trigger is not None
    return trigger


def _assignment(
    goal: str = "Order Completed",
    since: datetime = NOW,
    until: datetime = NOW + 7 * DAY,
    value_path: str | None = None,
) -> Assignment:
    return Assignment("abandoned_cart", "v1", "h24", since, until, goal, value_path)


def _order(**properties: Any) -> dict[str, Any]:
    return {"type": "track", "event": "Order Completed", "properties": properties}


# ---- new_assignment ------------------------------------------------------------------------


def test_an_entry_opens_the_goals_window_from_the_entry() -> None:
    """An entry at NOW with a 3-day goal is assigned from NOW until three days later, for
    the goal's event and value path, in the experiment's version and the given arm."""
    # given
    trigger = _trigger(CART + EXPERIMENT + GOAL)
    assert trigger.experiment is not None

    # when
    assignment = new_assignment(trigger, "h48", NOW)

    # then
    assert assignment == Assignment(
        trigger="abandoned_cart",
        version=trigger.experiment.version,
        arm="h48",
        since=NOW,
        until=NOW + 3 * DAY,
        goal="Checkout Finished",
        value_path="properties.revenue",
        converted=False,
    )


def test_a_trigger_without_a_goal_opens_seven_days_for_order_completed() -> None:
    """An experiment that names no goal waits seven days for Order Completed, with no
    value path of its own."""
    # given
    trigger = _trigger(CART + EXPERIMENT)

    # when
    assignment = new_assignment(trigger, "h24", NOW)

    # then
    assert (assignment.until, assignment.goal, assignment.value_path) == (
        NOW + 7 * DAY,
        "Order Completed",
        None,
    )


def test_a_trigger_without_an_experiment_opens_no_assignment() -> None:
    """Only an experiment's trigger can be assigned: anything else is a ValueError."""
    # given
    trigger = _trigger(CART)

    # when / then
    with pytest.raises(ValueError, match="runs no experiment"):
        new_assignment(trigger, "h24", NOW)


# ---- open_for_goal -------------------------------------------------------------------------


def test_a_goal_event_inside_the_window_counts_for_the_assignment() -> None:
    """Order Completed a day after assignment counts for an assignment waiting for it."""
    # given
    assignment = _assignment()

    # when
    found = open_for_goal([assignment], "Order Completed", NOW + DAY)

    # then
    assert found == [assignment]


def test_another_event_counts_for_no_assignment() -> None:
    """An event that is not the assignment's goal counts for nothing, even inside the window."""
    # given
    assignment = _assignment(goal="Order Completed")

    # when
    found = open_for_goal([assignment], "Checkout Started", NOW + DAY)

    # then
    assert found == []


def test_the_window_opens_at_the_assignment_itself() -> None:
    """A goal event at the very moment of assignment is inside the window (since is included)."""
    # given
    assignment = _assignment(since=NOW)

    # when
    found = open_for_goal([assignment], "Order Completed", NOW)

    # then
    assert found == [assignment]


def test_a_goal_event_before_the_assignment_counts_for_nothing() -> None:
    """A goal event a millisecond before the assignment opened does not convert it."""
    # given
    assignment = _assignment(since=NOW)

    # when
    found = open_for_goal([assignment], "Order Completed", NOW - timedelta(milliseconds=1))

    # then
    assert found == []


def test_the_windows_end_is_exclusive() -> None:
    """A goal event exactly at ``until`` is outside the window; a millisecond earlier is in."""
    # given
    assignment = _assignment(until=NOW + 7 * DAY)

    # when
    at_the_end = open_for_goal([assignment], "Order Completed", NOW + 7 * DAY)
    just_before = open_for_goal(
        [assignment], "Order Completed", NOW + 7 * DAY - timedelta(milliseconds=1)
    )

    # then
    assert (at_the_end, just_before) == ([], [assignment])


def test_only_the_assignments_open_for_that_goal_are_returned() -> None:
    """Of several assignments, a goal event counts for those with its name and open then."""
    # given
    open_one = _assignment()
    other_goal = _assignment(goal="Subscription Started")
    closed = _assignment(since=NOW - 10 * DAY, until=NOW - 3 * DAY)

    # when
    found = open_for_goal([other_goal, open_one, closed], "Order Completed", NOW + DAY)

    # then
    assert found == [open_one]


# ---- goal_value ----------------------------------------------------------------------------


def test_the_value_is_read_at_the_goals_value_path() -> None:
    """With ``value: properties.revenue``, the event's revenue is the value (not its total)."""
    # given
    assignment = _assignment(value_path="properties.revenue")

    # when
    value = goal_value(assignment, _order(revenue=42.5, total=99))

    # then
    assert value == 42.5


def test_without_a_value_path_the_value_is_the_total() -> None:
    """A goal naming no value path is worth the event's ``properties.total``."""
    # given
    assignment = _assignment(value_path=None)

    # when
    value = goal_value(assignment, _order(total=99, revenue=42.5))

    # then
    assert value == 99.0


def test_a_named_value_path_the_event_lacks_is_worth_nothing() -> None:
    """A goal naming ``properties.revenue`` reads only there: an event without it is worth
    0, whatever its total (the total is the default only for goals that name no path)."""
    # given
    assignment = _assignment(value_path="properties.revenue")

    # when
    value = goal_value(assignment, _order(total=99))

    # then
    assert value == 0.0


def test_a_nested_value_path_is_followed() -> None:
    """A dotted path reaches into nested properties."""
    # given
    assignment = _assignment(value_path="properties.order.amount")

    # when
    value = goal_value(assignment, _order(order={"amount": 17}))

    # then
    assert value == 17.0


@pytest.mark.parametrize(
    ("text", "number"),
    [("12.50", 12.5), (" 7 ", 7.0), ("-3", -3.0), ("1e2", 100.0)],
)
def test_a_numeric_string_is_parsed(text: str, number: float) -> None:
    """A value sent as a string of a number (surrounding spaces allowed) counts as that number."""
    # given
    assignment = _assignment()

    # when
    value = goal_value(assignment, _order(total=text))

    # then
    assert value == number


@pytest.mark.parametrize("flag", [True, False])
def test_a_boolean_is_worth_nothing(flag: bool) -> None:
    """A boolean is not a number here (although Python's bool is an int): 0."""
    # given
    assignment = _assignment()

    # when
    value = goal_value(assignment, _order(total=flag))

    # then
    assert value == 0.0


@pytest.mark.parametrize(
    "not_finite", [float("nan"), float("inf"), float("-inf"), "NaN", "Infinity", "-inf"]
)
def test_a_value_that_is_not_finite_is_worth_nothing(not_finite: object) -> None:
    """NaN and infinities, as numbers or as strings, are worth 0 (never poison a sum)."""
    # given
    assignment = _assignment()

    # when
    value = goal_value(assignment, _order(total=not_finite))

    # then
    assert value == 0.0


@pytest.mark.parametrize("not_a_number", ["twelve", "", None, [12], {"amount": 12}])
def test_a_value_that_is_not_a_number_is_worth_nothing(not_a_number: object) -> None:
    """Text that is not a number, null, a list or an object is worth 0."""
    # given
    assignment = _assignment()

    # when
    value = goal_value(assignment, _order(total=not_a_number))

    # then
    assert value == 0.0


def test_an_event_without_properties_is_worth_nothing() -> None:
    """A goal event carrying no properties at all is worth 0."""
    # given
    assignment = _assignment()

    # when
    value = goal_value(assignment, {"type": "track", "event": "Order Completed"})

    # then
    assert value == 0.0
