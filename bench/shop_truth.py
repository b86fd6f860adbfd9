"""A simulated shop whose shoppers' chances to leave are known: the ground truth that
predictions are measured against.

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
"""

from __future__ import annotations

import argparse
import json
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.shop import CATALOGUE

__all__ = ["Session", "Shopper", "TruthMix", "TruthShop", "simulate_truth"]

COMEBACK_DELAY = timedelta(hours=1)  # past the 30-minute session gap: always a new session
START = datetime(2026, 1, 5, tzinfo=UTC)


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
    sessions: tuple[Session, ...]

    def quiet_probability(self, cutoff: datetime, horizon: timedelta) -> float | None:
        """The true chance of no event in ``[cutoff, cutoff + horizon)``, given all that
        happened before the cut-off; None before their first session."""
        last: Session | None = None
        for session in self.sessions:
            if session.start >= cutoff:
                break
            last = session
        if last is None:
            return None
        if last.end >= cutoff:
            return 0.0  # the session goes on past the cut-off
        survive_now = self._no_comeback(last.end, cutoff)
        survive_later = self._no_comeback(last.end, cutoff + horizon)
        gone = last.leave / (last.leave + (1 - last.leave) * survive_now)
        return gone + (1 - gone) * survive_later / survive_now

    def _no_comeback(self, ended: datetime, moment: datetime) -> float:
        waited = max(0.0, (moment - ended - COMEBACK_DELAY).total_seconds() / 86400)
        return math.exp(-self.rate * waited)


@dataclass(frozen=True)
class TruthShop:
    start: datetime
    end: datetime
    messages: list[dict[str, Any]]  # Segment messages, in time order
    shoppers: dict[str, Shopper]

    def truth(self, user_id: str, cutoff: datetime, horizon: timedelta) -> float | None:
        shopper = self.shoppers.get(user_id)
        return shopper.quiet_probability(cutoff, horizon) if shopper else None


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
        shoppers[user_id] = Shopper(user_id, rate, tuple(sessions))
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
        made, pages, abandoned = _session_messages(chooser, user_id, moment, taste)
        messages.extend(made)
        ended = datetime.fromisoformat(made[-1]["timestamp"])
        leave = leave_probability(away_days, len(sessions) + 1, pages, abandoned)
        left = chooser.random() < leave
        sessions.append(Session(moment, ended, leave, left))
        if left:
            break
        wait = COMEBACK_DELAY + timedelta(days=chooser.expovariate(rate))
        away_days = wait.total_seconds() / 86400
        moment = ended + wait
    return sessions


def _session_messages(
    chooser: random.Random, user_id: str, start: datetime, taste: float
) -> tuple[list[dict[str, Any]], int, bool]:
    """One session's messages; with its page count and whether a cart was left behind."""
    messages: list[dict[str, Any]] = []
    moment = start
    pages = 1 + min(12, int(chooser.expovariate(1 / 3)))
    added = ordered = False
    for _ in range(pages):
        sku, name, price, category = chooser.choice(CATALOGUE)
        product = {"product_id": sku, "name": name, "price": price, "category": category}
        messages.append(_page(user_id, moment, f"/products/{sku}", len(messages)))
        messages.append(_track(user_id, moment, "Product Viewed", product, len(messages)))
        if chooser.random() < taste * 0.5:
            moment += timedelta(seconds=chooser.randint(5, 40))
            messages.append(_track(user_id, moment, "Product Added", product, len(messages)))
            added = True
        moment += timedelta(seconds=chooser.randint(20, 120))
    if added and chooser.random() < 0.3 + taste:
        messages.append(_track(user_id, moment, "Checkout Started", {}, len(messages)))
        moment += timedelta(seconds=chooser.randint(30, 180))
        if chooser.random() < 0.75:
            messages.append(_track(user_id, moment, "Order Completed", {}, len(messages)))
            ordered = True
    return messages, pages, added and not ordered


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


def truth_lines(shop: TruthShop, horizon: timedelta) -> Iterable[str]:
    """One JSON line per shopper: the true churn probability at every midnight (UTC)."""
    midnights = [shop.start + timedelta(days=day) for day in range(1, (shop.end - shop.start).days)]
    for user_id, shopper in shop.shoppers.items():
        at = {
            moment.isoformat(): value
            for moment in midnights
            if (value := shopper.quiet_probability(moment, horizon)) is not None
        }
        yield json.dumps({"userId": user_id, "horizon_seconds": horizon.total_seconds(), "at": at})


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.shop_truth",
        description="Write a simulated shop's events and its true churn probabilities.",
    )
    parser.add_argument("--people", type=int, default=TruthMix.people)
    parser.add_argument("--days", type=int, default=TruthMix.days)
    parser.add_argument("--seed", type=int, default=TruthMix.seed)
    parser.add_argument("--horizon-days", type=int, default=14)
    parser.add_argument("--out", type=Path, default=Path("shop"), help="folder (default ./shop)")
    options = parser.parse_args(argv)
    shop = simulate_truth(TruthMix(people=options.people, days=options.days, seed=options.seed))
    options.out.mkdir(parents=True, exist_ok=True)
    with (options.out / "events.jsonl").open("w", encoding="utf-8") as events:
        events.writelines(json.dumps(message) + "\n" for message in shop.messages)
    with (options.out / "truth.jsonl").open("w", encoding="utf-8") as truth:
        truth.writelines(
            line + "\n" for line in truth_lines(shop, timedelta(days=options.horizon_days))
        )
    print(f"{len(shop.messages)} events of {len(shop.shoppers)} shoppers in {options.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
