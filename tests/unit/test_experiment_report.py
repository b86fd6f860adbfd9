"""A trigger's report from its tallies (nudge.domain.experiments.report.build_report): each
arm's totals and shares, each variant against the baseline as stats.compare gives it, the
cumulative daily series, the sample-ratio check, fatigue flags, and nulls with reasons
instead of NaN."""

from __future__ import annotations

import json
import time
from datetime import date, timedelta
from typing import Any, cast

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nudge.domain.experiments import stats
from nudge.domain.experiments.counts import NO_EXPERIMENT, Measure, Tally
from nudge.domain.experiments.report import (
    COMPLAINT_LIMIT,
    MIN_SENT_FOR_RATE,
    RECENT_DAYS,
    build_report,
)
from nudge.domain.triggers.loader import parse_trigger
from nudge.domain.triggers.model import Trigger

TODAY = date(2026, 12, 10)
DAY = timedelta(days=1)

CART = """\
id: abandoned_cart
when: {event: Product Added}
key: properties.cart_id
unless: {event: Order Completed, within: 24h, same: properties.cart_id}
send: {channel: email, template: abandoned_cart}
experiment:
  variants:
    - {id: h24, weight: 45, unless: {within: 24h}}
    - {id: h48, weight: 45, unless: {within: 48h}}
  holdout: 10%
  goal: {event: Order Completed, within: 7d, value: properties.revenue}
"""

# Two variants at equal weights and no holdout: the first variant is the baseline.
SPLIT = """\
id: subject_test
when: {event: Product Added}
send: {channel: email, template: abandoned_cart}
experiment:
  variants:
    - {id: plain, weight: 1}
    - {id: fancy, weight: 1, send: {template: product_interest}}
"""

PLAIN = """\
id: re_engagement
when: {inactive: 7d}
send: {channel: email, template: re_engagement}
"""


def trigger(text: str) -> Trigger:
    parsed, problems = parse_trigger(text, "trigger.yaml")
    assert problems == []
    assert parsed is not None
    return parsed


def version_of(parsed: Trigger) -> str:
    assert parsed.experiment is not None
    return parsed.experiment.version


def tally(version: str, arm: str, day: date, **counts: float) -> Tally:
    return Tally(version, arm, day, cast("dict[Measure, float]", counts))


def variant(report: dict[str, Any], arm: str) -> dict[str, Any]:
    return next(row for row in report["variants"] if row["id"] == arm)


def comparison(report: dict[str, Any], arm: str) -> dict[str, Any]:
    return next(row for row in report["comparisons"] if row["variant"] == arm)


def cart_counts(day: date = TODAY) -> tuple[Trigger, list[Tally]]:
    """The case study's counts: holdout 1,000 assigned / 40 converted, h24 4,500 / 230,
    h48 4,500 / 190, all on one day."""
    cart = trigger(CART)
    version = version_of(cart)
    return cart, [
        tally(version, "holdout", day, assigned=1_000, converted=40, revenue=2_000.0),
        tally(version, "h24", day, assigned=4_500, converted=230, revenue=11_500.0, sent=4_000),
        tally(version, "h48", day, assigned=4_500, converted=190, revenue=9_000.0, sent=3_900),
    ]


# ---- totals and comparisons -------------------------------------------------------------


def test_known_counts_give_each_arms_conversion_rate():
    """Each arm's rate is its converted over its assigned."""
    # given
    cart, tallies = cart_counts()

    # when
    report = build_report(cart, tallies, today=TODAY)

    # then
    rates = {row["id"]: row["conversion_rate"] for row in report["variants"]}
    assert rates == {"holdout": 40 / 1_000, "h24": 230 / 4_500, "h48": 190 / 4_500}
    assert variant(report, "h24")["revenue_per_assigned"] == 11_500.0 / 4_500


def test_known_counts_give_the_uplift_and_figures_of_stats_compare():
    """A variant's comparison carries stats.compare's figures for the same counts."""
    # given
    cart, tallies = cart_counts()
    expected = stats.compare(
        stats.Arm("h24", 4_500, 230, revenue=11_500.0, weight=45),
        stats.Arm("holdout", 1_000, 40, revenue=2_000.0, weight=10),
        stats.Settings(min_effect=0.10),
    )

    # when
    found = comparison(build_report(cart, tallies, today=TODAY), "h24")

    # then
    assert found["baseline"] == "holdout"
    assert found["uplift_abs"] == 230 / 4_500 - 40 / 1_000
    assert found["uplift_rel"] == expected.relative_uplift
    assert found["p_value"] == expected.p_value
    assert found["prob_better"] == expected.probability_better
    assert expected.absolute_interval is not None
    assert found["ci95_abs"] == [expected.absolute_interval.lower, expected.absolute_interval.upper]
    assert expected.sequential_interval is not None
    assert found["sequential"] == {
        "ci95_abs": [expected.sequential_interval.lower, expected.sequential_interval.upper],
        "verdict": expected.verdict.value,
    }
    assert found["sample_size_per_arm"] == expected.sample_size_per_arm
    assert found["remaining_per_arm"] == expected.remaining_per_arm
    assert found["undefined"] == {}


def test_variants_list_every_arm_holdout_first_with_its_weight_and_share():
    """Every arm is listed in definition order after the holdout, counted or not, with its
    configured weight (the holdout's on the variants' scale) and its share."""
    # given: only h48 has counts
    cart = trigger(CART)
    tallies = [tally(version_of(cart), "h48", TODAY, assigned=3)]

    # when
    report = build_report(cart, tallies, today=TODAY)

    # then
    rows = [(row["id"], row["weight"], row["share"], row["assigned"]) for row in report["variants"]]
    assert rows == [("holdout", 10.0, 0.1, 0), ("h24", 45.0, 0.45, 0), ("h48", 45.0, 0.45, 3)]
    assert report["baseline"] == "holdout"
    assert [c["variant"] for c in report["comparisons"]] == ["h24", "h48"]


def test_the_first_variant_is_the_baseline_without_a_holdout():
    """Without a holdout every other variant is compared with the first."""
    # given
    split = trigger(SPLIT)

    # when
    report = build_report(split, [], today=TODAY)

    # then
    assert report["baseline"] == "plain"
    assert [(c["variant"], c["baseline"]) for c in report["comparisons"]] == [("fancy", "plain")]


def test_the_header_names_the_trigger_version_and_goal():
    """The report says which trigger, which experiment version and which goal it is for."""
    # given
    cart, tallies = cart_counts()

    # when
    report = build_report(cart, tallies, today=TODAY)

    # then
    assert report["trigger"] == "abandoned_cart"
    assert report["version"] == version_of(cart)
    assert report["goal"] == {
        "event": "Order Completed",
        "within": "7d",
        "value": "properties.revenue",
    }


def test_a_goal_window_written_in_weeks_is_given_in_days():
    """``within: 1w`` is reported as ``7d``, the way trigger files write a goal window."""
    # given
    cart = trigger(CART.replace("within: 7d", "within: 1w"))

    # when
    goal = build_report(cart, [], today=TODAY)["goal"]

    # then
    assert goal["within"] == "7d"


def test_the_funnel_gives_each_arms_steps():
    """The funnel holds assigned, sent, opened, clicked and converted per arm."""
    # given
    cart, tallies = cart_counts()

    # when
    funnel = build_report(cart, tallies, today=TODAY)["funnel"]

    # then
    assert funnel["h24"] == {
        "assigned": 4_500,
        "sent": 4_000,
        "opened": 0,
        "clicked": 0,
        "converted": 230,
    }
    assert list(funnel) == ["holdout", "h24", "h48"]


# ---- versions ---------------------------------------------------------------------------


def test_tallies_of_other_versions_are_ignored():
    """Only the current version's tallies count; an earlier version's are left out."""
    # given
    cart, tallies = cart_counts()
    earlier = [tally("0123456789ab", "h24", TODAY, assigned=999, converted=999)]

    # when
    report = build_report(cart, tallies + earlier, today=TODAY)

    # then
    assert variant(report, "h24")["assigned"] == 4_500
    assert variant(report, "h24")["converted"] == 230


def test_an_earlier_version_reports_its_own_arms_without_a_sample_ratio_check():
    """Asked for an earlier version, the report shows the arms counted under it; the shares
    it ran with are not part of its version, so there is no sample-ratio check."""
    # given
    cart, tallies = cart_counts()
    earlier = [
        tally("0123456789ab", "a", TODAY, assigned=100, converted=5),
        tally("0123456789ab", "b", TODAY, assigned=100, converted=9),
    ]

    # when
    report = build_report(cart, tallies + earlier, version="0123456789ab", today=TODAY)

    # then
    assert report["version"] == "0123456789ab"
    assert report["current_version"] == version_of(cart)
    assert [row["id"] for row in report["variants"]] == ["a", "b"]
    assert variant(report, "a")["weight"] is None
    assert "not known" in variant(report, "a")["undefined"]["weight"]
    assert [(c["variant"], c["baseline"]) for c in report["comparisons"]] == [("b", "a")]
    assert report["srm"]["p_value"] is None
    assert report["srm"]["flag"] is False
    assert "not known" in report["srm"]["reason"]


# ---- daily ------------------------------------------------------------------------------


def test_daily_counts_are_cumulative_from_the_first_counted_day_to_today():
    """Each day holds everything up to and including it; days without counts repeat the
    day before, up to today."""
    # given
    cart = trigger(CART)
    version = version_of(cart)
    first = TODAY - 3 * DAY
    tallies = [
        tally(version, "h24", first, assigned=10, converted=1),
        tally(version, "h24", first + 2 * DAY, assigned=5, converted=2),
    ]

    # when
    daily = build_report(cart, tallies, today=TODAY)["daily"]

    # then
    h24 = [(d["day"], d["arms"]["h24"]["assigned"], d["arms"]["h24"]["converted"]) for d in daily]
    assert h24 == [
        ("2026-12-07", 10, 1),
        ("2026-12-08", 10, 1),
        ("2026-12-09", 15, 3),
        ("2026-12-10", 15, 3),
    ]
    assert daily[2]["arms"]["h24"]["conversion_rate"] == 3 / 15
    assert daily[0]["arms"]["holdout"]["conversion_rate"] is None


def test_daily_runs_to_the_last_counted_day_when_it_is_after_today():
    """A count dated after ``today`` still gets its day in the series."""
    # given
    cart = trigger(CART)
    tallies = [tally(version_of(cart), "h24", TODAY + DAY, assigned=1)]

    # when
    daily = build_report(cart, tallies, today=TODAY)["daily"]

    # then
    assert [d["day"] for d in daily] == ["2026-12-11"]


def test_the_last_day_of_the_series_agrees_with_the_comparisons():
    """The chart's last point is the table's figures: same uplift, sequential interval and
    verdict as the comparison of all the counts."""
    # given: the case study's counts over two days
    cart = trigger(CART)
    version = version_of(cart)
    tallies = [
        tally(version, "holdout", TODAY - DAY, assigned=400, converted=15),
        tally(version, "h24", TODAY - DAY, assigned=1_800, converted=90),
        tally(version, "holdout", TODAY, assigned=600, converted=25),
        tally(version, "h24", TODAY, assigned=2_700, converted=140),
    ]

    # when
    report = build_report(cart, tallies, today=TODAY)

    # then
    last = report["daily"][-1]["comparisons"]["h24"]
    found = comparison(report, "h24")
    assert last["uplift_abs"] == found["uplift_abs"] == 230 / 4_500 - 40 / 1_000
    assert last["sequential_ci95_abs"] == found["sequential"]["ci95_abs"]
    assert last["verdict"] == found["sequential"]["verdict"]


def test_daily_gives_the_sequential_interval_as_of_each_day():
    """Each day's interval is stats.sequential_interval of the counts up to that day."""
    # given
    cart = trigger(CART)
    version = version_of(cart)
    tallies = [
        tally(version, "holdout", TODAY - DAY, assigned=200, converted=8),
        tally(version, "h24", TODAY - DAY, assigned=900, converted=50),
        tally(version, "holdout", TODAY, assigned=200, converted=9),
        tally(version, "h24", TODAY, assigned=900, converted=44),
    ]

    # when
    daily = build_report(cart, tallies, today=TODAY)["daily"]

    # then
    first = stats.sequential_interval(stats.Arm("h24", 900, 50), stats.Arm("holdout", 200, 8))
    assert first is not None
    assert daily[0]["comparisons"]["h24"]["sequential_ci95_abs"] == [first.lower, first.upper]
    assert daily[1]["comparisons"]["h24"]["uplift_abs"] == 94 / 1_800 - 17 / 400


def test_a_year_of_daily_counts_builds_quickly():
    """A year of three arms' days builds in well under a second or two: the series does not
    repeat stats.compare's exact P(better) per day (that took 16 s)."""
    # given
    cart = trigger(CART)
    version = version_of(cart)
    tallies = [
        tally(version, arm, TODAY - n * DAY, assigned=size, converted=size // 20)
        for n in range(365)
        for arm, size in (("holdout", 1_000), ("h24", 4_500), ("h48", 4_500))
    ]

    # when
    started = time.perf_counter()
    report = build_report(cart, tallies, today=TODAY)
    elapsed = time.perf_counter() - started

    # then
    assert len(report["daily"]) == 365
    assert elapsed < 3


# ---- nulls ------------------------------------------------------------------------------


def test_zero_assigned_gives_nulls_with_reasons():
    """With no one assigned, rates and every comparison figure are null, each named in
    ``undefined`` with the reason."""
    # given
    cart = trigger(CART)

    # when
    report = build_report(cart, [], today=TODAY)

    # then
    row = variant(report, "h24")
    assert row["conversion_rate"] is None
    assert row["undefined"]["conversion_rate"] == "no one assigned to h24 yet"
    found = comparison(report, "h24")
    nulls = [key for key, value in found.items() if value is None]
    assert nulls, "every figure of an empty comparison is null"
    assert set(nulls) <= set(found["undefined"])
    assert "no one assigned" in found["undefined"]["p_value"]
    assert found["sequential"] == {"ci95_abs": None, "verdict": "keep_running"}
    assert "sequential.ci95_abs" in found["undefined"]
    assert report["srm"]["p_value"] is None
    assert report["srm"]["reason"] == "no one assigned yet"
    assert report["daily"] == []


def test_zero_assigned_report_is_json_without_nan():
    """An empty report passes json.dumps with allow_nan=False."""
    # given
    cart = trigger(CART)

    # when
    text = json.dumps(build_report(cart, [], today=TODAY), allow_nan=False)

    # then
    assert "NaN" not in text
    assert "Infinity" not in text


def test_zero_conversions_give_nulls_with_reasons():
    """People assigned but no one converted: the uplift and intervals are null, with why."""
    # given
    cart = trigger(CART)
    version = version_of(cart)
    tallies = [
        tally(version, "holdout", TODAY, assigned=100),
        tally(version, "h24", TODAY, assigned=450),
    ]

    # when
    report = build_report(cart, tallies, today=TODAY)

    # then
    found = comparison(report, "h24")
    assert found["uplift_abs"] is None
    assert found["undefined"]["uplift_abs"] == "no conversions in either arm yet"
    assert variant(report, "h24")["conversion_rate"] == 0.0
    json.dumps(report, allow_nan=False)


def test_a_baseline_without_conversions_leaves_only_the_relative_figures_null():
    """The holdout converted no one: absolute figures are given, relative ones are null."""
    # given
    cart = trigger(CART)
    version = version_of(cart)
    tallies = [
        tally(version, "holdout", TODAY, assigned=100),
        tally(version, "h24", TODAY, assigned=450, converted=20),
    ]

    # when
    found = comparison(build_report(cart, tallies, today=TODAY), "h24")

    # then
    assert found["uplift_abs"] == 20 / 450
    assert found["uplift_rel"] is None
    assert "holdout has no conversions yet" in found["undefined"]["uplift_rel"]
    assert "uplift_abs" not in found["undefined"]


counts = st.fixed_dictionaries(
    {
        "assigned": st.integers(0, 10_000),
        "converted": st.integers(0, 10_000),
        "sent": st.integers(0, 10_000),
        "unsubscribed": st.integers(0, 10_000),
        "complained": st.integers(0, 10_000),
        "revenue": st.floats(0, 1e9, allow_nan=False),
    }
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.sampled_from(["holdout", "h24", "h48", "gone"]), st.integers(0, 20), counts),
        max_size=12,
    )
)
def test_any_counts_give_a_report_that_is_json_without_nan(rows):
    """Whatever the counters hold (zeros, more conversions than people, an arm no longer
    defined), the report is plain JSON with no NaN or infinity."""
    # given
    cart = trigger(CART)
    version = version_of(cart)
    tallies = [Tally(version, arm, TODAY - n * DAY, dict(c)) for arm, n, c in rows]

    # when
    report = build_report(cart, tallies, today=TODAY)

    # then
    json.dumps(report, allow_nan=False)


# ---- no experiment ----------------------------------------------------------------------


def test_a_trigger_without_an_experiment_reports_its_plain_counts():
    """No experiment: one arm ``-`` with the plain counts, no version, goal, baseline,
    comparisons or sample-ratio check."""
    # given
    plain = trigger(PLAIN)
    tallies = [
        tally(NO_EXPERIMENT, NO_EXPERIMENT, TODAY - DAY, sent=100, opened=40, clicked=9),
        tally(NO_EXPERIMENT, NO_EXPERIMENT, TODAY, sent=50, unsubscribed=2, complained=1),
    ]

    # when
    report = build_report(plain, tallies, today=TODAY)

    # then
    assert (report["version"], report["goal"], report["baseline"]) == (None, None, None)
    assert report["comparisons"] == []
    assert report["srm"] is None
    (row,) = report["variants"]
    assert row["id"] == "-"
    plain_counts = {m: row[m] for m in ("sent", "opened", "clicked", "unsubscribed", "complained")}
    assert plain_counts == {
        "sent": 150,
        "opened": 40,
        "clicked": 9,
        "unsubscribed": 2,
        "complained": 1,
    }
    assert [d["arms"]["-"]["sent"] for d in report["daily"]] == [100, 150]
    json.dumps(report, allow_nan=False)


# ---- sample ratio -----------------------------------------------------------------------


def test_five_thousand_against_four_thousand_at_equal_weights_flags_a_mismatch():
    """5,000 and 4,000 assigned where the weights say half each is a sample-ratio mismatch."""
    # given
    split = trigger(SPLIT)
    version = version_of(split)
    tallies = [
        tally(version, "plain", TODAY, assigned=5_000),
        tally(version, "fancy", TODAY, assigned=4_000),
    ]

    # when
    srm = build_report(split, tallies, today=TODAY)["srm"]

    # then
    expected = stats.sample_ratio([stats.Arm("plain", 5_000, 0), stats.Arm("fancy", 4_000, 0)])
    assert srm["flag"] is True
    assert srm["chi_squared"] == pytest.approx(2 * 500**2 / 4_500)
    assert srm["p_value"] == expected.p_value


def test_counts_in_the_configured_shares_raise_no_mismatch():
    """1,000 / 4,500 / 4,500 at a 10 % holdout and 45 / 45 is exactly as configured."""
    # given
    cart, tallies = cart_counts()

    # when
    srm = build_report(cart, tallies, today=TODAY)["srm"]

    # then
    assert srm == {
        "p_value": 1.0,
        "flag": False,
        "chi_squared": 0.0,
        "degrees_of_freedom": 2,
        "reason": None,
        "excluded": [],
    }


def test_an_arm_the_definition_no_longer_has_is_left_out_of_the_sample_ratio_check():
    """A holdout set back to 0 % still shows its counts and stays the baseline, but has no
    share to expect, so the check covers the variants and names it as left out."""
    # given: the holdout line removed, which keeps the version
    cart = trigger(CART.replace("  holdout: 10%\n", ""))
    version = version_of(cart)
    tallies = [
        tally(version, "holdout", TODAY, assigned=1_000, converted=40),
        tally(version, "h24", TODAY, assigned=4_500, converted=230),
        tally(version, "h48", TODAY, assigned=4_500, converted=190),
    ]

    # when
    report = build_report(cart, tallies, today=TODAY)

    # then
    assert version == version_of(trigger(CART))
    assert report["baseline"] == "holdout"
    assert variant(report, "holdout")["weight"] is None
    assert report["srm"]["excluded"] == ["holdout"]
    assert report["srm"]["flag"] is False
    assert report["srm"]["degrees_of_freedom"] == 1


# ---- fatigue ----------------------------------------------------------------------------


def sends(day: date, sent: int, unsubscribed: int = 0, complained: int = 0) -> Tally:
    return tally(
        NO_EXPERIMENT,
        NO_EXPERIMENT,
        day,
        sent=sent,
        unsubscribed=unsubscribed,
        complained=complained,
    )


def test_an_unsubscribe_rate_significantly_above_the_earlier_one_is_flagged_rising():
    """0.2 % before, 0.8 % over the last week: rising, by the one-sided z-test."""
    # given
    tallies = [
        sends(TODAY - 20 * DAY, 10_000, unsubscribed=20),
        sends(TODAY - DAY, 5_000, unsubscribed=40),
    ]

    # when
    fatigue = build_report(trigger(PLAIN), tallies, today=TODAY)["fatigue"]

    # then
    (flag,) = fatigue["flags"]
    assert flag.startswith("unsubscribe rate rising: 0.80 % (40 of 5,000 sent)")
    assert fatigue["recent"]["unsubscribe_rate"] == 40 / 5_000
    assert fatigue["earlier"]["unsubscribe_rate"] == 20 / 10_000
    assert fatigue["unsubscribe_rate"] == 60 / 15_000
    assert fatigue["recent_days"] == RECENT_DAYS


def test_a_few_unsubscribes_on_a_quiet_week_are_not_flagged_rising():
    """Four unsubscribes, twice the earlier rate, are too few to call a trend."""
    # given
    tallies = [
        sends(TODAY - 20 * DAY, 10_000, unsubscribed=20),
        sends(TODAY - DAY, 1_000, unsubscribed=4),
    ]

    # when
    fatigue = build_report(trigger(PLAIN), tallies, today=TODAY)["fatigue"]

    # then
    assert fatigue["flags"] == []


def test_a_rate_no_higher_than_could_be_chance_is_not_flagged_rising():
    """0.5 % before and 0.6 % recently, on these counts, is within chance (p > 0.01)."""
    # given
    tallies = [
        sends(TODAY - 20 * DAY, 10_000, unsubscribed=50),
        sends(TODAY - DAY, 5_000, unsubscribed=30),
    ]

    # when
    fatigue = build_report(trigger(PLAIN), tallies, today=TODAY)["fatigue"]

    # then
    assert fatigue["flags"] == []


def test_a_recent_complaint_rate_at_google_limit_is_flagged():
    """Two complaints in 2,000 sent this week is 0.1 %: at the spam rate Google asks bulk
    senders to stay below."""
    # given
    tallies = [sends(TODAY - 2 * DAY, 2_000, complained=2)]

    # when
    fatigue = build_report(trigger(PLAIN), tallies, today=TODAY)["fatigue"]

    # then
    (flag,) = fatigue["flags"]
    assert flag.startswith("complaint rate 0.10 % (2 of 2,000 sent)")
    assert "0.1 %" in flag
    assert fatigue["recent"]["complaint_rate"] == COMPLAINT_LIMIT


def test_complaints_on_fewer_sends_than_the_minimum_are_not_flagged():
    """Five complaints in 900 sent is a high rate on too few emails to read it at 0.1 %."""
    # given
    tallies = [sends(TODAY, MIN_SENT_FOR_RATE - 100, complained=5)]

    # when
    fatigue = build_report(trigger(PLAIN), tallies, today=TODAY)["fatigue"]

    # then
    assert fatigue["flags"] == []


def test_complaints_before_the_recent_window_are_not_flagged():
    """The limit is checked on the last days only: an old burst has passed."""
    # given
    tallies = [
        sends(TODAY - RECENT_DAYS * DAY, 2_000, complained=10),
        sends(TODAY, 2_000),
    ]

    # when
    fatigue = build_report(trigger(PLAIN), tallies, today=TODAY)["fatigue"]

    # then
    assert fatigue["flags"] == []
    assert fatigue["recent"]["complained"] == 0
    assert fatigue["complaint_rate"] == 10 / 4_000


def test_no_sends_give_null_rates():
    """No email sent: the rates are null, not zero and not NaN."""
    # given
    cart = trigger(CART)

    # when
    fatigue = build_report(cart, [], today=TODAY)["fatigue"]

    # then
    assert fatigue["unsubscribe_rate"] is None
    assert fatigue["recent"]["complaint_rate"] is None
    assert fatigue["sent"] == 0
