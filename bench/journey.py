"""What a journey costs per step, counted at the local AWS endpoint: the shipped
``cart_recovery_series`` (turned on, alone in the triggers folder) against the shipped
single-send ``abandoned_cart`` (alone), the same shoppers through each.

``SHOPPERS`` people are identified (an email, a zone where it is 11:xx, so every send falls
at midday on their clock, outside quiet hours), then each puts one item in a new cart: one
in two carts is over 100 (the journey's free-shipping branch). One shopper in four orders
30 minutes later (the journey exits at step 0), one in four starts checkout an hour and a
half in (it exits at step 2, the wait_until); the rest are left alone. The virtual clock is
run past each due moment and ``GET /_local/meter`` (local/meter.py) read at every phase:

    entry | order (+30m) | wait due (+1h) | checkout (+1h30) | wait_until due (+1d+1h)
    | run on (+2d+1h)

The last phase is for the baseline's 48-hour arm. Each phase's counts are divided by the
occurrences it concerns (every cart at entry, the orders, the journeys still waiting at a
due, the checkouts); the baseline's due phases by its fires. A quiet stretch after the run
gives what an hour with no traffic costs (the hourly sweep's schedule and invocation), taken
out of every phase by its length.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import requests
from rich.console import Console

from bench.common import (
    STACK_WRITE_KEY,
    Figures,
    running_stack,
    shipped_triggers,
    side_by_side,
)
from bench.cost import _advance, _combine

__all__ = ["run"]

SHOPPERS = 40
JOURNEY, BASELINE = "cart_recovery_series", "abandoned_cart"
BIG, SMALL = 150.0, 10.0  # the journey's branch is at items_total > 100
IDLE = timedelta(hours=6)
REQUEST_TIMEOUT = 60.0
# When each phase ends, counted from the carts.
ORDER_AT = timedelta(minutes=30)
CHECKOUT_AT = timedelta(hours=1, minutes=30)
MARGIN = timedelta(minutes=2)  # past a due moment: the fire, its delivery
FIRST_DUE = timedelta(hours=1)
SECOND_DUE = timedelta(days=1, hours=1)
RUN_ON = timedelta(days=2, hours=1)  # past the baseline's h48 arm
SCHEDULER_CALLS = {"CreateSchedule": "POST /schedules", "DeleteSchedule": "DELETE /schedules"}


@dataclass(frozen=True)
class Shopper:
    user: str
    cart: str
    total: float
    fate: str  # "order", "checkout" or "none"


@dataclass(frozen=True)
class Phase:
    name: str
    per: int  # the occurrences the phase concerns: what its counts are divided by
    usage: dict[str, Any]  # the meter's difference over the phase, the idle hours taken out


@dataclass(frozen=True)
class Measured:
    trigger: str
    phases: list[Phase]
    emails: Counter[str]  # subjects in the outbox
    fires: Counter[str]  # fire records by template
    seconds: float


def shoppers(count: int = SHOPPERS) -> list[Shopper]:
    """Every fate with small and big carts alike."""
    fates = ("order", "checkout", "none", "none")
    return [
        Shopper(
            f"shopper-{n:03d}",
            f"cart-{n:03d}",
            BIG if (n // len(fates)) % 2 else SMALL,
            fates[n % len(fates)],
        )
        for n in range(count)
    ]


def run(console: Console) -> Figures:
    people = shoppers()
    journey = _measure(JOURNEY, people)
    baseline = _measure(BASELINE, people)
    console.print(_steps_table(journey))
    console.print(_side_by_side(journey, baseline, people))
    per_email = {m.trigger: _per_email(m) for m in (journey, baseline)}
    console.print(
        "DynamoDB write units per email sent, the whole run: "
        + ", ".join(f"{name} {units:.1f}" for name, units in per_email.items())
    )
    return {
        "write_units_per_email": per_email,
        "shoppers": len(people),
        "journey": _figures(journey),
        "baseline": _figures(baseline),
        "per_waiting_step": _per_unit(_waiting_steps(journey)),
        "baseline_per_fire": _per_unit(_baseline_fires(baseline)),
    }


# ---- the run -------------------------------------------------------------------------------


class _Driver:
    """The stack over HTTP: events, the clock, the meter."""

    def __init__(self, http: requests.Session, base: str) -> None:
        self.http, self.base = http, base
        self.now = self._clock()

    def _clock(self) -> datetime:
        return datetime.fromisoformat(self.http.get(f"{self.base}/_local/clock").json()["now"])

    def post(self, kind: str, message: dict[str, Any]) -> None:
        answer = self.http.post(f"{self.base}/v1/{kind}", json=message, timeout=REQUEST_TIMEOUT)
        if answer.status_code != 200:
            raise RuntimeError(f"the stack refused a call: {answer.status_code} {answer.text}")

    def track(self, shopper: Shopper, event: str, properties: dict[str, Any]) -> None:
        self.post("track", {"userId": shopper.user, "event": event, "properties": properties})

    def advance_to(self, moment: datetime) -> None:
        self.now = _advance(self.http, self.base, self.now, moment)

    def meter(self) -> dict[str, Any]:
        self.http.post(f"{self.base}/_local/drain", timeout=REQUEST_TIMEOUT * 2).raise_for_status()
        self.now = self._clock()
        meter: dict[str, Any] = self.http.get(f"{self.base}/_local/meter").json()
        return meter

    def get(self, path: str) -> Any:
        return self.http.get(f"{self.base}{path}", timeout=REQUEST_TIMEOUT).json()


def _measure(trigger: str, people: Sequence[Shopper]) -> Measured:
    started = time.monotonic()
    env = {"NUDGE_TRIGGERS_DIR": str(shipped_triggers([trigger], alone=True))}
    with running_stack(extra_env=env) as stack, requests.Session() as http:
        http.auth = (STACK_WRITE_KEY, "")
        driver = _Driver(http, stack.base)
        raw = list(_phases(driver, people))
        emails = Counter(
            str(email["subject"]) for email in driver.get("/_local/outbox") if "html" in email
        )
        fires = Counter(
            str(fire["template"])
            for fire in driver.get("/_local/fires")
            if fire["trigger"] == trigger
        )
    *phases, (_, _, idle, idle_hours) = raw
    per_hour = _combine(idle, {}, 1.0, scale=1 / idle_hours)
    counted = [
        Phase(name, per, _combine(usage, per_hour, -hours)) for name, per, usage, hours in phases
    ]
    return Measured(trigger, counted, emails, fires, time.monotonic() - started)


def _phases(
    driver: _Driver, people: Sequence[Shopper]
) -> Iterator[tuple[str, int, dict[str, Any], float]]:
    """Each phase's name, the occurrences it concerns, its meter difference and its hours."""
    zone = _zone_where(driver.now, 11)
    for shopper in people:
        driver.post("identify", {"userId": shopper.user, "traits": _traits(shopper, zone)})
    before, since = driver.meter(), driver.now
    for shopper in people:
        driver.track(shopper, "Product Added", _item(shopper))
    entered = driver.now
    ordering = [s for s in people if s.fate == "order"]
    checking_out = [s for s in people if s.fate == "checkout"]
    waiting = len(people) - len(ordering)
    steps: list[tuple[str, int, timedelta, list[Shopper], str]] = [
        ("entry", len(people), timedelta(0), [], ""),
        ("order (+30m)", len(ordering), ORDER_AT, ordering, "Order Completed"),
        ("wait due (+1h)", waiting, FIRST_DUE + MARGIN, [], ""),
        ("checkout (+1h30)", len(checking_out), CHECKOUT_AT, checking_out, "Checkout Started"),
        ("wait_until due (+1d+1h)", waiting - len(checking_out), SECOND_DUE + MARGIN, [], ""),
        ("run on (+2d+1h)", 0, RUN_ON + MARGIN, [], ""),
    ]
    for name, per, at, who, event in steps:
        driver.advance_to(entered + at)
        for shopper in who:
            driver.track(shopper, event, {"cart_id": shopper.cart, "order_id": shopper.cart})
        after = driver.meter()
        yield name, per, _combine(after, before, -1.0), _hours(driver.now - since)
        before, since = after, driver.now
    driver.advance_to(driver.now + IDLE)
    after = driver.meter()
    yield "idle", 0, _combine(after, before, -1.0), _hours(driver.now - since)


def _hours(span: timedelta) -> float:
    return span.total_seconds() / 3600


def _zone_where(moment: datetime, local_hour: int) -> str:
    """A whole-hour zone in which ``moment`` falls within the hour ``local_hour``."""
    offset = (local_hour - moment.hour) % 24
    if offset > 14:
        offset -= 24  # Etc/GMT zones run from UTC-12 to UTC+14
    return "UTC" if offset == 0 else f"Etc/GMT{-offset:+d}"  # Etc/GMT signs are inverted


def _traits(shopper: Shopper, zone: str) -> dict[str, Any]:
    return {"email": f"{shopper.user}@example.com", "timezone": zone}


def _item(shopper: Shopper) -> dict[str, Any]:
    return {
        "cart_id": shopper.cart,
        "product_id": f"sku-{shopper.cart}",
        "name": "Board game",
        "price": shopper.total,
        "quantity": 1,
        "url": "https://shop.example/p/board-game",
    }


# ---- the figures ---------------------------------------------------------------------------


def _named(measured: Measured, *names: str) -> list[Phase]:
    return [phase for phase in measured.phases if phase.name.split(" (")[0] in names]


def _waiting_steps(journey: Measured) -> tuple[dict[str, Any], int]:
    """The two due phases of the journey: the wait (then the reminder) and the wait_until
    (then the branch's send), summed, with how many journeys came due in them."""
    due = _named(journey, "wait due", "wait_until due")
    return _sum(phase.usage for phase in due), sum(phase.per for phase in due)


def _baseline_fires(baseline: Measured) -> tuple[dict[str, Any], int]:
    """The baseline's due phases (its 24h and 48h timers), with its fires."""
    due = _named(baseline, "wait_until due", "run on")
    return _sum(phase.usage for phase in due), sum(baseline.fires.values())


def _sum(usages: Iterator[dict[str, Any]] | Sequence[dict[str, Any]]) -> dict[str, Any]:
    total: dict[str, Any] = {}
    for usage in usages:
        total = _combine(total, usage, 1.0)
    return total


def _per_unit(pair: tuple[dict[str, Any], int]) -> dict[str, Any]:
    usage, per = pair
    dynamodb = usage.get("dynamodb", {})
    scheduler = usage.get("requests", {}).get("functions", {}).get("scheduler", {})
    divide = 1 / max(1, per)
    return {
        "count": per,
        **{call: scheduler.get(rest, 0) * divide for call, rest in SCHEDULER_CALLS.items()},
        "schedules_fired": usage.get("schedulerInvocations", 0) * divide,
        "write_units": dynamodb.get("writeUnits", 0) * divide,
        "write_units_by_kind": {
            kind: units * divide
            for kind, units in sorted(dynamodb.get("writeUnitsByKind", {}).items())
            if round(units * divide, 2)
        },
        "refused_writes": dynamodb.get("refusedWrites", 0) * divide,
        "lambda_invocations": {
            name: use["invocations"] * divide
            for name, use in sorted(usage.get("lambda", {}).items())
            if round(use["invocations"] * divide, 2)
        },
    }


def _figures(measured: Measured) -> dict[str, Any]:
    return {
        "seconds": round(measured.seconds, 1),
        "emails": dict(measured.emails),
        "fires_by_template": dict(measured.fires),
        "phases": {phase.name: _per_unit((phase.usage, phase.per)) for phase in measured.phases},
    }


def _rows(columns: Sequence[dict[str, Any]]) -> list[list[str]]:
    """One row per figure, one column per phase (or per measure)."""
    kinds = sorted({kind for column in columns for kind in column["write_units_by_kind"]})
    functions = sorted({name for column in columns for name in column["lambda_invocations"]})

    def row(label: str, values: Sequence[float]) -> list[str]:
        # + 0.0: a phase the idle hours were taken out of may round to -0.00
        return [label, *(f"{round(value, 2) + 0.0:.2f}" for value in values)]

    rows = [["occurrences", *(str(column["count"]) for column in columns)]]
    rows += [row(f"Scheduler {call}", [c[call] for c in columns]) for call in SCHEDULER_CALLS]
    rows.append(row("schedules fired", [c["schedules_fired"] for c in columns]))
    rows.append(row("DynamoDB write units", [c["write_units"] for c in columns]))
    rows += [
        row(f"  {kind}", [c["write_units_by_kind"].get(kind, 0.0) for c in columns])
        for kind in kinds
    ]
    rows.append(row("refused writes", [c["refused_writes"] for c in columns]))
    rows += [
        row(f"Lambda {name}", [c["lambda_invocations"].get(name, 0.0) for c in columns])
        for name in functions
    ]
    return rows


def _steps_table(journey: Measured) -> Any:
    phases = [phase for phase in journey.phases if phase.per]
    columns = [_per_unit((phase.usage, phase.per)) for phase in phases]
    title = (
        f"{JOURNEY}: {SHOPPERS} carts, per occurrence in each phase "
        f"(emails: {_emails(journey)}; {journey.seconds:.0f} s)"
    )
    return side_by_side(title, ["", *(phase.name for phase in phases)], _rows(columns))


def _side_by_side(journey: Measured, baseline: Measured, people: Sequence[Shopper]) -> Any:
    entry_journey, entry_baseline = (_named(m, "entry")[0] for m in (journey, baseline))
    columns = [
        _per_unit((entry_journey.usage, entry_journey.per)),
        _per_unit(_waiting_steps(journey)),
        _per_unit((_sum(p.usage for p in journey.phases), len(people))),
        _per_unit((entry_baseline.usage, entry_baseline.per)),
        _per_unit(_baseline_fires(baseline)),
        _per_unit((_sum(p.usage for p in baseline.phases), len(people))),
    ]
    title = (
        f"Journey per waiting step against {BASELINE} per fire "
        f"({BASELINE} emails: {_emails(baseline)}; {baseline.seconds:.0f} s)"
    )
    names = [
        "journey: entry",
        "journey: per waiting step",
        "journey: per cart, all",
        f"{BASELINE}: entry",
        f"{BASELINE}: per fire",
        f"{BASELINE}: per cart, all",
    ]
    return side_by_side(title, ["", *names], _rows(columns))


def _per_email(measured: Measured) -> float:
    units = _sum(phase.usage for phase in measured.phases)["dynamodb"]["writeUnits"]
    return float(units) / max(1, sum(measured.emails.values()))


def _emails(measured: Measured) -> str:
    return ", ".join(f"{count} {subject!r}" for subject, count in sorted(measured.emails.items()))
