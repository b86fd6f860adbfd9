"""On a simulated audience whose true hours are known (bench/best_hour.py), sending at each
person's best hour opens clearly more than a fixed 10:00 or sending at once, and gets most of
the way to the ceiling of sending at each true hour."""

from __future__ import annotations

import pytest

from bench.best_hour import open_rates, population


@pytest.fixture(scope="module")
def rates() -> dict[str, float]:
    return open_rates(population(people=1000, seed=11), seed=11)


def test_the_best_hour_opens_more_than_a_fixed_time(rates: dict[str, float]) -> None:
    assert rates["best hour"] > rates["fixed 10:00"] + 0.08


def test_the_best_hour_opens_more_than_sending_at_once(rates: dict[str, float]) -> None:
    assert rates["best hour"] > rates["at once"] + 0.10


def test_the_best_hour_gets_most_of_the_way_to_each_persons_true_hour(
    rates: dict[str, float],
) -> None:
    assert rates["best hour"] > 0.6 * rates["true hour"]
