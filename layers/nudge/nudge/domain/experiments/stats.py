"""The statistics of an experiment, from counts alone: each variant against a baseline.

Each arm brings how many people were assigned, how many of them converted and, optionally,
the revenue they brought. Against the baseline (the holdout, else the first arm) every
variant gets its conversion rate, absolute and relative uplift with fixed-horizon
intervals, a two-proportion z-test, the Bayesian probability that it is better, an interval
that stays valid however often it is looked at, the verdict that interval gives, and the
fixed-horizon sample size for the smallest effect worth finding. The arms together are
checked against their configured weights for a sample-ratio mismatch.

Standard library only (``math`` and ``statistics.NormalDist``), so the Lambda layer carries
it without numpy or scipy. A figure that cannot be computed is ``None`` and the result's
``reason`` says why: never NaN, never a ZeroDivisionError, so every ``to_json()`` passes
``json.dumps(..., allow_nan=False)``. docs/experiments.md gives each formula's source.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from statistics import NormalDist
from typing import Any

__all__ = [
    "DEFAULTS",
    "EXACT_TERMS_LIMIT",
    "Arm",
    "ArmSummary",
    "Comparison",
    "Experiment",
    "Interval",
    "Report",
    "SampleRatio",
    "Settings",
    "Verdict",
    "analyze",
    "chi2_survival",
    "compare",
    "decide",
    "newcombe_interval",
    "probability_better",
    "regularized_upper_gamma",
    "relative_interval",
    "sample_ratio",
    "sample_size_per_arm",
    "sequential_interval",
    "two_proportion_p_value",
    "wilson_interval",
]

_NORMAL = NormalDist()

# P(variant better) is summed exactly while the smallest posterior parameter is at most
# this (the sum has that many terms: about 20 ms at the limit). Past it every Beta posterior
# has a skew under 2/sqrt(20,000) = 0.014, and the normal approximation is well within 1e-3
# of the exact value (about 3e-6 against scipy just past the limit; the tests check both).
EXACT_TERMS_LIMIT = 20_000

# The incomplete gamma function converges in a few dozen steps for the handful of arms an
# experiment has; the cap only stops a runaway loop on absurd input.
_GAMMA_ITERATIONS = 10_000
_GAMMA_EPSILON = 1e-15
_TINY = 1e-300  # keeps Lentz's continued fraction from dividing by zero


@dataclass(frozen=True)
class Settings:
    """What every comparison in a report is held to."""

    level: float = 0.95  # of every interval, fixed and sequential
    # The smallest uplift worth finding, relative to the baseline rate: 0.10 is 10 % of it.
    min_effect: float = 0.10
    power: float = 0.80  # of the fixed-horizon sample size
    srm_threshold: float = 0.001  # a sample-ratio p-value under this flags a mismatch
    # The total assigned to the two arms compared at which the sequential interval is
    # narrowest (GrowthBook's default). It must be fixed before the data: tuning it on the
    # data would void the guarantee.
    sequential_tuning: float = 5_000

    def __post_init__(self) -> None:
        for name in ("level", "power", "srm_threshold"):
            if not 0 < getattr(self, name) < 1:
                raise ValueError(f"{name} must be between 0 and 1")
        for name in ("min_effect", "sequential_tuning"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number")

    @property
    def alpha(self) -> float:
        return 1 - self.level

    def to_json(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "min_effect": self.min_effect,
            "power": self.power,
            "srm_threshold": self.srm_threshold,
            "sequential_tuning": self.sequential_tuning,
        }


DEFAULTS = Settings()


@dataclass(frozen=True)
class Arm:
    """One arm's counts: people assigned, how many of them converted, what they spent."""

    name: str
    assigned: int
    converted: int
    revenue: float | None = None
    weight: float = 1.0  # its configured share of assignment, on any scale (45, 45, 10)

    def __post_init__(self) -> None:
        if self.assigned < 0:
            raise ValueError(f"{self.name}: assigned cannot be negative")
        if not 0 <= self.converted <= self.assigned:
            raise ValueError(f"{self.name}: converted must be between 0 and assigned")
        if not (math.isfinite(self.weight) and self.weight > 0):
            raise ValueError(f"{self.name}: weight must be a positive number")
        if self.revenue is not None and not math.isfinite(self.revenue):
            raise ValueError(f"{self.name}: revenue must be a finite number")

    @property
    def rate(self) -> float | None:
        return self.converted / self.assigned if self.assigned else None

    @property
    def revenue_per_assigned(self) -> float | None:
        if self.revenue is None or not self.assigned:
            return None
        return self.revenue / self.assigned


@dataclass(frozen=True)
class Experiment:
    """The arms as counted, which of them is the holdout, and the settings to read them by."""

    arms: tuple[Arm, ...]
    holdout: str | None = None  # the arm variants are compared with; without one, the first
    settings: Settings = field(default_factory=Settings)

    def __post_init__(self) -> None:
        names = [arm.name for arm in self.arms]
        if not names:
            raise ValueError("an experiment needs at least one arm")
        if len(set(names)) != len(names):
            raise ValueError("arm names must be unique")
        if self.holdout is not None and self.holdout not in names:
            raise ValueError(f"the holdout {self.holdout!r} is not one of the arms")

    @property
    def baseline(self) -> Arm:
        return next((arm for arm in self.arms if arm.name == self.holdout), self.arms[0])

    @property
    def variants(self) -> tuple[Arm, ...]:
        return tuple(arm for arm in self.arms if arm.name != self.baseline.name)


@dataclass(frozen=True)
class Interval:
    lower: float
    upper: float

    def contains(self, value: float) -> bool:
        return self.lower <= value <= self.upper

    def to_json(self) -> dict[str, float]:
        return {"lower": self.lower, "upper": self.upper}


class Verdict(StrEnum):
    """What the sequential interval says; it may be read at any look."""

    KEEP_RUNNING = "keep_running"  # it still holds both zero and a difference worth having
    BETTER = "better"  # wholly above zero: the variant converts more than the baseline
    WORSE = "worse"  # wholly below zero
    NO_DIFFERENCE = "no_difference"  # wholly within ±min_effect: any difference is too small


@dataclass(frozen=True)
class ArmSummary:
    name: str
    assigned: int
    converted: int
    weight: float
    conversion_rate: float | None
    revenue: float | None
    revenue_per_assigned: float | None

    @classmethod
    def of(cls, arm: Arm) -> ArmSummary:
        return cls(
            name=arm.name,
            assigned=arm.assigned,
            converted=arm.converted,
            weight=arm.weight,
            conversion_rate=arm.rate,
            revenue=arm.revenue,
            revenue_per_assigned=arm.revenue_per_assigned,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "assigned": self.assigned,
            "converted": self.converted,
            "weight": self.weight,
            "conversion_rate": self.conversion_rate,
            "revenue": self.revenue,
            "revenue_per_assigned": self.revenue_per_assigned,
        }


@dataclass(frozen=True)
class Comparison:
    """One variant against the baseline. Uplifts are variant minus baseline."""

    variant: str
    baseline: str
    absolute_uplift: float | None
    relative_uplift: float | None
    absolute_interval: Interval | None  # Newcombe's hybrid score interval, fixed horizon
    relative_interval: Interval | None  # delta method on the log of the ratio, fixed horizon
    p_value: float | None  # pooled two-proportion z-test, two-sided, fixed horizon
    probability_better: float | None  # Beta(1, 1) priors
    sequential_interval: Interval | None  # valid at every look (a confidence sequence)
    verdict: Verdict
    sample_size_per_arm: int | None  # fixed horizon, to find min_effect at the set power
    remaining_per_arm: int | None  # of that, still to assign to the smaller of the two arms
    revenue_uplift: float | None  # relative, per person assigned; a point estimate only
    reason: str | None  # why any figure above is None

    @classmethod
    def undefined(cls, variant: Arm, baseline: Arm, reason: str) -> Comparison:
        return cls(
            variant=variant.name,
            baseline=baseline.name,
            absolute_uplift=None,
            relative_uplift=None,
            absolute_interval=None,
            relative_interval=None,
            p_value=None,
            probability_better=None,
            sequential_interval=None,
            verdict=Verdict.KEEP_RUNNING,
            sample_size_per_arm=None,
            remaining_per_arm=None,
            revenue_uplift=None,
            reason=reason,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "variant": self.variant,
            "baseline": self.baseline,
            "absolute_uplift": self.absolute_uplift,
            "relative_uplift": self.relative_uplift,
            "absolute_interval": _interval_json(self.absolute_interval),
            "relative_interval": _interval_json(self.relative_interval),
            "p_value": self.p_value,
            "probability_better": self.probability_better,
            "sequential_interval": _interval_json(self.sequential_interval),
            "verdict": self.verdict.value,
            "sample_size_per_arm": self.sample_size_per_arm,
            "remaining_per_arm": self.remaining_per_arm,
            "revenue_uplift": self.revenue_uplift,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class SampleRatio:
    """Whether people were assigned in the proportions configured."""

    chi_squared: float | None
    degrees_of_freedom: int
    p_value: float | None
    mismatch: bool | None  # p_value under the threshold: assignment or counting is broken
    reason: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "chi_squared": self.chi_squared,
            "degrees_of_freedom": self.degrees_of_freedom,
            "p_value": self.p_value,
            "mismatch": self.mismatch,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Report:
    baseline: str
    arms: tuple[ArmSummary, ...]
    comparisons: tuple[Comparison, ...]
    sample_ratio: SampleRatio
    settings: Settings

    def to_json(self) -> dict[str, Any]:
        return {
            "baseline": self.baseline,
            "arms": [arm.to_json() for arm in self.arms],
            "comparisons": [comparison.to_json() for comparison in self.comparisons],
            "sample_ratio": self.sample_ratio.to_json(),
            "settings": self.settings.to_json(),
        }


def _interval_json(interval: Interval | None) -> dict[str, float] | None:
    return interval.to_json() if interval else None


def analyze(experiment: Experiment) -> Report:
    """Every variant against the baseline, and the sample-ratio check of all arms."""
    baseline = experiment.baseline
    settings = experiment.settings
    return Report(
        baseline=baseline.name,
        arms=tuple(ArmSummary.of(arm) for arm in experiment.arms),
        comparisons=tuple(compare(arm, baseline, settings) for arm in experiment.variants),
        sample_ratio=sample_ratio(experiment.arms, settings.srm_threshold),
        settings=settings,
    )


def compare(variant: Arm, baseline: Arm, settings: Settings = DEFAULTS) -> Comparison:
    """One variant against the baseline: every figure of a ``Comparison``."""
    blocked = _nothing_to_compare(variant, baseline)
    if blocked:
        return Comparison.undefined(variant, baseline, blocked)
    variant_rate = variant.converted / variant.assigned
    baseline_rate = baseline.converted / baseline.assigned
    sequential = sequential_interval(variant, baseline, settings.level, settings.sequential_tuning)
    required = sample_size_per_arm(
        baseline_rate, settings.min_effect, settings.level, settings.power
    )
    gaps = _gaps(variant, baseline, settings)
    return Comparison(
        variant=variant.name,
        baseline=baseline.name,
        absolute_uplift=variant_rate - baseline_rate,
        relative_uplift=(variant_rate - baseline_rate) / baseline_rate if baseline_rate else None,
        absolute_interval=newcombe_interval(variant, baseline, settings.level),
        relative_interval=relative_interval(variant, baseline, settings.level),
        p_value=two_proportion_p_value(variant, baseline),
        probability_better=probability_better(variant, baseline),
        sequential_interval=sequential,
        verdict=decide(sequential, baseline_rate, settings.min_effect),
        sample_size_per_arm=required,
        remaining_per_arm=(
            None
            if required is None
            else max(0, required - min(variant.assigned, baseline.assigned))
        ),
        revenue_uplift=_revenue_uplift(variant, baseline),
        reason="; ".join(gaps) if gaps else None,
    )


def _nothing_to_compare(variant: Arm, baseline: Arm) -> str | None:
    empty = [arm.name for arm in (variant, baseline) if not arm.assigned]
    if empty:
        return f"no one assigned to {' or '.join(empty)} yet"
    if not (variant.converted or baseline.converted):
        return "no conversions in either arm yet"
    return None


def _gaps(variant: Arm, baseline: Arm, settings: Settings) -> list[str]:
    """Why the figures that are None in a comparison of two arms with people are None."""
    gaps = []
    if not baseline.converted:
        gaps.append(
            f"{baseline.name} has no conversions yet: the relative uplift, its interval,"
            " the min_effect band and the sample size need a baseline rate"
        )
    elif baseline.converted / baseline.assigned * (1 + settings.min_effect) > 1:
        gaps.append(
            f"an uplift of {settings.min_effect:.0%} would take {baseline.name}'s rate past"
            " 100 %: no sample size"
        )
    if not variant.converted:
        gaps.append(f"{variant.name} has no conversions yet: the relative interval needs some")
    if _all_or_none(variant) and _all_or_none(baseline):
        gaps.append(
            "each arm converted everyone or no one: no variance for the sequential interval"
            + (" or the p-value" if variant.converted and baseline.converted else "")
        )
    given_revenue = variant.revenue is not None and baseline.revenue is not None
    if given_revenue and _revenue_uplift(variant, baseline) is None:
        gaps.append(f"{baseline.name}'s revenue is too near zero for a relative revenue uplift")
    return gaps


def _all_or_none(arm: Arm) -> bool:
    return arm.converted in (0, arm.assigned)


def _revenue_uplift(variant: Arm, baseline: Arm) -> float | None:
    # Counts carry no per-person spread of revenue, so there is no interval to give here.
    variant_value = variant.revenue_per_assigned
    baseline_value = baseline.revenue_per_assigned
    if variant_value is None or not baseline_value:
        return None
    uplift = (variant_value - baseline_value) / baseline_value
    return uplift if math.isfinite(uplift) else None


def _z(level: float) -> float:
    """The two-sided critical value: 1.96 for 0.95."""
    return _NORMAL.inv_cdf(1 - (1 - level) / 2)


def two_proportion_p_value(variant: Arm, baseline: Arm) -> float | None:
    """Two-sided p-value of the pooled two-proportion z-test; None without variance."""
    if not (variant.assigned and baseline.assigned):
        return None
    pooled = (variant.converted + baseline.converted) / (variant.assigned + baseline.assigned)
    variance = pooled * (1 - pooled) * (1 / variant.assigned + 1 / baseline.assigned)
    if variance <= 0:
        return None
    difference = variant.converted / variant.assigned - baseline.converted / baseline.assigned
    # erfc keeps its precision in the far tail, where 1 - cdf would round to 0 early.
    return math.erfc(abs(difference) / math.sqrt(variance) / math.sqrt(2))


def wilson_interval(converted: int, assigned: int, level: float = 0.95) -> Interval | None:
    """Wilson's score interval for one rate (Wilson 1927)."""
    if not assigned:
        return None
    z = _z(level)
    rate = converted / assigned
    shrink = 1 + z * z / assigned
    centre = (rate + z * z / (2 * assigned)) / shrink
    half = z * math.sqrt(rate * (1 - rate) / assigned + z * z / (4 * assigned**2)) / shrink
    return Interval(max(0.0, centre - half), min(1.0, centre + half))


def newcombe_interval(variant: Arm, baseline: Arm, level: float = 0.95) -> Interval | None:
    """Interval for variant rate minus baseline rate: Newcombe's hybrid score interval
    (Newcombe 1998, method 10), built from each arm's Wilson interval.

    Chosen over Wald's because conversion rates are low and arms are small early on: there
    Wald's interval covers less than it says and collapses to a point at zero conversions,
    while this one keeps close to its level and stays within [-1, 1].
    """
    variant_band = wilson_interval(variant.converted, variant.assigned, level)
    baseline_band = wilson_interval(baseline.converted, baseline.assigned, level)
    if variant_band is None or baseline_band is None:
        return None
    variant_rate = variant.converted / variant.assigned
    baseline_rate = baseline.converted / baseline.assigned
    difference = variant_rate - baseline_rate
    below = math.hypot(variant_rate - variant_band.lower, baseline_band.upper - baseline_rate)
    above = math.hypot(variant_band.upper - variant_rate, baseline_rate - baseline_band.lower)
    return Interval(difference - below, difference + above)


def relative_interval(variant: Arm, baseline: Arm, level: float = 0.95) -> Interval | None:
    """Interval for variant rate / baseline rate - 1, by the delta method on the log of the
    ratio: the interval is symmetric in log space, so it stays above -100 % and is as lopsided
    as a ratio's should be. None until both arms have a conversion."""
    if not (variant.converted and baseline.converted):
        return None
    log_ratio = math.log(
        (variant.converted * baseline.assigned) / (baseline.converted * variant.assigned)
    )
    # Var(log p) ~ (1 - p) / (n p) = 1/converted - 1/assigned, for each arm.
    variance = (
        1 / variant.converted
        - 1 / variant.assigned
        + 1 / baseline.converted
        - 1 / baseline.assigned
    )
    half = _z(level) * math.sqrt(max(0.0, variance))
    return Interval(math.expm1(log_ratio - half), math.expm1(log_ratio + half))


def probability_better(variant: Arm, baseline: Arm) -> float | None:
    """P(the variant's true rate > the baseline's), each rate Beta(1 + converted,
    1 + not converted): Beta(1, 1) priors updated by the counts.

    Exact (Evan Miller's closed form, a sum over one posterior parameter) while the smallest
    parameter is at most ``EXACT_TERMS_LIMIT``, then the normal approximation.
    """
    if not (variant.assigned and baseline.assigned):
        return None
    mine = _posterior(variant)
    theirs = _posterior(baseline)
    if min(*mine, *theirs) > EXACT_TERMS_LIMIT:
        return _normal_chance_above(mine, theirs)
    # The sum runs over the first argument's alpha; any of the four parameters can be made
    # that one through P(V > B) = 1 - P(B > V) and 1 - p ~ Beta(beta, alpha), which turns
    # "V above B" into "1 - B above 1 - V". The smallest parameter means the fewest terms.
    mine_flipped = (mine[1], mine[0])
    theirs_flipped = (theirs[1], theirs[0])
    routes = [
        (mine[0], mine, theirs, False),
        (theirs[0], theirs, mine, True),
        (theirs[1], theirs_flipped, mine_flipped, False),
        (mine[1], mine_flipped, theirs_flipped, True),
    ]
    _, first, second, complement = min(routes, key=lambda route: route[0])
    chance = _chance_above(first, second)
    # Rounding in the sum can leave it a hair outside [0, 1].
    return min(1.0, max(0.0, 1 - chance if complement else chance))


def _posterior(arm: Arm) -> tuple[int, int]:
    return arm.converted + 1, arm.assigned - arm.converted + 1


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def _chance_above(first: tuple[int, int], second: tuple[int, int]) -> float:
    """P(X > Y) for X ~ Beta(first), Y ~ Beta(second), with first's alpha a whole number:
    sum over i < alpha_X of B(alpha_Y + i, beta_X + beta_Y) /
    ((beta_X + i) B(1 + i, beta_X) B(alpha_Y, beta_Y)) (Miller 2015)."""
    alpha_x, beta_x = first
    alpha_y, beta_y = second
    normaliser = _log_beta(alpha_y, beta_y)
    return math.fsum(
        math.exp(
            _log_beta(alpha_y + i, beta_x + beta_y)
            - math.log(beta_x + i)
            - _log_beta(1 + i, beta_x)
            - normaliser
        )
        for i in range(alpha_x)
    )


def _normal_chance_above(first: tuple[int, int], second: tuple[int, int]) -> float:
    """P(X > Y) with each Beta replaced by the normal of its mean and variance."""

    def moments(alpha: int, beta: int) -> tuple[float, float]:
        total = alpha + beta
        return alpha / total, alpha * beta / (total * total * (total + 1))

    mean_x, variance_x = moments(*first)
    mean_y, variance_y = moments(*second)
    return _NORMAL.cdf((mean_x - mean_y) / math.sqrt(variance_x + variance_y))


def sequential_interval(
    variant: Arm, baseline: Arm, level: float = 0.95, tuning: float = 5_000
) -> Interval | None:
    """A confidence sequence for variant rate minus baseline rate: with probability
    ``level`` it holds the true difference at every look at once, so it may be watched
    continuously and the experiment stopped whenever it excludes zero.

    The asymptotic confidence sequence of Waudby-Smith, Arbour, Sinha, Kennedy & Ramdas,
    "Time-uniform central limit theory and asymptotic confidence sequences" (Annals of
    Statistics 2024, arXiv:2103.06476), with the two-sided normal-mixture boundary of
    Howard, Ramdas, McAuliffe & Sekhon, "Time-uniform, nonparametric, nonasymptotic
    confidence sequences" (Annals of Statistics 49(2), 2021). As GrowthBook applies it: N
    is the total assigned to both arms and the per-person variance is N times the
    difference's (unpooled) variance. None while neither arm has any variance.
    """
    if not (variant.assigned and baseline.assigned):
        return None
    variant_rate = variant.converted / variant.assigned
    baseline_rate = baseline.converted / baseline.assigned
    variance = (
        variant_rate * (1 - variant_rate) / variant.assigned
        + baseline_rate * (1 - baseline_rate) / baseline.assigned
    )
    if variance <= 0:
        return None
    total = variant.assigned + baseline.assigned
    half = _mixture_half_width(variance * total, total, 1 - level, tuning)
    difference = variant_rate - baseline_rate
    # The true difference lies in [-1, 1], so the sequence may be cut to it.
    return Interval(max(-1.0, difference - half), min(1.0, difference + half))


def _mixture_half_width(spread: float, total: int, alpha: float, tuning: float) -> float:
    """Half-width of the normal-mixture confidence sequence after ``total`` observations of
    per-observation variance ``spread``; the mixing width rho makes it narrowest at
    ``tuning`` observations (Waudby-Smith et al. 2024, the rho they recommend)."""
    rho_squared = (-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / tuning
    growth = total * rho_squared + 1
    return math.sqrt(
        spread * 2 * growth / (total * total * rho_squared) * math.log(math.sqrt(growth) / alpha)
    )


def decide(interval: Interval | None, baseline_rate: float | None, min_effect: float) -> Verdict:
    """The verdict of a sequential interval for the absolute difference. Better and worse
    come first: an interval that excludes zero yet lies within ±min_effect is a real effect,
    only a small one, and the uplift figures say how small."""
    if interval is None:
        return Verdict.KEEP_RUNNING
    if interval.lower > 0:
        return Verdict.BETTER
    if interval.upper < 0:
        return Verdict.WORSE
    if baseline_rate:
        band = min_effect * baseline_rate
        if -band < interval.lower and interval.upper < band:
            return Verdict.NO_DIFFERENCE
    return Verdict.KEEP_RUNNING


def sample_size_per_arm(
    baseline_rate: float, min_effect: float, level: float = 0.95, power: float = 0.80
) -> int | None:
    """People per arm a fixed-horizon, two-sided pooled z-test needs to find a relative
    uplift of ``min_effect`` with probability ``power``, two equal arms (Fleiss, Levin &
    Paik 2003, without continuity correction). A fixed-horizon figure: it says how long to
    plan for, not when the sequential verdict will come. None when the uplift would take
    the rate to 0 or past 1."""
    target = baseline_rate * (1 + min_effect)
    if not 0 < baseline_rate < 1 or target > 1:
        return None
    average = (baseline_rate + target) / 2
    under_null = _z(level) * math.sqrt(2 * average * (1 - average))
    under_effect = _NORMAL.inv_cdf(power) * math.sqrt(
        baseline_rate * (1 - baseline_rate) + target * (1 - target)
    )
    return math.ceil(((under_null + under_effect) / (target - baseline_rate)) ** 2)


def sample_ratio(arms: Sequence[Arm], threshold: float = 0.001) -> SampleRatio:
    """Pearson's chi-squared goodness of fit of the assigned counts to the arms' weights."""
    degrees = len(arms) - 1
    total = sum(arm.assigned for arm in arms)
    if degrees < 1:
        return SampleRatio(None, 0, None, None, "a single arm: no split to check")
    if not total:
        return SampleRatio(None, degrees, None, None, "no one assigned yet")
    weights = sum(arm.weight for arm in arms)
    statistic = 0.0
    for arm in arms:
        expected = total * arm.weight / weights
        statistic += (arm.assigned - expected) ** 2 / expected
    p_value = chi2_survival(statistic, degrees)
    return SampleRatio(statistic, degrees, p_value, p_value < threshold, None)


def chi2_survival(statistic: float, degrees_of_freedom: int) -> float:
    """P(a chi-squared variable with that many degrees of freedom >= statistic)."""
    if degrees_of_freedom < 1:
        raise ValueError("degrees_of_freedom must be at least 1")
    return regularized_upper_gamma(degrees_of_freedom / 2, statistic / 2)


def regularized_upper_gamma(a: float, x: float) -> float:
    """Q(a, x) = Gamma(a, x) / Gamma(a): the power series of P below x = a + 1, the
    continued fraction of Q above it, where each converges fast (Numerical Recipes, 3rd
    ed., section 6.2)."""
    if a <= 0:
        raise ValueError("a must be positive")
    if x <= 0:
        return 1.0
    if x < a + 1:
        return max(0.0, 1 - _lower_gamma_series(a, x))
    return _upper_gamma_fraction(a, x)


def _gamma_prefactor(a: float, x: float) -> float:
    return math.exp(a * math.log(x) - x - math.lgamma(a))


def _lower_gamma_series(a: float, x: float) -> float:
    term = total = 1 / a
    denominator = a
    for _ in range(_GAMMA_ITERATIONS):
        denominator += 1
        term *= x / denominator
        total += term
        if term < total * _GAMMA_EPSILON:
            break
    return total * _gamma_prefactor(a, x)


def _upper_gamma_fraction(a: float, x: float) -> float:
    # Modified Lentz's method; b, c, d and h are the book's names for its running terms.
    b = x + 1 - a
    c = 1 / _TINY
    d = 1 / b
    h = d
    for i in range(1, _GAMMA_ITERATIONS):
        numerator = -i * (i - a)
        b += 2
        d = numerator * d + b
        d = 1 / (d if abs(d) > _TINY else _TINY)
        c = b + numerator / c
        c = c if abs(c) > _TINY else _TINY
        step = d * c
        h *= step
        if abs(step - 1) < _GAMMA_EPSILON:
            break
    return h * _gamma_prefactor(a, x)
