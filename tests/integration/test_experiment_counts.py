"""Experiment counts on DynamoDB: a count is an item of its own, written after the fact that
makes it happen once. A process that dies between the two writes leaves the fact without
its count; the retry that finds the fact (the condition refuses it and hands it back)
writes the count, once."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from nudge.adapters.experiments import ExperimentStore
from nudge.domain.experiments.attribution import Assignment
from nudge.domain.experiments.counts import CountedUnder, Tally
from nudge.domain.person import PersonId

from tests.integration._harness import Aws

NOW = datetime(2026, 11, 28, 10, tzinfo=UTC)
ADA = PersonId.user("ada")
VERSION = "0123456789ab"
IN_H24 = CountedUnder("abandoned_cart", VERSION, "h24")
OPENED = Assignment(
    trigger="abandoned_cart",
    version=VERSION,
    arm="h24",
    since=NOW,
    until=NOW + timedelta(days=7),
    goal="Order Completed",
    value_path="properties.revenue",
)


@pytest.fixture
def store(aws: Aws) -> ExperimentStore:
    return ExperimentStore(aws.dynamodb, aws.table)


def _dying_before_the_count(store: ExperimentStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """The next count write never happens: the process dies after the fact was written."""
    count = store._count

    def die_once(*args: object, **kwargs: object) -> None:
        monkeypatch.setattr(store, "_count", count)
        raise RuntimeError("the process died")

    monkeypatch.setattr(store, "_count", die_once)


def _crashing(action: Callable[[], object]) -> None:
    with pytest.raises(RuntimeError, match="died"):
        action()


def _counts(store: ExperimentStore) -> dict[str, float]:
    (day,) = store.tallies("abandoned_cart", VERSION)
    return {str(measure): amount for measure, amount in day.counts.items()}


def test_an_assignment_whose_count_died_is_counted_by_its_retry(
    store: ExperimentStore, monkeypatch: pytest.MonkeyPatch
):
    # given the assignment written and the process dead before its count
    _dying_before_the_count(store, monkeypatch)
    _crashing(lambda: store.assign(ADA, OPENED))
    # when the redelivered event opens it again
    opened_again = store.assign(ADA, OPENED)
    # then it is counted once, and not opened twice
    assert (opened_again, _counts(store)) == (False, {"assigned": 1})


def test_a_retried_assignment_counts_once(store: ExperimentStore):
    # given
    store.assign(ADA, OPENED)
    # when
    store.assign(ADA, OPENED)
    store.assign(ADA, OPENED)
    # then
    assert _counts(store) == {"assigned": 1}


def test_a_conversion_whose_counts_died_is_counted_by_its_retry(
    store: ExperimentStore, monkeypatch: pytest.MonkeyPatch
):
    # given an open assignment, and a goal event marked on it before the process died
    store.assign(ADA, OPENED)
    _dying_before_the_count(store, monkeypatch)
    _crashing(lambda: store.convert(ADA, OPENED, 7_000, 30.5, NOW + timedelta(hours=1)))
    # when the redelivered goal event is counted again
    counted_again = store.convert(ADA, OPENED, 7_000, 30.5, NOW + timedelta(hours=1))
    # then the conversion and its revenue are counted once
    assert counted_again is False
    assert _counts(store) == {"assigned": 1, "converted": 1, "revenue": 30.5}


def test_a_fire_count_that_died_is_counted_by_its_retry(
    store: ExperimentStore, monkeypatch: pytest.MonkeyPatch
):
    # given the fire's sent mark written and the process dead before its count
    _dying_before_the_count(store, monkeypatch)
    _crashing(lambda: store.count_fire("fire-1", "sent", IN_H24, NOW))
    # when the send is retried
    counted_again = store.count_fire("fire-1", "sent", IN_H24, NOW)
    # then it is counted once, where the mark says
    assert (counted_again, _counts(store)) == (False, {"sent": 1})


def test_a_fire_opened_on_two_days_counts_once_on_the_first(store: ExperimentStore):
    # given
    store.count_fire("fire-1", "opened", IN_H24, NOW)
    # when it is opened again the next day
    store.count_fire("fire-1", "opened", IN_H24, NOW + timedelta(days=1))
    # then the one count stays on the first day
    assert store.tallies("abandoned_cart", VERSION) == [
        Tally(VERSION, "h24", NOW.date(), {"opened": 1})
    ]
