"""A simulated shop whose shoppers' chances to leave and to buy are known: the ground truth
that predictions are measured against.

Seeded and pure (no clock, no I/O) apart from ``main``, which writes the stream and the
truth to files for ``nudge train``. Each shopper has a hidden rate of coming back (sessions
a day while they stay) and a hidden taste for buying. A session is a few pages; product
pages may add to the cart, some carts go to checkout and some of those are ordered. After
each session the shopper decides, once, whether to leave for good, with a probability set
by what Nudge can observe: how long they had been away (recency), how many sessions they
have had (frequency), how many pages this one had (depth) and whether it ended with an
abandoned cart. If they stay, the next session starts an hour (a new session for the
profile) plus an exponential wait after the last one ended.

That makes the best possible churn score exact. At a cut-off ``c`` after a session that
ended at ``e``, with leave probability ``p`` and rate ``r``, the chance of no session
starting between ``e`` and ``t`` if they stayed is ``S(t) = exp(-r * max(0, t - e - 1h))``.
Having seen nothing until ``c``, the chance they left is ``q = p / (p + (1 - p) S(c))``,
and the chance of no event in ``[c, c + H)`` is ``q + (1 - q) S(c + H) / S(c)`` (the wait
is memoryless). A session still going on at ``c`` has events after it: the chance is 0.

The chance of an order in ``[c, c + H)`` has no closed form: every session after ``c`` may
end in an order and may end in leaving, with chances set by its own pages and cart.
``Shopper.order_probability`` multiplies the exact chance that they stayed, ``1 - q``, by
a Monte Carlo estimate of an order given that they stayed: futures drawn with the
simulator's own rules (``draw_session``, the one source of a session's pages, cart and
order; ``leave_probability``; the hour's delay and the exponential wait, memoryless past
``c``), seeded by shopper and cut-off. A likely leaver gets fewer futures (the draws times
``(1 - q)**2``), which keeps every estimate's standard error under ``0.5 / sqrt(draws)``.
A session still going on at ``c`` gets no purchase truth (None: the ceiling leaves the row
out): its first half is seen, so the truth would have to redraw the rest given that half,
and using how it really ended would hand the ceiling the answer. At midnight cut-offs that
is about one row in 6,000. Like the churn truth, it ignores the simulation's end: training
never uses a cut-off whose horizon passes it.
"""

from __future__ import annotations

import argparse
import json
import math
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

from nudge.service.training_set import cutoff_times

from bench.shop import CATALOGUE

__all__ = [
    "Session",
    "SessionDraw",
    "Shopper",
    "TruthMix",
    "TruthShop",
    "Visit",
    "draw_session",
    "latest_cutoffs",
    "simulate_truth",
]

COMEBACK_DELAY = timedelta(hours=1)  # past the 30-minute session gap: always a new session
START = datetime(2026, 1, 5, tzinfo=UTC)
DAY = 86400.0  # seconds
ORDER = "Order Completed"
# Futures drawn per shopper and cut-off for the purchase truth: the Monte Carlo error this
# leaves in the ceiling's AUC is measured in bench/README.md ("Predictions").
ORDER_DRAWS = 400

LeaveRule = Callable[[float, int, int, bool], float]  # away days, sessions, pages, abandoned


@dataclass(frozen=True)
class TruthMix:
    people: int = 2000
    days: int = 90
    seed: int = 14
    # Shoppers arrive over the first part of the period, so every cut-off has old and new.
    arrival_share: float = 0.6


@dataclass(frozen=True)
class Session:
    start: datetime
    end: datetime  # the time of its last event
    leave: float  # the probability of leaving after it, from what it showed
    left: bool  # what the draw decided


@dataclass(frozen=True)
class Shopper:
    user_id: str
    rate: float  # sessions a day while they stay (hidden)
    taste: float  # how likely a product page ends in the cart (hidden)
    sessions: tuple[Session, ...]

    def quiet_probability(self, cutoff: datetime, horizon: timedelta) -> float | None:
        """The true chance of no event in ``[cutoff, cutoff + horizon)``, given all that
        happened before the cut-off; None before their first session."""
        before = self._before(cutoff)
        if not before:
            return None
        last = before[-1]
        if last.end >= cutoff:
            return 0.0  # the session goes on past the cut-off
        survive_now = self._no_comeback(last.end, cutoff)
        survive_later = self._no_comeback(last.end, cutoff + horizon)
        gone = last.leave / (last.leave + (1 - last.leave) * survive_now)
        return gone + (1 - gone) * survive_later / survive_now

    def order_probability(
        self,
        cutoff: datetime,
        horizon: timedelta,
        draws: int = ORDER_DRAWS,
        leave_rule: LeaveRule | None = None,
        replica: int = 0,  # another seed, to measure the Monte Carlo error
    ) -> float | None:
        """The true chance of an ``Order Completed`` in ``[cutoff, cutoff + horizon)``, given
        all that happened before the cut-off: the chance they stayed (as in
        ``quiet_probability``) times a Monte Carlo estimate of an order given they stayed,
        from at most ``draws`` futures drawn by the simulator's own rules, seeded by shopper
        and cut-off (so the same every run); its standard error is at most
        ``0.5 / sqrt(draws)``. None before their first session, and None while a
        session goes on at the cut-off (its outcome is half drawn: see the module's notes)."""
        before = self._before(cutoff)
        if not before or before[-1].end >= cutoff:
            return None
        last = before[-1]
        survive_now = self._no_comeback(last.end, cutoff)
        stayed = (1 - last.leave) * survive_now / (last.leave + (1 - last.leave) * survive_now)
        if stayed == 0.0 or self.taste == 0.0:
            return 0.0  # nothing to draw: a certain 0
        future = _Future(
            chooser=random.Random(f"{self.user_id}@{cutoff.isoformat()}#{replica}"),
            rate=self.rate,
            taste=self.taste,
            leave_rule=leave_rule or leave_probability,
            ended=(last.end - cutoff).total_seconds() / DAY,
            sessions=len(before),
            until=horizon.total_seconds() / DAY,
        )
        # Fewer futures for a likely leaver: the estimate's standard error is stayed times
        # the draws' own, so this many keeps it at most 0.5 / sqrt(draws) for everyone.
        needed = math.ceil(draws * stayed * stayed)
        orders = sum(future.orders() for _ in range(needed))
        return stayed * orders / needed

    def _before(self, cutoff: datetime) -> list[Session]:
        return [session for session in self.sessions if session.start < cutoff]

    def _no_comeback(self, ended: datetime, moment: datetime) -> float:
        waited = max(0.0, (moment - ended - COMEBACK_DELAY).total_seconds() / DAY)
        return math.exp(-self.rate * waited)


@dataclass(frozen=True)
class _Future:
    """A shopper who stayed, from the cut-off on, in days from the cut-off (floats: this
    runs thousands of times per shopper and cut-off)."""

    chooser: random.Random
    rate: float
    taste: float
    leave_rule: LeaveRule
    ended: float  # the last session's end (negative: before the cut-off)
    sessions: int  # before the cut-off
    until: float  # the horizon

    def orders(self) -> bool:
        """One future: sessions as the simulator makes them, until an order, a leave or the
        horizon's end."""
        delay = COMEBACK_DELAY.total_seconds() / DAY
        # Nothing started by the cut-off, and the wait past the delay is memoryless.
        start = max(0.0, self.ended + delay) + self.chooser.expovariate(self.rate)
        ended, count = self.ended, self.sessions
        while start < self.until:
            draw = draw_session(self.chooser, self.taste)
            if draw.order is not None:
                return start + draw.order / DAY < self.until
            count += 1
            leave = self.leave_rule(start - ended, count, draw.pages, draw.abandoned)
            if self.chooser.random() < leave:
                return False
            ended = start + draw.duration / DAY
            start = ended + delay + self.chooser.expovariate(self.rate)
        return False


@dataclass(frozen=True)
class TruthShop:
    start: datetime
    end: datetime
    messages: list[dict[str, Any]]  # Segment messages, in time order
    shoppers: dict[str, Shopper]

    def truth(self, user_id: str, cutoff: datetime, horizon: timedelta) -> float | None:
        shopper = self.shoppers.get(user_id)
        return shopper.quiet_probability(cutoff, horizon) if shopper else None

    def order_truth(self, user_id: str, cutoff: datetime, horizon: timedelta) -> float | None:
        shopper = self.shoppers.get(user_id)
        return shopper.order_probability(cutoff, horizon) if shopper else None


def simulate_truth(mix: TruthMix, start: datetime = START) -> TruthShop:
    chooser = random.Random(mix.seed)
    end = start + timedelta(days=mix.days)
    messages: list[dict[str, Any]] = []
    shoppers: dict[str, Shopper] = {}
    for index in range(mix.people):
        user_id = f"truth-{index}"
        arrival = start + timedelta(days=chooser.uniform(0, mix.days * mix.arrival_share))
        rate = math.exp(chooser.gauss(math.log(0.4), 0.7))
        taste = chooser.betavariate(2, 5)  # how likely a product page ends in the cart
        sessions = _sessions(chooser, user_id, arrival, end, rate, taste, messages)
        shoppers[user_id] = Shopper(user_id, rate, taste, tuple(sessions))
    messages.sort(key=lambda message: message["timestamp"])
    return TruthShop(start=start, end=end, messages=messages, shoppers=shoppers)


def leave_probability(away_days: float, sessions: int, pages: int, abandoned: bool) -> float:
    """The hidden rule: long absences, few visits, shallow sessions and abandoned carts make
    leaving likelier. Only observable things go in (docs/predictions.md)."""
    logit = (
        -2.9
        + 0.6 * math.log1p(away_days)
        - 0.45 * math.log(sessions)
        - 0.22 * (pages - 3)
        + 1.1 * abandoned
    )
    return 1 / (1 + math.exp(-logit))


def _sessions(
    chooser: random.Random,
    user_id: str,
    arrival: datetime,
    end: datetime,
    rate: float,
    taste: float,
    messages: list[dict[str, Any]],
) -> list[Session]:
    sessions: list[Session] = []
    moment, away_days = arrival, 0.0
    while moment < end:
        draw = draw_session(chooser, taste)
        made = _session_messages(draw, user_id, moment)
        messages.extend(made)
        ended = datetime.fromisoformat(made[-1]["timestamp"])
        leave = leave_probability(away_days, len(sessions) + 1, draw.pages, draw.abandoned)
        left = chooser.random() < leave
        sessions.append(Session(moment, ended, leave, left))
        if left:
            break
        wait = COMEBACK_DELAY + timedelta(days=chooser.expovariate(rate))
        away_days = wait.total_seconds() / 86400
        moment = ended + wait
    return sessions


Product = tuple[str, str, float, str]  # sku, name, price, category (bench/shop.py's CATALOGUE)


class Visit(NamedTuple):  # tuples: made a million times by the purchase truth
    """A product page: when it was viewed and, if it went to the cart, when (seconds into
    the session)."""

    product: Product
    viewed: int
    added: int | None


class SessionDraw(NamedTuple):
    """What one session does, drawn once and shared: the simulator turns it into messages,
    the purchase truth only reads its outcome (offsets are seconds from its start)."""

    visits: tuple[Visit, ...]
    checkout: int | None
    order: int | None
    duration: int  # to its last event

    @property
    def pages(self) -> int:
        return len(self.visits)

    @property
    def added(self) -> bool:
        return any(visit.added is not None for visit in self.visits)

    @property
    def abandoned(self) -> bool:
        return self.added and self.order is None


def draw_session(chooser: random.Random, taste: float) -> SessionDraw:
    """One session's pages, carts, checkout and order. The draws' order is the stream's:
    changing it changes every simulated shop (and the figures measured on them)."""
    visits: list[Visit] = []
    moment = last = 0
    pages = 1 + min(12, int(chooser.expovariate(1 / 3)))
    added = False
    for _ in range(pages):
        product = chooser.choice(CATALOGUE)
        viewed, put = moment, None
        if chooser.random() < taste * 0.5:
            moment += chooser.randint(5, 40)
            put = moment
            added = True
        last = moment
        visits.append(Visit(product, viewed, put))
        moment += chooser.randint(20, 120)
    checkout = order = None
    if added and chooser.random() < 0.3 + taste:
        checkout = last = moment
        moment += chooser.randint(30, 180)
        if chooser.random() < 0.75:
            order = last = moment
    return SessionDraw(tuple(visits), checkout, order, last)


def _session_messages(draw: SessionDraw, user_id: str, start: datetime) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []

    def at(offset: int) -> datetime:
        return start + timedelta(seconds=offset)

    for visit in draw.visits:
        sku, name, price, category = visit.product
        product = {"product_id": sku, "name": name, "price": price, "category": category}
        viewed = at(visit.viewed)
        messages.append(_page(user_id, viewed, f"/products/{sku}", len(messages)))
        messages.append(_track(user_id, viewed, "Product Viewed", product, len(messages)))
        if visit.added is not None:
            added = at(visit.added)
            messages.append(_track(user_id, added, "Product Added", product, len(messages)))
    if draw.checkout is not None:
        checkout = at(draw.checkout)
        messages.append(_track(user_id, checkout, "Checkout Started", {}, len(messages)))
    if draw.order is not None:
        ordered = at(draw.order)
        messages.append(_track(user_id, ordered, "Order Completed", {}, len(messages)))
    return messages


def _base(user_id: str, moment: datetime, number: int) -> dict[str, Any]:
    stamp = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {"userId": user_id, "timestamp": stamp, "messageId": f"{user_id}-{stamp}-{number}"}


def _page(user_id: str, moment: datetime, path: str, number: int) -> dict[str, Any]:
    return {
        **_base(user_id, moment, number),
        "type": "page",
        "name": path,
        "properties": {"path": path},
    }


def _track(
    user_id: str, moment: datetime, event: str, properties: dict[str, Any], number: int
) -> dict[str, Any]:
    return {
        **_base(user_id, moment, number),
        "type": "track",
        "event": event,
        "properties": properties,
    }


def truth_lines(
    shop: TruthShop, horizon: timedelta, order_cutoffs: Sequence[datetime] = ()
) -> Iterable[str]:
    """JSON lines of true probabilities, one per shopper and label: no event at all in the
    horizon (churn: no ``event`` key) at every midnight (UTC), and an ``Order Completed``
    in it (``"event": "Order Completed"``) at ``order_cutoffs`` only (Monte Carlo: about
    2.5-7 ms a shopper and cut-off)."""
    midnights = [shop.start + timedelta(days=day) for day in range(1, (shop.end - shop.start).days)]
    seconds = horizon.total_seconds()
    for user_id, shopper in shop.shoppers.items():
        quiet = {
            moment.isoformat(): value
            for moment in midnights
            if (value := shopper.quiet_probability(moment, horizon)) is not None
        }
        yield json.dumps({"userId": user_id, "horizon_seconds": seconds, "at": quiet})
        if order_cutoffs:
            ordered = {
                moment.isoformat(): value
                for moment in order_cutoffs
                if (value := shopper.order_probability(moment, horizon)) is not None
            }
            yield json.dumps(
                {"userId": user_id, "event": ORDER, "horizon_seconds": seconds, "at": ordered}
            )


def latest_cutoffs(
    shop: TruthShop, horizon: timedelta, count: int, every: timedelta
) -> list[datetime]:
    """The cut-offs ``nudge train`` picks from this shop's events with ``--cutoffs count``
    and ``--every every``."""
    if not shop.messages:
        return []
    first, last = (datetime.fromisoformat(shop.messages[index]["timestamp"]) for index in (0, -1))
    return cutoff_times(first, last, horizon, count, every)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.shop_truth",
        description="Write a simulated shop's events and its true churn and purchase"
        " probabilities.",
    )
    parser.add_argument("--people", type=int, default=TruthMix.people)
    parser.add_argument("--days", type=int, default=TruthMix.days)
    parser.add_argument("--seed", type=int, default=TruthMix.seed)
    parser.add_argument("--horizon-days", type=int, default=14)
    parser.add_argument(
        "--order-cutoffs",
        type=int,
        default=2,
        help="the purchase truth at the latest N weekly cut-offs: nudge train's held-out ones"
        " with its defaults (default 2; 0 for none)",
    )
    parser.add_argument("--out", type=Path, default=Path("shop"), help="folder (default ./shop)")
    options = parser.parse_args(argv)
    shop = simulate_truth(TruthMix(people=options.people, days=options.days, seed=options.seed))
    horizon = timedelta(days=options.horizon_days)
    order_cutoffs = latest_cutoffs(shop, horizon, options.order_cutoffs, timedelta(days=7))
    options.out.mkdir(parents=True, exist_ok=True)
    with (options.out / "events.jsonl").open("w", encoding="utf-8") as events:
        events.writelines(json.dumps(message) + "\n" for message in shop.messages)
    with (options.out / "truth.jsonl").open("w", encoding="utf-8") as truth:
        truth.writelines(line + "\n" for line in truth_lines(shop, horizon, order_cutoffs))
    print(f"{len(shop.messages)} events of {len(shop.shoppers)} shoppers in {options.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
