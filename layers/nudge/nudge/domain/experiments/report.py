"""A trigger's report, built from its counters alone: the JSON the reports API serves,
`nudge report --json` prints and the HTML report draws.

- ``variants``: each arm's totals (holdout first, then the variants in definition order,
  arms nobody reached yet included with zeros), its conversion rate and revenue per person.
- ``comparisons``: each variant against the baseline (the holdout, else the first variant),
  from ``stats.compare``: uplifts with their fixed-horizon 95 % intervals, the p-value, the
  probability of being better, the always-valid sequential interval and its verdict, the
  sample still needed. A figure that cannot be computed is ``null`` and ``undefined`` names
  it with the reason.
- ``srm``: the sample-ratio check of assigned counts against the configured shares.
- ``daily``: cumulative counts per arm up to each day, with each variant's uplift and
  sequential interval as of that day: what a team watching daily saw (the chart).
- ``funnel``: assigned, sent, opened, clicked, converted per arm.
- ``fatigue``: unsubscribe and complaint rates per email sent, overall and over the last
  ``RECENT_DAYS``, with flags (rules below).

A trigger without an experiment reports the same shape with one arm, ``-``, holding its
plain counts, no comparisons and no sample-ratio check.

Fatigue flags, checked on the recent window:
- complaint rate at or over 0.1 % with at least ``MIN_SENT_FOR_RATE`` sent: Google's sender
  guidelines ask bulk senders to keep the spam rate reported in Postmaster Tools under 0.1 %
  and never reach 0.3 % (support.google.com/a/answer/81126);
- unsubscribe or complaint rate *rising*: the recent rate is above the earlier one by a
  one-sided two-proportion z-test at p < 0.01, with at least ``MIN_SENT_FOR_RATE`` sent in
  each window and ``MIN_EVENTS_FOR_TREND`` unsubscribes (complaints) in the recent one, so a
  handful of events on a quiet day raises nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from statistics import NormalDist
from typing import Any

from nudge.domain.durations import words
from nudge.domain.experiments import stats
from nudge.domain.experiments.counts import NO_EXPERIMENT, Measure, Tally
from nudge.domain.triggers.experiment import HOLDOUT
from nudge.domain.triggers.model import Trigger

__all__ = ["FUNNEL", "RECENT_DAYS", "build_report"]

FUNNEL: tuple[Measure, ...] = ("assigned", "sent", "opened", "clicked", "converted")
PLAIN: tuple[Measure, ...] = ("sent", "opened", "clicked", "unsubscribed", "complained")
RECENT_DAYS = 7
MIN_SENT_FOR_RATE = 1_000
MIN_EVENTS_FOR_TREND = 5
COMPLAINT_LIMIT = 0.001  # 0.1 %
TREND_P = 0.01
MAX_DAYS = 400  # a daily series longer than this shows its last MAX_DAYS days


@dataclass(frozen=True)
class _Shape:
    """Who the arms are: names in order, their shares, the baseline."""

    arms: tuple[str, ...]
    weights: Mapping[str, float]
    baseline: str | None


def build_report(
    trigger: Trigger, tallies: Sequence[Tally], *, version: str | None = None, today: date
) -> dict[str, Any]:
    """One trigger's report as of ``today`` (UTC), from one version's counters."""
    experiment = trigger.experiment
    chosen = version or (experiment.version if experiment else NO_EXPERIMENT)
    mine = [tally for tally in tallies if tally.version == chosen]
    shape = _shape(trigger, mine)
    settings = stats.Settings(min_effect=experiment.min_effect) if experiment else stats.DEFAULTS
    totals = _sum_by_arm(mine, shape.arms, last_day=None)
    report: dict[str, Any] = {
        "trigger": trigger.id,
        "version": None if chosen == NO_EXPERIMENT else chosen,
        "current_version": experiment.version if experiment else None,
        "as_of": today.isoformat(),
        "goal": _goal(trigger) if experiment else None,
        "baseline": shape.baseline,
        "variants": [_variant(arm, shape.weights.get(arm), totals[arm]) for arm in shape.arms],
        "comparisons": [],
        "srm": None,
        "funnel": {arm: {m: _whole(totals[arm], m) for m in FUNNEL} for arm in shape.arms},
        "daily": _daily(mine, shape, settings, today),
        "fatigue": _fatigue(mine, today),
    }
    if experiment is not None and shape.baseline is not None:
        arms = _stat_arms(totals, shape)
        baseline = arms[shape.baseline]
        report["comparisons"] = [
            _comparison(stats.compare(arms[name], baseline, settings))
            for name in shape.arms
            if name != shape.baseline
        ]
        report["srm"] = _srm(stats.sample_ratio(list(arms.values()), settings.srm_threshold))
    return report


# ---- shape ------------------------------------------------------------------------------


def _shape(trigger: Trigger, tallies: Sequence[Tally]) -> _Shape:
    experiment = trigger.experiment
    if experiment is None:
        return _Shape((NO_EXPERIMENT,), {}, None)
    total = sum(variant.weight for variant in experiment.variants)
    weights = {v.id: (1 - experiment.holdout) * v.weight / total for v in experiment.variants}
    if experiment.holdout > 0:
        weights = {HOLDOUT: experiment.holdout, **weights}
    named = list(weights)
    # An arm counted under this version but since removed from the definition (weights
    # changed to drop it) still shows, without a share.
    named += sorted({tally.arm for tally in tallies} - set(named))
    baseline = HOLDOUT if experiment.holdout > 0 else experiment.variants[0].id
    return _Shape(tuple(named), weights, baseline)


def _goal(trigger: Trigger) -> dict[str, Any]:
    assert trigger.experiment is not None
    goal = trigger.experiment.goal
    return {"event": goal.event, "within": _span(goal.within), "value": goal.value}


def _span(span: timedelta) -> str:
    """Days as days (7d, not 1w): how trigger files usually say a goal window."""
    seconds = int(span.total_seconds())
    return f"{seconds // 86400}d" if seconds and seconds % 86400 == 0 else words(span)


# ---- totals and arms --------------------------------------------------------------------


def _sum_by_arm(
    tallies: Sequence[Tally], arms: Sequence[str], last_day: date | None
) -> dict[str, dict[Measure, float]]:
    summed: dict[str, dict[Measure, float]] = {arm: {} for arm in arms}
    for tally in tallies:
        if last_day is not None and tally.day > last_day:
            continue
        counts = summed.setdefault(tally.arm, {})
        for measure, amount in tally.counts.items():
            counts[measure] = counts.get(measure, 0) + amount
    return summed


def _whole(counts: Mapping[Measure, float], measure: Measure) -> int:
    return round(counts.get(measure, 0))


def _variant(arm: str, weight: float | None, counts: Mapping[Measure, float]) -> dict[str, Any]:
    assigned, converted = _whole(counts, "assigned"), _whole(counts, "converted")
    revenue = round(float(counts.get("revenue", 0)), 6)
    row: dict[str, Any] = {"id": arm, "weight": None if weight is None else round(weight, 6)}
    row |= {measure: _whole(counts, measure) for measure in ("assigned", *PLAIN)}
    row |= {
        "converted": converted,
        "conversion_rate": converted / assigned if assigned else None,
        "revenue": revenue,
        "revenue_per_assigned": revenue / assigned if assigned else None,
    }
    return row


def _stat_arms(
    totals: Mapping[str, Mapping[Measure, float]], shape: _Shape
) -> dict[str, stats.Arm]:
    arms = {}
    for name in shape.arms:
        assigned = _whole(totals[name], "assigned")
        # Never more conversions than assignments (they cannot be, but a counter is data).
        converted = min(_whole(totals[name], "converted"), assigned)
        arms[name] = stats.Arm(
            name,
            assigned,
            converted,
            revenue=float(totals[name].get("revenue", 0)),
            weight=shape.weights.get(name) or 1e-9,  # a removed arm: no share expected
        )
    return arms


def _interval(interval: stats.Interval | None) -> list[float] | None:
    return [interval.lower, interval.upper] if interval else None


def _comparison(found: stats.Comparison) -> dict[str, Any]:
    figures: dict[str, Any] = {
        "uplift_abs": found.absolute_uplift,
        "uplift_rel": found.relative_uplift,
        "ci95_abs": _interval(found.absolute_interval),
        "ci95_rel": _interval(found.relative_interval),
        "p_value": found.p_value,
        "prob_better": found.probability_better,
        "sample_size_per_arm": found.sample_size_per_arm,
        "remaining_per_arm": found.remaining_per_arm,
        "revenue_uplift": found.revenue_uplift,
    }
    sequential = _interval(found.sequential_interval)
    undefined = {name: found.reason or "not computable" for name, v in figures.items() if v is None}
    if sequential is None:
        undefined["sequential.ci95_abs"] = found.reason or "not computable"
    return {
        "variant": found.variant,
        "baseline": found.baseline,
        **figures,
        "sequential": {"ci95_abs": sequential, "verdict": found.verdict.value},
        "undefined": undefined,
    }


def _srm(check: stats.SampleRatio) -> dict[str, Any]:
    return {
        "p_value": check.p_value,
        "flag": check.mismatch,
        "chi_squared": check.chi_squared,
        "degrees_of_freedom": check.degrees_of_freedom,
        "reason": check.reason,
    }


# ---- over time --------------------------------------------------------------------------


def _days(tallies: Sequence[Tally], today: date) -> list[date]:
    if not tallies:
        return []
    first = min(tally.day for tally in tallies)
    last = max(today, max(tally.day for tally in tallies))
    first = max(first, last - timedelta(days=MAX_DAYS - 1))
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _daily(
    tallies: Sequence[Tally], shape: _Shape, settings: stats.Settings, today: date
) -> list[dict[str, Any]]:
    series = []
    for day in _days(tallies, today):
        totals = _sum_by_arm(tallies, shape.arms, last_day=day)
        entry: dict[str, Any] = {
            "day": day.isoformat(),
            "arms": {arm: _day_counts(totals[arm]) for arm in shape.arms},
        }
        if shape.baseline is not None:
            arms = _stat_arms(totals, shape)
            baseline = arms[shape.baseline]
            entry["comparisons"] = {
                name: _day_comparison(stats.compare(arms[name], baseline, settings))
                for name in shape.arms
                if name != shape.baseline
            }
        series.append(entry)
    return series


def _day_counts(counts: Mapping[Measure, float]) -> dict[str, Any]:
    assigned, converted = _whole(counts, "assigned"), _whole(counts, "converted")
    day: dict[str, Any] = {measure: _whole(counts, measure) for measure in ("assigned", *PLAIN)}
    day["converted"] = converted
    day["conversion_rate"] = converted / assigned if assigned else None
    return day


def _day_comparison(found: stats.Comparison) -> dict[str, Any]:
    return {
        "uplift_abs": found.absolute_uplift,
        "sequential_ci95_abs": _interval(found.sequential_interval),
        "verdict": found.verdict.value,
    }


# ---- fatigue ----------------------------------------------------------------------------


def _fatigue(tallies: Sequence[Tally], today: date) -> dict[str, Any]:
    start = today - timedelta(days=RECENT_DAYS - 1)
    recent = [tally for tally in tallies if start <= tally.day <= today]
    earlier = [tally for tally in tallies if tally.day < start]
    overall, latest, before = _rates(tallies), _rates(recent), _rates(earlier)
    flags = []
    if latest["sent"] >= MIN_SENT_FOR_RATE and (latest["complaint_rate"] or 0) >= COMPLAINT_LIMIT:
        flags.append(
            f"complaint rate {latest['complaint_rate']:.2%} over the last {RECENT_DAYS} days"
            f" is at or over {COMPLAINT_LIMIT:.1%}"
        )
    for measure, label in (("unsubscribed", "unsubscribe"), ("complained", "complaint")):
        if _rising(before, latest, measure):
            flags.append(
                f"{label} rate rising: {latest[label + '_rate']:.2%} over the last"
                f" {RECENT_DAYS} days against {before[label + '_rate']:.2%} before"
            )
    return {**overall, "recent_days": RECENT_DAYS, "recent": latest, "flags": flags}


def _rates(tallies: Sequence[Tally]) -> dict[str, Any]:
    sent = sum(tally.get("sent") for tally in tallies)
    unsubscribed = sum(tally.get("unsubscribed") for tally in tallies)
    complained = sum(tally.get("complained") for tally in tallies)
    return {
        "sent": int(sent),
        "unsubscribed": int(unsubscribed),
        "complained": int(complained),
        "unsubscribe_rate": unsubscribed / sent if sent else None,
        "complaint_rate": complained / sent if sent else None,
    }


def _rising(before: Mapping[str, Any], latest: Mapping[str, Any], measure: str) -> bool:
    """One-sided two-proportion z-test: is the recent rate above the earlier one?"""
    n1, n2 = before["sent"], latest["sent"]
    x1, x2 = before[measure], latest[measure]
    if min(n1, n2) < MIN_SENT_FOR_RATE or x2 < MIN_EVENTS_FOR_TREND:
        return False
    pooled = (x1 + x2) / (n1 + n2)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if spread == 0:
        return False
    z = (x2 / n2 - x1 / n1) / spread
    return 1 - NormalDist().cdf(z) < TREND_P
