"""Does sending at each person's best hour get more opens? A simulated audience with a
known answer.

Each simulated person has a true preferred hour of the day on their own clock (drawn from a
morning, lunch and evening mix), a zone (Paris, New York or Tokyo) and a history of
engagements: sessions, clicks and opens at hours scattered around that preference (a
normal spread of 1.5 hours) with a fifth of them at random hours, on random days, from 0 to
40 engagements a person (a third of people have fewer than three). Their counts are folded
into hour-of-week maps exactly as the profile keeps them (``engagement.hour_of_week`` and
``counted``), and the audience's map is their sum.

Then each person is sent one message, decided at a random moment, four ways: at once; at
the next 10:00 on their clock; at their best hour (``engagement.best_hour``, the code Send
runs, with ``within: 24h`` and ``fallback: 10:00``); and at their true hour (the ceiling no
sender can know). The chance that they open it falls with the distance, on the clock,
between the hour it arrives and their true hour: 40 % at that hour, halving about every two
hours (a normal curve with a 2-hour spread). Reported: the expected open rate of each way
(the mean of those chances, so no sampling noise), beside the ceiling.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from nudge.domain.engagement import best_hour, counted, hour_of_week
from nudge.domain.send_time import next_clock_time
from rich.console import Console

from bench.common import Figures, side_by_side

__all__ = ["Person", "open_rates", "population", "run"]

PEOPLE = 3000
SEED = 7
ZONES = ("Europe/Paris", "America/New_York", "Asia/Tokyo")
PEAKS = ((8, 0.3), (12, 0.2), (20, 0.5))  # preferred hours of the day, and their shares
SPREAD_HOURS = 1.5  # how far a person's engagements scatter around their hour
NOISE = 0.2  # the share of engagements at a random hour
BEST_OPEN = 0.40  # the chance of an open at the person's own hour
OPEN_SPREAD = 2.0  # hours: the open chance's normal curve around it
WITHIN = timedelta(hours=24)
FALLBACK = "10:00"
START = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday: histories span the weeks before it


@dataclass(frozen=True)
class Person:
    zone: str
    true_hour: int
    hours: dict[int, int]


def population(people: int = PEOPLE, seed: int = SEED) -> list[Person]:
    chooser = random.Random(seed)
    return [_person(chooser) for _ in range(people)]


def _person(chooser: random.Random) -> Person:
    zone = chooser.choice(ZONES)
    true_hour = chooser.choices([hour for hour, _ in PEAKS], [w for _, w in PEAKS])[0]
    true_hour = (true_hour + chooser.choice((-1, 0, 0, 1))) % 24
    engagements = min(40, int(chooser.expovariate(1 / 8)))
    hours: dict[int, int] = {}
    for _ in range(engagements):
        if chooser.random() < NOISE:
            hour = chooser.randrange(24)
        else:
            hour = round(chooser.gauss(true_hour, SPREAD_HOURS)) % 24
        day = chooser.randrange(28)
        local = datetime(2026, 10, 5, tzinfo=ZoneInfo(zone)) + timedelta(days=day, hours=hour)
        hours = counted(hours, hour_of_week(local, zone))
    return Person(zone, true_hour, hours)


def open_rates(people: list[Person], seed: int = SEED) -> dict[str, float]:
    """The expected open rate of each way of timing the one message each person gets."""
    audience: dict[int, int] = {}
    for person in people:
        for hour, count in person.hours.items():
            audience[hour] = audience.get(hour, 0) + count
    chooser = random.Random(seed + 1)
    totals = {"at once": 0.0, "fixed 10:00": 0.0, "best hour": 0.0, "true hour": 0.0}
    for person in people:
        zone = ZoneInfo(person.zone)
        now = START + timedelta(minutes=chooser.randrange(7 * 24 * 60))
        best = best_hour(now, person.zone, "UTC", person.hours, audience, WITHIN, FALLBACK)
        sends = {
            "at once": now,
            "fixed 10:00": next_clock_time(now, zone, FALLBACK),
            "best hour": best.at,
            "true hour": next_clock_time(now, zone, f"{person.true_hour:02d}:00"),
        }
        for way, moment in sends.items():
            totals[way] += _open_chance(moment.astimezone(zone).hour, person.true_hour)
    return {way: total / len(people) for way, total in totals.items()}


def _open_chance(hour: int, true_hour: int) -> float:
    distance = min((hour - true_hour) % 24, (true_hour - hour) % 24)
    return BEST_OPEN * math.exp(-(distance**2) / (2 * OPEN_SPREAD**2))


def run(console: Console) -> Figures:
    people = population()
    rates = open_rates(people)
    ceiling = rates["true hour"]
    console.print(
        side_by_side(
            f"Expected open rate, {len(people):,} simulated people, one message each"
            " (send.at: best, within 24h, fallback 10:00)",
            ["timing", "open rate", "of the ceiling"],
            [[way, f"{rate:.1%}", f"{rate / ceiling:.0%}"] for way, rate in rates.items()],
        )
    )
    without = sum(1 for person in people if sum(person.hours.values()) < 3)
    console.print(f"  people with fewer than 3 engagements: {without:,} of {len(people):,}")
    return {"people": len(people), "open_rates": rates, "little_history": without}
