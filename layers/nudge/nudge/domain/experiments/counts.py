"""What the counters hold: per trigger, experiment version, arm and UTC day, how many people
were assigned, sent to, opened, clicked, unsubscribed, complained and converted, and the
revenue the conversions brought. Reports are built from these alone, never from events.

A trigger without an experiment is counted too, under ``NO_EXPERIMENT`` for both version and
arm: its plain counts (sent, opened ...) without assignment or conversion.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Literal, get_args

__all__ = [
    "MEASURES",
    "NO_EXPERIMENT",
    "CountedUnder",
    "Measure",
    "Tally",
    "counts_of",
    "merge",
    "totals",
]

Measure = Literal[
    "assigned", "sent", "opened", "clicked", "unsubscribed", "complained", "converted", "revenue"
]
MEASURES: tuple[Measure, ...] = get_args(Measure)
NO_EXPERIMENT = "-"  # the version and arm a trigger without an experiment is counted under


@dataclass(frozen=True)
class CountedUnder:
    """The counter a fire's sends, opens, clicks ... go to: its trigger, the experiment
    version and the arm it was fired in (``NO_EXPERIMENT`` for both without one)."""

    trigger: str
    version: str = NO_EXPERIMENT
    arm: str = NO_EXPERIMENT


@dataclass(frozen=True)
class Tally:
    """One day of one arm of one experiment version (summed over the counter's shards)."""

    version: str
    arm: str
    day: date
    counts: Mapping[Measure, float] = field(default_factory=dict)

    def get(self, measure: Measure) -> float:
        return self.counts.get(measure, 0)


def merge(tallies: Iterable[Tally]) -> list[Tally]:
    """Sums tallies of the same version, arm and day (a counter's shards), in key order."""
    summed: dict[tuple[str, str, date], dict[Measure, float]] = {}
    for tally in tallies:
        counts = summed.setdefault((tally.version, tally.arm, tally.day), {})
        for measure, amount in tally.counts.items():
            counts[measure] = counts.get(measure, 0) + amount
    return [
        Tally(version, arm, day, counts) for (version, arm, day), counts in sorted(summed.items())
    ]


def totals(tallies: Iterable[Tally]) -> dict[str, dict[Measure, float]]:
    """Each arm's counts over all days."""
    by_arm: dict[str, dict[Measure, float]] = {}
    for tally in tallies:
        counts = by_arm.setdefault(tally.arm, {})
        for measure, amount in tally.counts.items():
            counts[measure] = counts.get(measure, 0) + amount
    return by_arm


def counts_of(raw: Mapping[str, float]) -> dict[Measure, float]:
    """Counts from a stored item's attributes, keeping only the measures."""
    return {measure: float(raw[measure]) for measure in MEASURES if measure in raw}
