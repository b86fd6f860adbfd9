"""The contact policy: who may be sent what, when. Pure; the state is one small record per
person, read and written by the caller with a version check, so two concurrent senders
cannot both pass a cap.

Days and quiet hours are the person's own, in their timezone (the ``timezone`` trait or
the event's ``context.timezone``), not the workspace's.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from nudge.domain.send_time import zone_of

__all__ = [
    "Claimed",
    "ContactState",
    "Deferred",
    "Denied",
    "InFlight",
    "Policy",
    "Verdict",
    "decide",
    "mark_failed",
    "mark_interrupted",
    "mark_sent",
    "person_zone",
]

# Fires are remembered this long, so a late redelivery is still recognised. The longest
# legitimate gap is a webhook's whole retry chain (about 18 h) after a quiet-hours
# deferral (at most 11 h); three days covers it and keeps the record near 1 KB.
MEMORY = timedelta(days=3)


@dataclass(frozen=True)
class Policy:
    per_trigger_per_day: int = 1
    cooldown: timedelta = timedelta(hours=0)
    per_channel_per_day: dict[str, int] = field(
        default_factory=lambda: {"email": 3, "webhook": 50, "in_app": 10}
    )
    quiet_start: time = time(21, 0)
    quiet_end: time = time(8, 0)
    # An in-app message appears only on a page the person has open: no hour is too late.
    quiet_channels: frozenset[str] = frozenset({"email"})
    default_timezone: str = "UTC"


@dataclass(frozen=True)
class ContactState:
    """What the policy remembers of one person (a DynamoDB item, versioned)."""

    day: str = ""  # the person's local date the counters belong to
    per_channel: dict[str, int] = field(default_factory=dict)
    per_trigger: dict[str, int] = field(default_factory=dict)
    last_sent: dict[str, str] = field(default_factory=dict)  # trigger -> ISO time
    # fire id -> "claimed@<iso>" | "failed@<iso>" (to be tried again) | "sent@<iso>"
    # | "interrupted@<iso>" (a claim of then whose attempt died: waiting for SES's receipt)
    fires: dict[str, str] = field(default_factory=dict)
    version: int = 0


@dataclass(frozen=True)
class Claimed:
    state: ContactState
    retry: bool = False  # an earlier claim expired: this send may repeat one that happened
    # When the attempt that died holding the claim had claimed it: SES may have accepted
    # that attempt's email, which only its receipt can tell (domain/interrupted.py).
    interrupted_at: datetime | None = None


@dataclass(frozen=True)
class Deferred:
    until: datetime
    reason: str


@dataclass(frozen=True)
class Denied:
    outcome: Literal["duplicate", "capped", "cooldown", "suppressed"]
    reason: str


@dataclass(frozen=True)
class InFlight:
    reason: str


Verdict = Claimed | Deferred | Denied | InFlight


def person_zone(timezone: object, policy: Policy) -> ZoneInfo:
    """The person's zone, or the account's when they have none or an unknown one."""
    return zone_of(timezone, policy.default_timezone).zone


def decide(
    state: ContactState,
    *,
    fire_id: str,
    trigger: str,
    channel: str,
    now: datetime,
    zone: ZoneInfo,
    policy: Policy,
    redelivered: bool = False,
) -> Verdict:
    """Whether this fire may be sent now; if so, the state with it claimed.

    A claim found on a first delivery belongs to a concurrent copy of the message: wait.
    Found on a redelivery, it belongs to an attempt that is over (the queue only hands a
    message out again once its visibility timeout, longer than the function's, has run
    out), so that attempt died between claiming and marking sent: send again.
    """
    previous = state.fires.get(fire_id)
    if previous and previous.startswith("sent@"):
        return Denied("duplicate", f"already sent at {previous.removeprefix('sent@')}")
    retry = False
    interrupted_at = None
    if previous and previous.startswith("claimed@"):
        if not redelivered:
            return InFlight(f"claimed at {previous.removeprefix('claimed@')} by another delivery")
        retry = True  # its quota is already counted
        interrupted_at = datetime.fromisoformat(previous.removeprefix("claimed@"))
    if previous and previous.startswith("interrupted@"):
        retry = True  # a copy put back to wait for the interrupted attempt's receipt
        interrupted_at = datetime.fromisoformat(previous.removeprefix("interrupted@"))
    if previous and previous.startswith("failed@"):
        retry = True  # an attempt that failed and asked to be tried again: counted already
    quiet_end = _quiet_until(now, zone, policy) if channel in policy.quiet_channels else None
    if quiet_end is not None:
        return Deferred(quiet_end, f"quiet hours in {zone.key} until {quiet_end.isoformat()}")
    today = now.astimezone(zone).date().isoformat()
    fresh = (
        state if state.day == today else replace(state, day=today, per_channel={}, per_trigger={})
    )
    if not retry:
        denied = _over_limits(fresh, trigger, channel, now, policy)
        if denied:
            return denied
    claimed = replace(
        fresh,
        per_channel=fresh.per_channel if retry else _plus_one(fresh.per_channel, channel),
        per_trigger=fresh.per_trigger if retry else _plus_one(fresh.per_trigger, trigger),
        fires={**_recent(fresh.fires, now), fire_id: f"claimed@{now.isoformat()}"},
    )
    return Claimed(claimed, retry=retry, interrupted_at=interrupted_at)


def mark_sent(state: ContactState, fire_id: str, trigger: str, now: datetime) -> ContactState:
    return replace(
        state,
        fires={**state.fires, fire_id: f"sent@{now.isoformat()}"},
        last_sent={**state.last_sent, trigger: now.isoformat()},
    )


def mark_failed(state: ContactState, fire_id: str, now: datetime) -> ContactState:
    """The claimed send failed and will be tried again: the claim is over, its quota stays."""
    return replace(state, fires={**state.fires, fire_id: f"failed@{now.isoformat()}"})


def mark_interrupted(state: ContactState, fire_id: str, claimed_at: datetime) -> ContactState:
    """The attempt that claimed the send at ``claimed_at`` died; its copy waits for SES's
    receipt. Keeps the claim's own time, so the wait is measured from it, not restarted by
    each look."""
    if state.fires.get(fire_id, "").startswith("sent@"):
        return state  # a copy of the message sent it meanwhile: that stands
    return replace(state, fires={**state.fires, fire_id: f"interrupted@{claimed_at.isoformat()}"})


def _over_limits(
    state: ContactState, trigger: str, channel: str, now: datetime, policy: Policy
) -> Denied | None:
    channel_cap = policy.per_channel_per_day.get(channel)
    if channel_cap is not None and state.per_channel.get(channel, 0) >= channel_cap:
        return Denied("capped", f"{channel} cap of {channel_cap} a day reached")
    if state.per_trigger.get(trigger, 0) >= policy.per_trigger_per_day:
        return Denied("capped", f"{trigger} cap of {policy.per_trigger_per_day} a day reached")
    last = state.last_sent.get(trigger)
    if last and policy.cooldown and now - datetime.fromisoformat(last) < policy.cooldown:
        return Denied("cooldown", f"{trigger} was sent at {last}; cooldown {policy.cooldown}")
    return None


def _quiet_until(now: datetime, zone: ZoneInfo, policy: Policy) -> datetime | None:
    """When the person's quiet hours end, if ``now`` falls inside them."""
    local = now.astimezone(zone)
    start, end = policy.quiet_start, policy.quiet_end
    moment = local.time()
    inside = (start <= moment or moment < end) if start > end else (start <= moment < end)
    if not inside:
        return None
    end_day = local.date() if moment < end else local.date() + timedelta(days=1)
    return datetime.combine(end_day, end, tzinfo=zone)


def _plus_one(counts: dict[str, int], key: str) -> dict[str, int]:
    return {**counts, key: counts.get(key, 0) + 1}


def _recent(fires: dict[str, str], now: datetime) -> dict[str, str]:
    kept = {}
    for fire_id, mark in fires.items():
        moment = datetime.fromisoformat(mark.split("@", 1)[1])
        if now - moment < MEMORY:
            kept[fire_id] = mark
    return kept
