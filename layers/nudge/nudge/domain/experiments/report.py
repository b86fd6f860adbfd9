"""A trigger's report, built from its counters alone: the JSON the reports API serves,
``nudge report --json`` prints and the HTML report draws. Pure: the day it is built for
(``today``, UTC) is a parameter; nothing here reads a clock, a table or a file.

A report reads one experiment version's tallies (``counts.Tally``: one arm, one UTC day, the
counts of what happened that day) and ignores every other version's.

- ``variants``: each arm's totals over all days (holdout first, then the variants in
  definition order, arms nobody reached yet included with zeros), its configured ``weight``
  (the holdout's on the variants' scale: h * sum(w) / (1 - h), so 10 % beside 45 and 45 is 10),
  its ``share`` of assignment, conversion rate and revenue per person assigned.
- ``comparisons``: each variant against the baseline (the holdout, else the first variant),
  from ``stats.compare``: uplifts with their fixed-horizon 95 % intervals, the p-value, the
  probability of being better, the always-valid sequential interval and its verdict, the
  sample still needed.
- ``srm``: ``stats.sample_ratio`` of the assigned counts against the configured shares. An
  arm counted under this version that the definition no longer has (a holdout set back to
  0 %) is left out of it and named in ``excluded``. For an earlier version the shares it ran
  with are not known (weights are not part of the version), so there is no check.
- ``daily``: from the first day with any count to ``today`` (or the last counted day, if
  later; at most ``MAX_DAYS`` days, the last ones), each arm's counts *cumulative* up to and
  including that day, and each variant's uplift, sequential interval and verdict as of that
  day: what a team looking every day saw. The sequential interval may be read at every look;
  that is what makes a daily series of it honest (docs/experiments.md). The figures are the
  ones ``stats.compare`` would give that day, computed without its exact P(better), which
  sums up to 20,000 terms and is too slow to repeat per day.
- ``funnel``: assigned, sent, opened, clicked, converted per arm.
- ``fatigue``: unsubscribe and complaint rates per email sent, overall, over the last
  ``RECENT_DAYS`` days up to ``today`` (``recent``) and before them (``earlier``), and flags.
- beside them: ``trigger``, ``version``, ``current_version``, ``as_of`` (``today``), ``goal``
  (event, window as ``7d``, value path; the current definition's, since the goal is not part
  of the version either), ``settings`` (what stats held every figure to) and ``baseline``.

Conversions are counted on the day they happen, up to the goal window after assignment, so
the latest days' assignments have not had their whole window yet: a cumulative rate
understates the final one, in every arm alike, and the comparison stays fair.

A figure that cannot be computed (no one assigned, no conversions) is ``null``, and the
``undefined`` object beside it names each null figure with the reason; there is never a NaN
or an infinity, so ``json.dumps(report, allow_nan=False)`` always works.

A trigger without an experiment is counted under version and arm ``-`` (``NO_EXPERIMENT``):
its report has ``version``, ``goal``, ``baseline`` and ``srm`` null, one variant ``-`` with
its plain counts (sent, opened, clicked, unsubscribed, complained), no comparisons, and its
daily series and fatigue from the same counts.

Fatigue flags:
- the complaint rate over the recent window is at or over 0.1 %, with at least
  ``MIN_SENT_FOR_RATE`` emails sent and ``MIN_COMPLAINTS`` complaints in it. Google's email
  sender guidelines (support.google.com/a/answer/81126) ask senders to keep the spam rate
  reported in Postmaster Tools below 0.1 % and never to reach 0.3 %. Below 1,000 sent the
  rate cannot be read at that resolution (one complaint is already 0.1 % or more), and two
  complaints are required so that one person's click alone never raises the flag;
- the unsubscribe (or complaint) rate is *rising*: the recent rate is above the earlier one
  by a one-sided pooled two-proportion z-test at p < 0.01 (half the two-sided p-value of
  ``stats.two_proportion_p_value``, when the recent rate is the higher), with at least
  ``MIN_SENT_FOR_RATE`` sent in each window and ``MIN_EVENTS_FOR_TREND`` unsubscribes
  (complaints) in the recent one: the z-test's normal approximation wants about five
  events, and a handful on a quiet day should raise nothing. p < 0.01 rather than 0.05
  because the flag is looked at every day.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from nudge.domain.durations import words
from nudge.domain.experiments import stats
from nudge.domain.experiments.counts import NO_EXPERIMENT, Measure, Tally
from nudge.domain.triggers.experiment import HOLDOUT, Experiment
from nudge.domain.triggers.model import Trigger

__all__ = [
    "COMPLAINT_LIMIT",
    "FUNNEL",
    "MAX_DAYS",
    "MIN_COMPLAINTS",
    "MIN_EVENTS_FOR_TREND",
    "MIN_SENT_FOR_RATE",
    "RECENT_DAYS",
    "TREND_P",
    "build_report",
]

FUNNEL: tuple[Measure, ...] = ("assigned", "sent", "opened", "clicked", "converted")
PLAIN: tuple[Measure, ...] = ("sent", "opened", "clicked", "unsubscribed", "complained")
COUNTED: tuple[Measure, ...] = ("assigned", *PLAIN, "converted")
RECENT_DAYS = 7
MIN_SENT_FOR_RATE = 1_000
MIN_COMPLAINTS = 2
MIN_EVENTS_FOR_TREND = 5
COMPLAINT_LIMIT = 0.001  # Google: keep the spam rate below 0.1 % ...
COMPLAINT_NEVER = 0.003  # ... and never reach 0.3 %
TREND_P = 0.01
MAX_DAYS = 400  # a longer daily series shows its last MAX_DAYS days

Counts = dict[Measure, float]


@dataclass(frozen=True)
class _Arms:
    """Which arms the report shows, in order, their configured weights and the baseline."""

    names: tuple[str, ...]
    weights: Mapping[str, float]  # on the trigger's own scale; empty when not known
    baseline: str | None  # None: no experiment, nothing to compare
    unknown_shares: str | None = None  # why there is no sample-ratio check


def build_report(
    trigger: Trigger, tallies: Sequence[Tally], *, version: str | None = None, today: date
) -> dict[str, Any]:
    """One trigger's report as of ``today`` (UTC), from one version's tallies: ``version``,
    else the trigger's current experiment version (``-`` without an experiment)."""
    experiment = trigger.experiment
    current = experiment.version if experiment else NO_EXPERIMENT
    chosen = version or current
    mine = [tally for tally in tallies if tally.version == chosen]
    arms = _arms(experiment, chosen, current, mine)
    settings = stats.Settings(min_effect=experiment.min_effect) if experiment else stats.DEFAULTS
    totals = _sum(mine, arms.names)
    plain = chosen == NO_EXPERIMENT
    return {
        "trigger": trigger.id,
        "version": None if plain else chosen,
        "current_version": None if current == NO_EXPERIMENT else current,
        "as_of": today.isoformat(),
        "goal": None if plain or experiment is None else _goal(experiment),
        "settings": None if plain else settings.to_json(),
        "baseline": arms.baseline,
        "variants": [_variant(name, arms, totals[name], plain) for name in arms.names],
        "comparisons": _comparisons(totals, arms, settings),
        "srm": None if plain else _srm(totals, arms, settings),
        "daily": _daily(mine, arms, settings, today),
        "funnel": {name: {m: _whole(totals[name], m) for m in FUNNEL} for name in arms.names},
        "fatigue": _fatigue(mine, today),
    }


# ---- which arms -------------------------------------------------------------------------


def _arms(
    experiment: Experiment | None, chosen: str, current: str, tallies: Sequence[Tally]
) -> _Arms:
    counted = {tally.arm for tally in tallies}
    if chosen == NO_EXPERIMENT:
        return _Arms(_ordered({NO_EXPERIMENT} | counted, experiment), {}, None)
    if chosen == current and experiment is not None:
        weights = _weights(experiment)
        names = _ordered(set(weights) | counted, experiment)
        return _Arms(names, weights, _baseline(names))
    # An earlier version: its arms are the ones counted; the weights it ran with are not
    # part of its version, so they are not known.
    names = _ordered(counted, experiment)
    why = f"the shares version {chosen} ran with are not known (the trigger now runs {current})"
    return _Arms(names, {}, _baseline(names), unknown_shares=why)


def _weights(experiment: Experiment) -> dict[str, float]:
    """Each arm's configured weight; the holdout's on the variants' scale, so that its
    share of all the weights is the holdout fraction."""
    total = sum(variant.weight for variant in experiment.variants)
    weights = {variant.id: variant.weight for variant in experiment.variants}
    if experiment.holdout > 0:
        weights = {HOLDOUT: experiment.holdout * total / (1 - experiment.holdout), **weights}
    return weights


def _ordered(names: Iterable[str], experiment: Experiment | None) -> tuple[str, ...]:
    """The holdout first, the variants in definition order, any other arm after them."""
    known = [HOLDOUT, *(variant.id for variant in experiment.variants)] if experiment else []
    rank = {name: index for index, name in enumerate(known)}
    return tuple(sorted(set(names), key=lambda name: (rank.get(name, len(rank)), name)))


def _baseline(names: Sequence[str]) -> str | None:
    if HOLDOUT in names:
        return HOLDOUT
    return names[0] if names else None


def _goal(experiment: Experiment) -> dict[str, Any]:
    goal = experiment.goal
    return {"event": goal.event, "within": _span(goal.within), "value": goal.value}


def _span(span: timedelta) -> str:
    """Whole days as days (7d, not 1w), as trigger files write a goal window."""
    seconds = int(span.total_seconds())
    return f"{seconds // 86400}d" if seconds and seconds % 86400 == 0 else words(span)


# ---- totals -----------------------------------------------------------------------------


def _add(into: Counts, counts: Mapping[Measure, float]) -> None:
    for measure, amount in counts.items():
        into[measure] = into.get(measure, 0) + amount


def _sum(tallies: Iterable[Tally], names: Sequence[str]) -> dict[str, Counts]:
    summed: dict[str, Counts] = {name: {} for name in names}
    for tally in tallies:
        _add(summed[tally.arm], tally.counts)
    return summed


def _whole(counts: Mapping[Measure, float], measure: Measure) -> int:
    return round(counts.get(measure, 0))


def _revenue(counts: Mapping[Measure, float]) -> float:
    return round(float(counts.get("revenue", 0)), 6)


def _variant(name: str, arms: _Arms, counts: Counts, plain: bool) -> dict[str, Any]:
    assigned, revenue = _whole(counts, "assigned"), _revenue(counts)
    weight = arms.weights.get(name)
    row: dict[str, Any] = {
        "id": name,
        "weight": None if weight is None else round(weight, 6),
        "share": None if weight is None else round(weight / sum(arms.weights.values()), 6),
        **{measure: _whole(counts, measure) for measure in COUNTED},
        "conversion_rate": _whole(counts, "converted") / assigned if assigned else None,
        "revenue": revenue,
        "revenue_per_assigned": revenue / assigned if assigned else None,
    }
    undefined = {}
    if weight is None:
        undefined = dict.fromkeys(("weight", "share"), _no_weight(arms, plain))
    if not assigned:
        why = "no experiment: no one is assigned" if plain else f"no one assigned to {name} yet"
        undefined |= dict.fromkeys(("conversion_rate", "revenue_per_assigned"), why)
    row["undefined"] = undefined
    return row


def _no_weight(arms: _Arms, plain: bool) -> str:
    if plain:
        return "no experiment: no arms to weigh"
    return arms.unknown_shares or "the experiment no longer has this arm"


def _stat_arms(totals: Mapping[str, Counts], arms: _Arms) -> dict[str, stats.Arm]:
    found = {}
    for name in arms.names:
        assigned = _whole(totals[name], "assigned")
        found[name] = stats.Arm(
            name,
            assigned,
            # Never more conversions than assignments (they cannot be, but a counter is data).
            min(_whole(totals[name], "converted"), assigned),
            revenue=_revenue(totals[name]),
            weight=arms.weights.get(name, 1.0),
        )
    return found


# ---- comparisons and the sample-ratio check ---------------------------------------------


def _interval(interval: stats.Interval | None) -> list[float] | None:
    return [interval.lower, interval.upper] if interval else None


def _comparisons(
    totals: Mapping[str, Counts], arms: _Arms, settings: stats.Settings
) -> list[dict[str, Any]]:
    if arms.baseline is None:
        return []
    found = _stat_arms(totals, arms)
    baseline = found[arms.baseline]
    return [
        _comparison(stats.compare(found[name], baseline, settings))
        for name in arms.names
        if name != arms.baseline
    ]


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
    why = found.reason or "not computable from these counts"
    undefined = {name: why for name, value in figures.items() if value is None}
    if sequential is None:
        undefined["sequential.ci95_abs"] = why
    return {
        "variant": found.variant,
        "baseline": found.baseline,
        **figures,
        "sequential": {"ci95_abs": sequential, "verdict": found.verdict.value},
        "undefined": undefined,
    }


def _srm(totals: Mapping[str, Counts], arms: _Arms, settings: stats.Settings) -> dict[str, Any]:
    if arms.unknown_shares:
        unknown = dict.fromkeys(("p_value", "chi_squared", "degrees_of_freedom"))
        return unknown | {"flag": False, "reason": arms.unknown_shares, "excluded": []}
    found = _stat_arms(totals, arms)
    check = stats.sample_ratio(
        [found[name] for name in arms.names if name in arms.weights], settings.srm_threshold
    )
    return {
        "p_value": check.p_value,
        "flag": check.mismatch is True,
        "chi_squared": check.chi_squared,
        "degrees_of_freedom": check.degrees_of_freedom,
        "reason": check.reason,
        # Counted under this version, gone from its definition: no share to expect.
        "excluded": [n for n in arms.names if n not in arms.weights and found[n].assigned],
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
    tallies: Sequence[Tally], arms: _Arms, settings: stats.Settings, today: date
) -> list[dict[str, Any]]:
    ordered = sorted(tallies, key=lambda tally: tally.day)
    running: dict[str, Counts] = {name: {} for name in arms.names}
    series: list[dict[str, Any]] = []
    taken = 0
    for day in _days(ordered, today):
        # Cumulative: every tally up to and including the day, those before a cut series too.
        while taken < len(ordered) and ordered[taken].day <= day:
            _add(running[ordered[taken].arm], ordered[taken].counts)
            taken += 1
        series.append(_day(day, running, arms, settings))
    return series


def _day(
    day: date, running: Mapping[str, Counts], arms: _Arms, settings: stats.Settings
) -> dict[str, Any]:
    comparisons = {}
    if arms.baseline is not None:
        found = _stat_arms(running, arms)
        baseline = found[arms.baseline]
        comparisons = {
            name: _day_comparison(found[name], baseline, settings)
            for name in arms.names
            if name != arms.baseline
        }
    return {
        "day": day.isoformat(),
        "arms": {name: _day_counts(running[name]) for name in arms.names},
        "comparisons": comparisons,
    }


def _day_counts(counts: Mapping[Measure, float]) -> dict[str, Any]:
    day: dict[str, Any] = {measure: _whole(counts, measure) for measure in COUNTED}
    day["conversion_rate"] = day["converted"] / day["assigned"] if day["assigned"] else None
    return day


def _day_comparison(
    variant: stats.Arm, baseline: stats.Arm, settings: stats.Settings
) -> dict[str, Any]:
    """The uplift, sequential interval and verdict ``stats.compare`` gives, with its rule for
    when there is nothing to compare (no one in an arm, no conversion in either)."""
    if not (variant.assigned and baseline.assigned and (variant.converted or baseline.converted)):
        return {"uplift_abs": None, "sequential_ci95_abs": None, "verdict": "keep_running"}
    baseline_rate = baseline.converted / baseline.assigned
    interval = stats.sequential_interval(
        variant, baseline, settings.level, settings.sequential_tuning
    )
    return {
        "uplift_abs": variant.converted / variant.assigned - baseline_rate,
        "sequential_ci95_abs": _interval(interval),
        "verdict": stats.decide(interval, baseline_rate, settings.min_effect).value,
    }


# ---- fatigue ----------------------------------------------------------------------------


def _fatigue(tallies: Sequence[Tally], today: date) -> dict[str, Any]:
    start = today - timedelta(days=RECENT_DAYS - 1)
    recent = _rates(tally for tally in tallies if start <= tally.day <= today)
    earlier = _rates(tally for tally in tallies if tally.day < start)
    flags = _complaint_flags(recent)
    for measure, label in (("unsubscribed", "unsubscribe"), ("complained", "complaint")):
        p_value = _rising(earlier, recent, measure)
        if p_value is not None:
            flags.append(
                f"{label} rate rising: {_share(recent, measure)} over the last {RECENT_DAYS}"
                f" days against {_share(earlier, measure)} before (one-sided p = {p_value:.2g})"
            )
    return {
        **_rates(tallies),
        "recent_days": RECENT_DAYS,
        "recent": recent,
        "earlier": earlier,
        "flags": flags,
    }


def _rates(tallies: Iterable[Tally]) -> dict[str, Any]:
    sent = unsubscribed = complained = 0
    for tally in tallies:
        sent += round(tally.get("sent"))
        unsubscribed += round(tally.get("unsubscribed"))
        complained += round(tally.get("complained"))
    return {
        "sent": sent,
        "unsubscribed": unsubscribed,
        "complained": complained,
        "unsubscribe_rate": unsubscribed / sent if sent else None,
        "complaint_rate": complained / sent if sent else None,
    }


def _share(rates: Mapping[str, Any], measure: str) -> str:
    count, sent = rates[measure], rates["sent"]
    return f"{count / sent * 100:.2f} % ({count:,} of {sent:,} sent)" if sent else "none sent"


def _complaint_flags(recent: Mapping[str, Any]) -> list[str]:
    rate = recent["complaint_rate"]
    enough = recent["sent"] >= MIN_SENT_FOR_RATE and recent["complained"] >= MIN_COMPLAINTS
    if not enough or rate is None or rate < COMPLAINT_LIMIT:
        return []
    line = COMPLAINT_NEVER if rate >= COMPLAINT_NEVER else COMPLAINT_LIMIT
    what = "never to reach" if line == COMPLAINT_NEVER else "to stay below"
    return [
        f"complaint rate {_share(recent, 'complained')} over the last {RECENT_DAYS} days is"
        f" at or over {line * 100:.1f} %, the spam rate Google asks senders {what}"
    ]


def _rising(earlier: Mapping[str, Any], recent: Mapping[str, Any], measure: str) -> float | None:
    """The one-sided p-value when the recent rate is significantly above the earlier one,
    else None."""
    if min(earlier["sent"], recent["sent"]) < MIN_SENT_FOR_RATE:
        return None
    if recent[measure] < MIN_EVENTS_FOR_TREND:
        return None
    before = stats.Arm("earlier", earlier["sent"], min(earlier[measure], earlier["sent"]))
    now = stats.Arm("recent", recent["sent"], min(recent[measure], recent["sent"]))
    if (now.rate or 0) <= (before.rate or 0):
        return None
    two_sided = stats.two_proportion_p_value(now, before)
    if two_sided is None or two_sided / 2 >= TREND_P:
        return None
    return two_sided / 2
