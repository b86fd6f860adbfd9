"""Churn scores re-scored by the hourly sweep: whom `churn_risk` reaches, how early, how
many of them were really leaving, and what the re-scoring costs.

A simulated shop (``bench/shop_truth.py``, ``NUDGE_BENCH_CHURN_PEOPLE`` shoppers, 1,000 by
default, over 90 days, with another seed than the one the shipped model was trained on) is
replayed by the backtest with the shipped `churn_risk` enabled, the shipped `churn`
prediction and `models/churn.json`: every event scores the person, and the hourly sweep
re-scores the quiet ones at the model's recency splits. Each fire is then looked up in the
stream: how long the person had been quiet when it fired, and whether they came back within
14 days after it (the prediction's horizon). Fires within 14 days of the stream's end are
left out of that share (we cannot know).

Baselines, from the same stream: a plain inactivity timer at 7 quiet days (the shipped
`re_engagement`), and one at the churn fires' median quiet time, both once per 30 days like
`churn_risk`: the timer at the same moment tells whether the score picks the people who are
leaving, or only waits as long. `churn_risk` is run at the shipped threshold (70) and at 50.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from bisect import bisect_right
from collections import defaultdict
from datetime import datetime, timedelta

from nudge.adapters.model_file import load_scoring
from nudge.domain.predictions.live import Scoring
from nudge.domain.triggers.loader import parse_trigger
from nudge.domain.triggers.model import Trigger
from nudge.service.backtest import backtest
from nudge.service.recorded_events import read_events
from rich.console import Console

from bench.common import REPO, Figures, side_by_side
from bench.shop_truth import TruthMix, simulate_truth

__all__ = ["run"]

PEOPLE = int(os.environ.get("NUDGE_BENCH_CHURN_PEOPLE", "1000"))
SEED = 41  # not the shipped model's training seed (14): these people are new to it
HORIZON = timedelta(days=14)
REENTRY = timedelta(days=30)
RE_ENGAGEMENT = timedelta(days=7)
# DynamoDB on demand, us-east-1 (docs/cost.md): per write unit and per read unit.
WRITE_UNIT, READ_UNIT = 0.625e-6, 0.125e-6
SHARDS = 1  # the template's SweepShards default
THRESHOLDS = (50, 70)  # the shipped 70, and a lower one that reaches people earlier


def run(console: Console) -> Figures:
    shop = simulate_truth(TruthMix(people=PEOPLE, seed=SEED))
    events, _ = read_events(json.dumps(message) for message in shop.messages)
    times: dict[str, list[datetime]] = defaultdict(list)
    for event in events:
        times[str(event.user_id)].append(event.timestamp)
    scoring, _ = load_scoring(REPO / "predictions", REPO / "models")
    scoring = Scoring(tuple(p for p in scoring.predictions if p.prediction.id == "churn"))
    figures: Figures = {
        "events": len(events),
        "people": PEOPLE,
        "timer at 7 days": _judged(_timer_fires(times, RE_ENGAGEMENT, shop.end), times, shop.end),
    }
    for threshold in THRESHOLDS:
        started = time.perf_counter()
        report = backtest(events, [_churn_risk(threshold)], scoring=scoring, until=shop.end)
        elapsed = time.perf_counter() - started
        fires = [(str(fire.person.value), fire.at) for fire in report.fired]
        churn = _judged(fires, times, shop.end)
        typical = timedelta(days=churn["median days quiet"] or 7)
        rescored, kept = report.rescored or (0, 0)
        hours = (shop.end - shop.start) / timedelta(hours=1)
        boundaries = len(scoring.quiet_boundaries({"churn": {threshold}}))
        index_reads = hours * boundaries * SHARDS
        figures[f"crosses {threshold}"] = {
            **churn,
            "backtest seconds": round(elapsed, 1),
            "boundaries": boundaries,
            "re-scores per event": round(rescored / len(events), 4),
            "profile rewrites per event": round(kept / len(events), 4),
            "sweep USD per million events": _cost(len(events), rescored, kept, index_reads),
            "timer at the same median": _judged(
                _timer_fires(times, typical, shop.end), times, shop.end
            ),
        }
    _print(console, figures)
    return figures


def _churn_risk(threshold: int) -> Trigger:
    """The shipped churn_risk, enabled, at ``threshold``."""
    text = (REPO / "triggers" / "churn_risk.yaml").read_text(encoding="utf-8")
    text = text.replace("enabled: false", "enabled: true").replace(
        "crosses: 70", f"crosses: {threshold}"
    )
    trigger, problems = parse_trigger(text, "churn_risk.yaml")
    assert trigger is not None, problems
    return trigger


def _judged(
    fires: list[tuple[str, datetime]], times: dict[str, list[datetime]], end: datetime
) -> dict[str, float | int | None]:
    """How long each fire's person had been quiet, and whether they came back in 14 days."""
    quiet: list[float] = []
    gone = judged = 0
    for person, at in fires:
        moments = times[person]
        before = bisect_right(moments, at)
        if before:
            quiet.append((at - moments[before - 1]) / timedelta(days=1))
        if at + HORIZON <= end:
            judged += 1
            gone += before == len(moments) or moments[before] > at + HORIZON
    return {
        "fires": len(fires),
        "median days quiet": round(statistics.median(quiet), 2) if quiet else None,
        "before 7 days": round(sum(q < 7 for q in quiet) / len(quiet), 3) if quiet else None,
        "gone 14 days after": round(gone / judged, 3) if judged else None,
    }


def _timer_fires(
    times: dict[str, list[datetime]], after: timedelta, end: datetime
) -> list[tuple[str, datetime]]:
    """An inactivity timer's fires: ``after`` past each quiet spell's start, once per 30 days."""
    fires: list[tuple[str, datetime]] = []
    for person, moments in times.items():
        last_fire: datetime | None = None
        for moment, following in zip(moments, [*moments[1:], None], strict=True):
            due = moment + after
            if due > end or (following is not None and following <= due):
                continue
            if last_fire is None or due - last_fire >= REENTRY:
                fires.append((person, due))
                last_fire = due
    return fires


def _cost(events: int, rescored: int, kept: int, index_reads: float) -> float:
    """USD per million events for the sweep's re-scoring: per re-score a profile read (half a
    unit, eventually consistent) and a history Query (taken as one unit: a month of a
    shopper's events in a few compressed items); per rewrite a profile write (one unit,
    profiles are kept under 1 KB); per sweep hour and boundary one index Query (half a
    unit, most hours find nobody)."""
    reads = rescored * 1.5 + index_reads * 0.5
    dollars = reads * READ_UNIT + kept * WRITE_UNIT
    return round(dollars / events * 1e6, 4)


def _print(console: Console, figures: Figures) -> None:
    measures = ("fires", "median days quiet", "before 7 days", "gone 14 days after")
    columns: list[tuple[str, Figures]] = []
    for threshold in THRESHOLDS:
        found = figures[f"crosses {threshold}"]
        columns.append((f"churn_risk, crosses {threshold}", found))
        columns.append(
            (f"timer at {found['median days quiet']} days", found["timer at the same median"])
        )
    columns.append(("timer at 7 days (re_engagement)", figures["timer at 7 days"]))
    console.print(
        side_by_side(
            f"churn_risk re-scored by the sweep ({figures['people']} shoppers,"
            f" {figures['events']:,} events, 90 days)",
            ["", *(name for name, _ in columns)],
            [[measure, *(str(found[measure]) for _, found in columns)] for measure in measures],
        )
    )
    for threshold in THRESHOLDS:
        found = figures[f"crosses {threshold}"]
        console.print(
            f"crosses {threshold}: {found['boundaries']} boundaries;"
            f" {found['re-scores per event']} re-scores and"
            f" {found['profile rewrites per event']} profile rewrites per event:"
            f" ${found['sweep USD per million events']} per million events;"
            f" backtest {found['backtest seconds']} s"
        )
