"""How often experiments looked at every day declare a difference, with and without a
sequential interval.

Simulated experiments, seeded: ``PER_DAY`` people assigned to each arm a day for ``DAYS``
days, each arm's conversions that day drawn from Binomial(``PER_DAY``, rate), and every
experiment looked at after every day on its counts so far.

(1) **A/A**: both arms convert at ``RATE``, so every difference declared is a false
positive. The baseline is the naive rule, stop the first day the pooled z-test's p < 0.05
(``two_proportion_p_value``); Nudge's rule stops the first day the sequential verdict is
better or worse (``sequential_interval`` then ``decide``, as ``compare`` reads them). Goal:
Nudge's share at most 5 %. A third column looks once, at the last day, as a fixed-horizon
test should.

(2) **A/B**: the variant converts ``UPLIFT`` more (5 % against 5.5 %, the default
min_effect), to show what the guarantee costs in power and in days.

Shares carry a Wilson 95 % interval for the simulation's own noise.
"""

from __future__ import annotations

import bisect
import math
import random
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import accumulate

from nudge.domain.experiments.stats import (
    DEFAULTS,
    Arm,
    Verdict,
    decide,
    sequential_interval,
    two_proportion_p_value,
    wilson_interval,
)
from rich.console import Console

from bench.common import Figures, side_by_side

__all__ = ["run"]

EXPERIMENTS = 1_000
DAYS = 30
PER_DAY = 1_000  # assigned to each arm a day
RATE = 0.05
UPLIFT = 0.10  # relative, the A/B run's true effect
SEED = 20261210
NAIVE_ALPHA = 0.05


@dataclass
class Tally:
    """What one rule did over the simulated experiments."""

    better: int = 0
    worse: int = 0
    first_days: list[int] = field(default_factory=list)

    def declare(self, verdict: Verdict, day: int) -> None:
        self.better += verdict is Verdict.BETTER
        self.worse += verdict is Verdict.WORSE
        self.first_days.append(day)

    @property
    def declared(self) -> int:
        return self.better + self.worse


@dataclass
class Run:
    naive: Tally = field(default_factory=Tally)  # p < 0.05 at any daily look
    fixed: Tally = field(default_factory=Tally)  # p < 0.05 at the last day's look only
    sequential: Tally = field(default_factory=Tally)  # better or worse at any daily look
    no_difference: int = 0  # the sequential verdict said no_difference by the last day


def _binomial(people: int, rate: float) -> Callable[[random.Random], int]:
    """A Binomial(people, rate) draw by inverting its CDF (3.11 has no binomialvariate)."""
    log_pmf = (
        math.lgamma(people + 1)
        - math.lgamma(k + 1)
        - math.lgamma(people - k + 1)
        + k * math.log(rate)
        + (people - k) * math.log1p(-rate)
        for k in range(people + 1)
    )
    cdf = list(accumulate(math.exp(value) for value in log_pmf))
    return lambda rng: min(people, bisect.bisect_left(cdf, rng.random() * cdf[-1]))


def _simulate(control_rate: float, variant_rate: float, rng: random.Random) -> Run:
    draw_control = _binomial(PER_DAY, control_rate)
    draw_variant = _binomial(PER_DAY, variant_rate)
    run = Run()
    for _ in range(EXPERIMENTS):
        _one_experiment(run, draw_control, draw_variant, rng)
    return run


def _one_experiment(
    run: Run,
    draw_control: Callable[[random.Random], int],
    draw_variant: Callable[[random.Random], int],
    rng: random.Random,
) -> None:
    control = variant = 0
    naive_seen = sequential_seen = no_difference_seen = False
    for day in range(1, DAYS + 1):
        control += draw_control(rng)
        variant += draw_variant(rng)
        variant_arm = Arm("variant", day * PER_DAY, variant)
        control_arm = Arm("control", day * PER_DAY, control)
        naive = _naive_verdict(variant_arm, control_arm)
        if naive is not Verdict.KEEP_RUNNING and not naive_seen:
            naive_seen = True
            run.naive.declare(naive, day)
        if day == DAYS and naive is not Verdict.KEEP_RUNNING:
            run.fixed.declare(naive, day)
        interval = sequential_interval(
            variant_arm, control_arm, DEFAULTS.level, DEFAULTS.sequential_tuning
        )
        verdict = decide(interval, control / (day * PER_DAY), DEFAULTS.min_effect)
        if verdict in (Verdict.BETTER, Verdict.WORSE) and not sequential_seen:
            sequential_seen = True
            run.sequential.declare(verdict, day)
        no_difference_seen |= verdict is Verdict.NO_DIFFERENCE
    run.no_difference += no_difference_seen


def _naive_verdict(variant: Arm, control: Arm) -> Verdict:
    p_value = two_proportion_p_value(variant, control)
    if p_value is None or p_value >= NAIVE_ALPHA:
        return Verdict.KEEP_RUNNING
    return Verdict.BETTER if variant.converted > control.converted else Verdict.WORSE


def _share(count: int) -> str:
    band = wilson_interval(count, EXPERIMENTS)
    assert band is not None  # EXPERIMENTS > 0
    return f"{count / EXPERIMENTS:.1%} ({band.lower:.1%} to {band.upper:.1%})"


def _median_day(tally: Tally) -> str:
    return f"{statistics.median(tally.first_days):g}" if tally.first_days else "none"


def _tally_json(tally: Tally) -> Figures:
    return {
        "declared": tally.declared,
        "better": tally.better,
        "worse": tally.worse,
        "share": tally.declared / EXPERIMENTS,
        "median_first_day": statistics.median(tally.first_days) if tally.first_days else None,
    }


def _run_json(run: Run) -> Figures:
    return {
        "naive_daily": _tally_json(run.naive),
        "fixed_one_look": _tally_json(run.fixed),
        "sequential_daily": _tally_json(run.sequential),
        "sequential_no_difference": run.no_difference,
    }


COLUMNS = ["", "naive: p < 0.05, daily", "one look at day 30", "Nudge: sequential, daily"]


def run(console: Console) -> Figures:
    rng = random.Random(SEED)
    a_a = _simulate(RATE, RATE, rng)
    a_b = _simulate(RATE, RATE * (1 + UPLIFT), rng)
    setting = (
        f"{EXPERIMENTS:,} experiments, {PER_DAY:,} people per arm a day, looked at every day"
        f" for {DAYS} days"
    )
    console.print(
        side_by_side(
            f"A/A, both arms at {RATE:.0%}: {setting} (baseline: naive daily p-value)",
            COLUMNS,
            [
                [
                    "declared different (false positive)",
                    _share(a_a.naive.declared),
                    _share(a_a.fixed.declared),
                    _share(a_a.sequential.declared),
                ],
                [
                    "median day of the first declaration",
                    _median_day(a_a.naive),
                    _median_day(a_a.fixed),
                    _median_day(a_a.sequential),
                ],
                ["verdict no_difference by day 30", "", "", _share(a_a.no_difference)],
            ],
        )
    )
    console.print(
        side_by_side(
            f"A/B, {RATE:.0%} against {RATE * (1 + UPLIFT):.1%} (+{UPLIFT:.0%}): {setting}",
            COLUMNS,
            [
                [
                    "declared better (power)",
                    _share(a_b.naive.better),
                    _share(a_b.fixed.better),
                    _share(a_b.sequential.better),
                ],
                [
                    "declared worse",
                    _share(a_b.naive.worse),
                    _share(a_b.fixed.worse),
                    _share(a_b.sequential.worse),
                ],
                [
                    "median day of the first declaration",
                    _median_day(a_b.naive),
                    _median_day(a_b.fixed),
                    _median_day(a_b.sequential),
                ],
            ],
        )
    )
    goal = "met" if a_a.sequential.declared / EXPERIMENTS <= 0.05 else "NOT met"
    console.print(
        f"  Goal, A/A declared different by the sequential verdict at most 5 %: {goal}."
        f" Seed {SEED}.",
        highlight=False,
    )
    return {
        "experiments": EXPERIMENTS,
        "days": DAYS,
        "per_day_per_arm": PER_DAY,
        "rate": RATE,
        "uplift": UPLIFT,
        "seed": SEED,
        "a_a": _run_json(a_a),
        "a_b": _run_json(a_b),
    }
