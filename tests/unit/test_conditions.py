"""Deciding whether a trigger's conditions hold, from facts gathered beforehand."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from nudge.domain.triggers.conditions import (
    Facts,
    compare,
    count_in_window,
    holds,
    matches_event,
    values_at,
)
from nudge.domain.triggers.model import Condition, Count, EventMatch, Predicate
from pydantic import TypeAdapter

from tests.unit.builders import NOW

_CONDITION: TypeAdapter[Condition] = TypeAdapter(Condition)


def condition(definition: dict[str, Any]) -> Condition:
    """A condition as the trigger language reads it from YAML (predicate, all, any, not, count)."""
    return _CONDITION.validate_python(definition)


def predicate(path: str, **operator: Any) -> Predicate:
    return Predicate.model_validate({"path": path, **operator})


def counting(
    event: str, within: str, where: list[dict[str, Any]] | None = None, **op: Any
) -> Count:
    spec: dict[str, Any] = {"event": event, "within": within, "where": where or []}
    return Count.model_validate({"count": spec, **op})


def ago(**span: float) -> str:
    return (NOW - timedelta(**span)).isoformat()


CART = Facts(
    now=NOW,
    event={
        "type": "track",
        "event": "Order Completed",
        "userId": "user-1",
        "properties": {
            "total": 120.5,
            "currency": "EUR",
            "coupon": None,
            "tags": ["gift", "express"],
            "items": [{"sku": "A-1", "qty": 2}, {"sku": "B-2", "qty": 1}],
            "products": [{"sku": "P-1"}, {"sku": "P-2"}],
            "shipping": {"address": {"country": "FR"}},
        },
        "context": {"page": {"path": "/checkout/pay"}, "locale": "fr-FR"},
    },
    traits={"tier": "vip", "email": "ada@example.com", "age": 36, "plan": {"seats": 5}},
    profile={"event_count": 12, "last_session_pages": 2, "first_seen": "2026-01-05T10:00:00"},
)


# ---- every operator, on every root ------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "operator", "operand"),
    [
        ("properties.currency", "eq", "EUR"),
        ("properties.total", "eq", 120.5),
        ("traits.tier", "eq", "vip"),
        ("profile.event_count", "eq", 12),
        ("context.locale", "eq", "fr-FR"),
        ("event", "eq", "Order Completed"),
        ("userId", "eq", "user-1"),
        ("type", "eq", "track"),
        ("properties.currency", "ne", "USD"),
        ("traits.tier", "ne", "basic"),
        ("properties.total", "gt", 100),
        ("profile.event_count", "gt", 11),
        ("traits.age", "gte", 36),
        ("properties.total", "gte", 120.5),
        ("profile.last_session_pages", "lt", 3),
        ("traits.age", "lt", 40),
        ("profile.event_count", "lte", 12),
        ("properties.total", "lte", 121),
        ("traits.tier", "in", ["vip", "gold"]),
        ("event", "in", ["Order Completed", "Order Refunded"]),
        ("context.locale", "in", ["fr-FR", "de-DE"]),
        ("properties.tags", "contains", "gift"),
        ("traits.email", "contains", "@example."),
        ("context.page.path", "contains", "checkout"),
        ("traits.email", "exists", True),
        ("properties.discount", "exists", False),
        ("context.page.path", "starts_with", "/checkout"),
        ("event", "starts_with", "Order"),
        ("profile.first_seen", "gt", "2026-01-01"),
    ],
)
def test_each_operator_holds_on_a_matching_value(path: str, operator: str, operand: Any) -> None:
    """Every operator holds on properties, traits, profile, context and the event name."""
    # given
    rule = predicate(path, **{operator: operand})

    # when
    outcome = holds(rule, CART)

    # then
    assert outcome is True


@pytest.mark.parametrize(
    ("path", "operator", "operand"),
    [
        ("properties.currency", "eq", "USD"),
        ("traits.tier", "eq", "VIP"),
        ("event", "eq", "Order completed"),
        ("properties.currency", "ne", "EUR"),
        ("profile.event_count", "ne", 12.0),
        ("properties.total", "gt", 120.5),
        ("traits.age", "gte", 37),
        ("profile.last_session_pages", "lt", 2),
        ("traits.age", "lte", 35),
        ("traits.tier", "in", ["gold", "silver"]),
        ("properties.tags", "contains", "fragile"),
        ("traits.email", "contains", "@example.org"),
        ("traits.email", "exists", False),
        ("properties.discount", "exists", True),
        ("context.page.path", "starts_with", "/cart"),
        ("event", "starts_with", "Product"),
    ],
)
def test_each_operator_fails_on_a_different_value(path: str, operator: str, operand: Any) -> None:
    """Every operator refuses a value that does not satisfy it."""
    # given
    rule = predicate(path, **{operator: operand})

    # when
    outcome = holds(rule, CART)

    # then
    assert outcome is False


def test_numbers_compare_equal_across_int_and_float() -> None:
    """An integer and a float of the same value are equal, as people would expect."""
    # given
    rule = predicate("profile.event_count", eq=12.0)

    # when
    outcome = holds(rule, CART)

    # then
    assert outcome is True


def test_a_boolean_is_not_the_number_one() -> None:
    """True never equals 1: a flag and a count are different things."""
    # given
    facts = Facts(now=NOW, traits={"opted_in": True})

    # when
    outcome = holds(predicate("traits.opted_in", eq=1), facts)

    # then
    assert outcome is False


def test_ne_holds_when_the_path_is_missing() -> None:
    """A value that is absent differs from any value, so ne holds."""
    # given
    rule = predicate("traits.country", ne="FR")

    # when
    outcome = holds(rule, CART)

    # then
    assert outcome is True


def test_exists_true_refuses_a_null_value() -> None:
    """A property present but null does not count as existing."""
    # given
    rule = predicate("properties.coupon", exists=True)

    # when
    outcome = holds(rule, CART)

    # then
    assert outcome is False


def test_exists_false_holds_for_a_null_value() -> None:
    """A null property counts as absent, so exists false is the opposite of exists true."""
    # given
    rule = predicate("properties.coupon", exists=False)

    # when
    outcome = holds(rule, CART)

    # then
    assert outcome is True


def test_a_missing_path_matches_no_comparison() -> None:
    """A path that reaches nothing matches eq, gt, in, contains and starts_with alike."""
    # given
    rules = [
        predicate("traits.nickname", eq="x"),
        predicate("traits.nickname", gt=0),
        predicate("traits.nickname", **{"in": ["x"]}),
        predicate("traits.nickname", contains="x"),
        predicate("traits.nickname", starts_with="x"),
    ]

    # when
    outcomes = [holds(rule, CART) for rule in rules]

    # then
    assert outcomes == [False] * 5


def test_page_views_answer_to_their_type_as_event_name() -> None:
    """A page view's event name is "page", whatever name it carries."""
    # given
    facts = Facts(now=NOW, event={"type": "page", "name": "Home"})

    # when
    outcome = holds(predicate("event", eq="page"), facts)

    # then
    assert outcome is True


# ---- paths into nested objects and arrays -----------------------------------------------


def test_dotted_path_reaches_into_nested_objects() -> None:
    """Each dot steps into a nested object."""
    # given
    path = "properties.shipping.address.country"

    # when
    found = values_at(path, CART)

    # then
    assert found == ["FR"]


def test_an_index_segment_picks_one_list_element() -> None:
    """A numeric segment picks that element of a list."""
    # given
    path = "properties.items.1.sku"

    # when
    found = values_at(path, CART)

    # then
    assert found == ["B-2"]


def test_an_index_past_the_end_reaches_nothing() -> None:
    """An index beyond the list's length finds no value and does not raise."""
    # given
    path = "properties.items.9.sku"

    # when
    found = values_at(path, CART)

    # then
    assert found == []


def test_a_name_segment_on_a_list_looks_into_every_element() -> None:
    """Without an index, a segment that meets a list collects from each element."""
    # given
    path = "properties.products.sku"

    # when
    found = values_at(path, CART)

    # then
    assert found == ["P-1", "P-2"]


def test_a_wildcard_predicate_holds_when_any_element_matches() -> None:
    """A predicate over every element holds when one of them matches."""
    # given
    rule = predicate("properties.products.sku", eq="P-2")

    # when
    outcome = holds(rule, CART)

    # then
    assert outcome is True


def test_ne_over_a_wildcard_requires_every_element_to_differ() -> None:
    """ne over many values holds only when none of them equals the operand."""
    # given
    rule = predicate("properties.products.sku", ne="P-1")

    # when
    outcome = holds(rule, CART)

    # then
    assert outcome is False


def test_an_index_segment_in_a_predicate_reads_that_element_only() -> None:
    """properties.items.0.sku compares the first item, not the others."""
    # given
    first, second = (
        predicate("properties.items.0.sku", eq="A-1"),
        predicate("properties.items.0.sku", eq="B-2"),
    )

    # when
    outcomes = (holds(first, CART), holds(second, CART))

    # then
    assert outcomes == (True, False)


def test_a_path_through_a_scalar_reaches_nothing() -> None:
    """Stepping into a string or number finds no value instead of raising."""
    # given
    path = "properties.currency.code"

    # when
    found = values_at(path, CART)

    # then
    assert found == []


def test_an_event_without_properties_reaches_nothing() -> None:
    """An event with null properties has no values under properties."""
    # given
    facts = Facts(now=NOW, event={"event": "A", "properties": None})

    # when
    found = values_at("properties.x", facts)

    # then
    assert found == []


# ---- wrong types never match and never raise --------------------------------------------


@pytest.mark.parametrize(
    ("value", "operator", "operand"),
    [
        ("120", "gt", 100),
        ("abc", "lt", 3),
        (120, "gt", "100"),
        (None, "gt", 0),
        (None, "lte", 0),
        (True, "gte", 1),
        (["vip"], "eq", "vip"),
        (["vip"], "starts_with", "v"),
        ({"a": 1}, "contains", "a"),
        (5, "contains", 5),
        (None, "contains", "x"),
        (None, "starts_with", "x"),
        (12, "starts_with", "1"),
        ("12", "eq", 12),
        (None, "eq", "None"),
        ([1, 2], "in", [1, 2]),
    ],
)
def test_a_value_of_the_wrong_type_never_matches(value: Any, operator: str, operand: Any) -> None:
    """A string where a number is compared, a list where a string is expected, or None: no match."""
    # given
    facts = Facts(now=NOW, traits={"field": value})
    rule = predicate("traits.field", **{operator: operand})

    # when
    outcome = holds(rule, facts)

    # then
    assert outcome is False


def test_compare_takes_the_values_directly() -> None:
    """compare applies the operator to values already found."""
    # given
    rule = predicate("traits.score", gte=10)

    # when
    outcomes = (compare(rule, [3, 10]), compare(rule, [3, 4]), compare(rule, []))

    # then
    assert outcomes == (True, False, False)


# ---- all / any / not ---------------------------------------------------------------------


def test_all_holds_only_when_every_condition_holds() -> None:
    """all is a conjunction."""
    # given
    both = condition(
        {"all": [{"path": "traits.tier", "eq": "vip"}, {"path": "traits.age", "gt": 30}]}
    )
    one = condition(
        {"all": [{"path": "traits.tier", "eq": "vip"}, {"path": "traits.age", "gt": 40}]}
    )

    # when
    outcomes = (holds(both, CART), holds(one, CART))

    # then
    assert outcomes == (True, False)


def test_any_holds_when_one_condition_holds() -> None:
    """any is a disjunction."""
    # given
    one = condition(
        {"any": [{"path": "traits.tier", "eq": "gold"}, {"path": "traits.age", "gt": 30}]}
    )
    none = condition(
        {"any": [{"path": "traits.tier", "eq": "gold"}, {"path": "traits.age", "gt": 40}]}
    )

    # when
    outcomes = (holds(one, CART), holds(none, CART))

    # then
    assert outcomes == (True, False)


def test_not_inverts_its_condition() -> None:
    """not holds exactly when its inner condition does not."""
    # given
    negated = condition({"not": {"path": "traits.tier", "eq": "vip"}})

    # when
    outcome = holds(negated, CART)

    # then
    assert outcome is False


def test_nested_all_any_not_combine() -> None:
    """all, any and not nest to any depth."""
    # given
    nested = condition(
        {
            "all": [
                {"path": "traits.email", "exists": True},
                {
                    "any": [
                        {"path": "traits.tier", "eq": "gold"},
                        {
                            "not": {
                                "all": [
                                    {"path": "properties.currency", "eq": "EUR"},
                                    {"path": "properties.total", "lt": 100},
                                ]
                            }
                        },
                    ]
                },
            ]
        }
    )

    # when
    outcome = holds(nested, CART)

    # then
    assert outcome is True


# ---- counts of an event in a window -------------------------------------------------------


def history_facts(*history: dict[str, Any]) -> Facts:
    return Facts(now=NOW, history=list(history))


def test_count_counts_events_of_that_name_within_the_window() -> None:
    """Each event of the counted name inside the window adds one."""
    # given
    facts = history_facts(
        {"event": "Product Viewed", "timestamp": ago(days=6)},
        {"event": "Product Viewed", "timestamp": ago(hours=1)},
        {"event": "Product Viewed", "timestamp": ago(minutes=0)},
    )

    # when
    counted = count_in_window(counting("Product Viewed", "7d", gte=1), facts)

    # then
    assert counted == 3


def test_events_outside_the_window_do_not_count() -> None:
    """Events older than the window, or stamped after now, are left out."""
    # given
    facts = history_facts(
        {"event": "Product Viewed", "timestamp": ago(days=8)},
        {"event": "Product Viewed", "timestamp": ago(days=2)},
        {"event": "Product Viewed", "timestamp": ago(minutes=-5)},
    )

    # when
    counted = count_in_window(counting("Product Viewed", "7d", gte=1), facts)

    # then
    assert counted == 1


def test_events_of_other_names_do_not_count() -> None:
    """Only events with the counted name are counted."""
    # given
    facts = history_facts(
        {"event": "Product Viewed", "timestamp": ago(hours=1)},
        {"event": "Product Added", "timestamp": ago(hours=1)},
        {"type": "page", "name": "Product Viewed", "timestamp": ago(hours=1)},
    )

    # when
    counted = count_in_window(counting("Product Viewed", "1d", gte=1), facts)

    # then
    assert counted == 1


def test_where_narrows_the_counted_events() -> None:
    """A where on the count keeps only the events that satisfy it."""
    # given
    facts = history_facts(
        {"event": "Product Viewed", "timestamp": ago(hours=3), "properties": {"price": 80}},
        {"event": "Product Viewed", "timestamp": ago(hours=2), "properties": {"price": 20}},
        {"event": "Product Viewed", "timestamp": ago(hours=1), "properties": {"price": "high"}},
    )
    rule = counting("Product Viewed", "1d", where=[{"path": "properties.price", "gt": 50}], gte=1)

    # when
    counted = count_in_window(rule, facts)

    # then
    assert counted == 1


def test_a_count_condition_compares_the_count() -> None:
    """holds on a count compares the number of events with the operator."""
    # given
    facts = history_facts(
        {"event": "Product Viewed", "timestamp": ago(hours=2)},
        {"event": "Product Viewed", "timestamp": ago(hours=1)},
    )

    # when
    outcomes = (
        holds(counting("Product Viewed", "1d", gte=2), facts),
        holds(counting("Product Viewed", "1d", gte=3), facts),
    )

    # then
    assert outcomes == (True, False)


def test_events_without_a_readable_timestamp_do_not_count() -> None:
    """A missing, non-text or malformed timestamp is skipped rather than raising."""
    # given
    facts = history_facts(
        {"event": "Product Viewed"},
        {"event": "Product Viewed", "timestamp": 1700000000},
        {"event": "Product Viewed", "timestamp": "yesterday"},
    )

    # when
    counted = count_in_window(counting("Product Viewed", "1d", gte=1), facts)

    # then
    assert counted == 0


def test_a_timestamp_without_an_offset_is_read_as_utc() -> None:
    """A naive timestamp counts as UTC instead of raising against an aware clock."""
    # given
    naive = (NOW - timedelta(hours=1)).replace(tzinfo=None).isoformat()
    facts = history_facts({"event": "Product Viewed", "timestamp": naive})

    # when
    counted = count_in_window(counting("Product Viewed", "1d", gte=1), facts)

    # then
    assert counted == 1


def test_a_z_suffixed_timestamp_is_understood() -> None:
    """Timestamps ending in Z, as browsers send them, are read."""
    # given
    stamp = (NOW - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    facts = history_facts({"event": "Product Viewed", "timestamp": stamp})

    # when
    counted = count_in_window(counting("Product Viewed", "1d", gte=1), facts)

    # then
    assert counted == 1


# ---- matching an event -------------------------------------------------------------------


def test_matches_event_needs_the_name_and_every_where() -> None:
    """An event matches when its name is right and every where holds."""
    # given
    match = EventMatch.model_validate(
        {"event": "Order Completed", "where": [{"path": "properties.total", "gt": 100}]}
    )

    # when
    outcome = matches_event(match, CART)

    # then
    assert outcome is True


def test_matches_event_refuses_another_name() -> None:
    """An event of another name does not match, whatever its properties."""
    # given
    match = EventMatch.model_validate({"event": "Product Added"})

    # when
    outcome = matches_event(match, CART)

    # then
    assert outcome is False


def test_matches_event_refuses_when_a_where_fails() -> None:
    """The right name is not enough when a where fails."""
    # given
    match = EventMatch.model_validate(
        {"event": "Order Completed", "where": [{"path": "properties.total", "gt": 500}]}
    )

    # when
    outcome = matches_event(match, CART)

    # then
    assert outcome is False
