"""Trigger definitions: what a trigger file may say, and what it is refused for."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from nudge.domain.triggers.model import (
    AllOf,
    Count,
    EventMatch,
    Inactivity,
    NotOf,
    Predicate,
    Reentry,
    Trigger,
)
from pydantic import ValidationError


def trigger(**fields: Any) -> Trigger:
    """A minimal valid trigger; keyword arguments add or replace fields."""
    definition: dict[str, Any] = {
        "id": "test_trigger",
        "when": {"event": "Product Added"},
        "send": {"channel": "email", "template": "test"},
        **fields,
    }
    return Trigger.model_validate(definition)


def refusal(**fields: Any) -> str:
    """The validation message for a trigger that must be refused."""
    with pytest.raises(ValidationError) as error:
        trigger(**fields)
    return str(error.value)


# ---- durations ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("30m", timedelta(minutes=30)),
        ("24h", timedelta(hours=24)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(weeks=2)),
        (3600, timedelta(hours=1)),
        ("5400", timedelta(minutes=90)),
    ],
)
def test_durations_are_read_in_words_or_seconds(written: Any, expected: timedelta) -> None:
    """An absence window may be written 30m, 24h, 7d, 2w or as plain seconds."""
    # given
    unless = {"event": "Order Completed", "within": written}

    # when
    loaded = trigger(unless=unless)

    # then
    assert loaded.unless is not None
    assert loaded.unless.within == expected


@pytest.mark.parametrize("written", ["0s", "30s", "91d", "14w"])
def test_an_absence_window_out_of_range_is_refused(written: str) -> None:
    """An absence window must lie between one minute and 90 days."""
    # given
    unless = {"event": "Order Completed", "within": written}

    # when
    message = refusal(unless=unless)

    # then
    assert "out of range (1m to 90d)" in message


@pytest.mark.parametrize("written", ["30m", "59m", "91d"])
def test_an_inactivity_out_of_range_is_refused(written: str) -> None:
    """Inactivity must last between one hour and 90 days."""
    # given
    when = {"inactive": written}

    # when
    message = refusal(when=when)

    # then
    assert "out of range (1h to 90d)" in message


def test_a_delay_above_thirty_days_is_refused() -> None:
    """A send delay may not exceed 30 days."""
    # given
    delay = "31d"

    # when
    message = refusal(delay=delay)

    # then
    assert "31d is out of range (0s to 30d)" in message


@pytest.mark.parametrize("written", ["3 days", "7x", "-5m", "", True, 1.5])
def test_a_duration_not_in_words_is_refused(written: Any) -> None:
    """Anything but a number with an optional s, m, h, d or w unit is not a duration."""
    # given
    delay = written

    # when
    message = refusal(delay=delay)

    # then
    assert "delay" in message


def test_the_delay_defaults_to_zero() -> None:
    """Without a delay the message goes at once."""
    # given / when
    loaded = trigger()

    # then
    assert loaded.delay == timedelta(0)


# ---- reentry -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "mode", "period"),
    [
        ("once", "once", None),
        ("every_time", "every_time", None),
        ("once_per 7d", "once_per", timedelta(days=7)),
        ("once_per   12h", "once_per", timedelta(hours=12)),
    ],
)
def test_reentry_is_read_from_words(written: str, mode: str, period: timedelta | None) -> None:
    """Reentry is 'once', 'every_time' or 'once_per <duration>'."""
    # given
    reentry = written

    # when
    loaded = trigger(reentry=reentry)

    # then
    assert loaded.reentry == Reentry(mode=mode, period=period)


def test_reentry_defaults_to_every_time() -> None:
    """Without reentry, a person may get the trigger every time it fires."""
    # given / when
    loaded = trigger()

    # then
    assert loaded.reentry.mode == "every_time"


@pytest.mark.parametrize(
    "written", ["twice", "once_per", "once_per soon", "once per 7d", "every_time 7d", ""]
)
def test_unknown_reentry_words_are_refused(written: str) -> None:
    """Any other wording of reentry is refused."""
    # given
    reentry = written

    # when
    message = refusal(reentry=reentry)

    # then
    assert "reentry" in message


@pytest.mark.parametrize("written", ["once_per 0m", "once_per 400d"])
def test_a_reentry_period_out_of_range_is_refused(written: str) -> None:
    """once_per needs a period between one minute and a year."""
    # given
    reentry = written

    # when
    message = refusal(reentry=reentry)

    # then
    assert "out of range (1m to 365d)" in message


# ---- comparisons: exactly one operator, and a path -------------------------------------


def test_a_predicate_without_an_operator_is_refused() -> None:
    """A predicate must say how to compare."""
    # given
    definition = {"path": "traits.tier"}

    # when
    with pytest.raises(ValidationError) as error:
        Predicate.model_validate(definition)

    # then
    assert "needs exactly one operator" in str(error.value)
    assert "(found none)" in str(error.value)


def test_a_predicate_with_two_operators_is_refused_naming_both() -> None:
    """Two operators in one predicate are ambiguous and refused, naming them in order."""
    # given
    definition = {"path": "traits.age", "gt": 1, "lt": 9}

    # when
    with pytest.raises(ValidationError) as error:
        Predicate.model_validate(definition)

    # then
    assert "(found gt, lt)" in str(error.value)


def test_an_explicit_null_operand_still_counts_as_the_operator() -> None:
    """eq: null is one operator (compare with null), not a missing one."""
    # given
    definition = {"path": "traits.coupon", "eq": None}

    # when
    loaded = Predicate.model_validate(definition)

    # then
    assert (loaded.operator, loaded.operand) == ("eq", None)


def test_in_is_written_as_in() -> None:
    """The in operator is written 'in' and read back as operator 'in' with its list."""
    # given
    definition = {"path": "traits.tier", "in": ["vip", "gold"]}

    # when
    loaded = Predicate.model_validate(definition)

    # then
    assert (loaded.operator, loaded.operand) == ("in", ["vip", "gold"])


def test_an_unknown_operator_is_refused() -> None:
    """An operator outside the list is an unknown field."""
    # given
    definition = {"path": "traits.tier", "equals": "vip"}

    # when
    with pytest.raises(ValidationError) as error:
        Predicate.model_validate(definition)

    # then
    assert "equals" in str(error.value)


def test_a_count_takes_exactly_one_operator_too() -> None:
    """A count condition without an operator is refused like a predicate."""
    # given
    definition = {"count": {"event": "Product Viewed", "within": "7d"}}

    # when
    with pytest.raises(ValidationError) as error:
        Count.model_validate(definition)

    # then
    assert "needs exactly one operator" in str(error.value)


@pytest.mark.parametrize("within", ["30s", "91d"])
def test_a_count_window_out_of_range_is_refused(within: str) -> None:
    """A count looks back between one minute and 90 days."""
    # given
    definition = {"count": {"event": "Product Viewed", "within": within}, "gte": 3}

    # when
    with pytest.raises(ValidationError) as error:
        Count.model_validate(definition)

    # then
    assert "out of range (1m to 90d)" in str(error.value)


@pytest.mark.parametrize(
    "path",
    [
        "properties.cart_id",
        "traits.tier",
        "profile.event_count",
        "context.page.path",
        "event",
        "type",
        "userId",
        "anonymousId",
        "properties.items.0.sku",
        "properties.$price",
        "traits.first name",
    ],
)
def test_paths_start_with_a_known_root(path: str) -> None:
    """A path begins with one of the roots: properties, traits, profile, context, event, ..."""
    # given
    definition = {"path": path, "exists": True}

    # when
    loaded = Predicate.model_validate(definition)

    # then
    assert loaded.path == path


@pytest.mark.parametrize(
    "path", ["cart_id", "user.traits.tier", "properties..sku", "properties.", ".traits", ""]
)
def test_paths_with_another_root_or_empty_segments_are_refused(path: str) -> None:
    """A path with an unknown root, or an empty segment, is refused with the roots listed."""
    # given
    definition = {"path": path, "exists": True}

    # when
    with pytest.raises(ValidationError) as error:
        Predicate.model_validate(definition)

    # then
    assert "is not a path; start with one of properties, traits" in str(error.value)


def test_the_key_and_same_are_checked_as_paths() -> None:
    """key and unless.same are paths like any other."""
    # given / when
    key_message = refusal(key="cart_id")
    same_message = refusal(unless={"event": "Order Completed", "within": "1h", "same": "cart"})

    # then
    assert "'cart_id' is not a path" in key_message
    assert "'cart' is not a path" in same_message


# ---- conditions nest ---------------------------------------------------------------------


def test_conditions_nest_into_all_any_not_and_count() -> None:
    """An audience reads all, any, not and count into their own kinds."""
    # given
    audience = {
        "all": [
            {"path": "traits.email", "exists": True},
            {"not": {"any": [{"path": "traits.tier", "eq": "vip"}]}},
            {"count": {"event": "Product Viewed", "within": "7d"}, "gte": 3},
        ]
    }

    # when
    loaded = trigger(audience=audience)

    # then
    assert isinstance(loaded.audience, AllOf)
    kinds = [type(inner) for inner in loaded.audience.all]
    assert kinds == [Predicate, NotOf, Count]


def test_an_empty_all_is_refused() -> None:
    """all: [] says nothing and is refused."""
    # given
    audience: dict[str, Any] = {"all": []}

    # when
    message = refusal(audience=audience)

    # then
    assert "at least 1 item" in message


def test_an_unknown_field_anywhere_is_refused() -> None:
    """Extra fields are refused, at the top level and nested in conditions."""
    # given / when
    top = refusal(colour="red")
    nested = refusal(when={"event": "A", "where": [{"path": "traits.x", "eq": 1, "note": "x"}]})

    # then
    assert "colour" in top
    assert "note" in nested


# ---- coherence ---------------------------------------------------------------------------


def test_an_inactivity_trigger_with_unless_is_refused() -> None:
    """Inactivity is already an absence, so it cannot also have unless."""
    # given
    fields = {"when": {"inactive": "7d"}, "unless": {"event": "Order Completed", "within": "1h"}}

    # when
    message = refusal(**fields)

    # then
    assert "an inactivity trigger cannot also have 'unless'" in message


def test_unless_naming_the_entry_event_is_refused() -> None:
    """An unless on the entry event itself would cancel every occurrence."""
    # given
    unless = {"event": "Product Added", "within": "1h"}

    # when
    message = refusal(unless=unless)

    # then
    assert "'unless' names the entry event 'Product Added' itself" in message


def test_unless_on_the_entry_event_narrowed_by_where_is_allowed() -> None:
    """The same event with a where is a different event (a second add of the same cart)."""
    # given
    unless = {
        "event": "Product Added",
        "within": "1h",
        "where": [{"path": "properties.quantity", "gt": 1}],
    }

    # when
    loaded = trigger(unless=unless)

    # then
    assert loaded.unless is not None
    assert loaded.unless.event == "Product Added"


@pytest.mark.parametrize("identifier", ["Abandoned", "-cart", "cart id", "x" * 64, ""])
def test_an_id_must_be_a_short_lower_case_slug(identifier: str) -> None:
    """Trigger ids are lower-case slugs of at most 63 characters."""
    # given
    fields = {"id": identifier}

    # when
    message = refusal(**fields)

    # then
    assert "must be lower-case letters, digits" in message


def test_an_unknown_channel_is_refused() -> None:
    """A trigger sends by email, webhook or in_app, nothing else."""
    # given
    send = {"channel": "sms", "template": "test"}

    # when
    message = refusal(send=send)

    # then
    assert "send.channel" in message


# ---- derived views -----------------------------------------------------------------------


def test_watched_events_are_entry_absence_and_exit_events() -> None:
    """A trigger watches its entry event, its unless event and its exit events."""
    # given
    loaded = trigger(
        unless={"event": "Order Completed", "within": "24h"},
        exit=[{"event": "Unsubscribed"}, {"event": "Cart Emptied"}],
    )

    # when
    watched = loaded.watched_events

    # then
    assert watched == {"Product Added", "Order Completed", "Unsubscribed", "Cart Emptied"}


def test_an_inactivity_trigger_watches_only_its_exit_events() -> None:
    """Inactivity has no entry event to watch."""
    # given
    loaded = trigger(when={"inactive": "7d"}, exit=[{"event": "Unsubscribed"}])

    # when
    watched = loaded.watched_events

    # then
    assert isinstance(loaded.when, Inactivity)
    assert watched == {"Unsubscribed"}


def test_exit_events_include_the_absence_event_last() -> None:
    """Exit events and the unless event both cancel a pending occurrence."""
    # given
    loaded = trigger(
        unless={"event": "Order Completed", "within": "24h"},
        exit=[{"event": "Unsubscribed"}],
    )

    # when
    exits = loaded.exit_events

    # then
    assert [match.event for match in exits] == ["Unsubscribed", "Order Completed"]
    assert all(isinstance(match, EventMatch) for match in exits)


def test_exit_events_are_empty_without_exit_or_unless() -> None:
    """A trigger with neither exit nor unless has nothing that cancels it."""
    # given
    loaded = trigger()

    # when
    exits = loaded.exit_events

    # then
    assert exits == []


def test_once_per_without_a_period_is_refused() -> None:
    """Re-entry written as a mapping must still give once_per its period."""
    # given / when / then
    with pytest.raises(ValidationError, match="once_per needs a period"):
        Reentry.model_validate({"mode": "once_per"})
