"""Replay recorded events through the engine on a virtual clock, all in memory.

The decisions come from the same functions the live path calls (``fold``, ``on_event``,
``on_due``, ``on_inactive``); only storage differs: dictionaries here, DynamoDB there.
Timers and hourly inactivity sweeps due before an event are decided before it, and the
clock runs to the last event, so every timer and sweep due by then has been decided.
Sweeps run at the top of each hour from the first event's.

There is no TTL here, but what TTL takes away the live path does not read (it treats an
item past its ``expires_at`` as deleted): a profile is forgotten when its person's next
event comes after the profile's expiry, as the live path then starts afresh. Events are all
kept: with the default retention (90 days) no trigger window, at most 90 days, reaches one
the live path would leave out.
"""

from __future__ import annotations

import heapq
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import cached_property
from types import MappingProxyType
from typing import Any, Literal

from nudge.domain.intake import Event
from nudge.domain.person import PersonId
from nudge.domain.predictions.live import Scoring, scored
from nudge.domain.profile import DEFAULT_RETENTION, Profile, expiry, fold, profile_kept
from nudge.domain.timefmt import iso
from nudge.domain.triggers.compiled import compile_path
from nudge.domain.triggers.conditions import Facts, count_in_window, event_name
from nudge.domain.triggers.engine import (
    SWEEP_EVERY,
    Arm,
    Begin,
    Cancel,
    Finish,
    Fire,
    Pending,
    Result,
    TriggerIndex,
    assigned,
    on_due,
    on_event,
    on_inactive,
    on_rescored,
    rescored_hours,
    swept_hour,
)
from nudge.domain.triggers.journey import STEP_REENTRY
from nudge.domain.triggers.model import (
    AllOf,
    Condition,
    Count,
    EventMatch,
    Predicate,
    Trigger,
)
from nudge.domain.triggers.scores import crossing_thresholds, moved_across

__all__ = ["BacktestReport", "backtest"]

_NUMERIC = ("gt", "gte", "lt", "lte")
PERCENTILES = (10, 25, 50, 75, 90, 99)


@dataclass
class TriggerReport:
    fires: int = 0
    per_day: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    samples: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    # Fires per experiment arm (the holdout's too: they are recorded, never sent).
    per_arm: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    # A journey's: occurrences that began it, and per step how many reached it, were sent
    # by it, and left while waiting at it (by why: completed, exit: <event>, ...).
    entered: int = 0
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)

    def reached(self, step: str, outcome: str) -> None:
        counts = self._step(step)
        counts["entered"] += 1
        if outcome == "fired":
            counts["sent"] += 1

    def left(self, step: str | None, why: str) -> None:
        exited = self._step(step or "?")["exited"]
        exited[why] = exited.get(why, 0) + 1

    def _step(self, step: str) -> dict[str, Any]:
        return self.steps.setdefault(step, {"entered": 0, "sent": 0, "exited": {}})

    def to_json(self) -> dict[str, Any]:
        journey = (
            {"entered": self.entered, "steps": dict(sorted(self.steps.items(), key=_step_order))}
            if self.entered
            else {}
        )
        return {
            "fires": self.fires,
            "per_day": dict(sorted(self.per_day.items())),
            "per_arm": dict(sorted(self.per_arm.items())),
            **({"journey": journey} if journey else {}),
            "thresholds": {
                label: distribution(values) for label, values in sorted(self.samples.items())
            },
        }


def _step_order(item: tuple[str, Any]) -> list[Any]:
    """Steps in the journey's order: "2" before "10", "3.then.0" before "3.else.0"."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in item[0].split(".")]


@dataclass
class BacktestReport:
    events: int
    skipped: list[str]
    triggers: dict[str, TriggerReport]
    last_time: datetime | None
    # Every fire that passed the ledger, in the order decided: what a live run's fire
    # records are checked against (trigger, person, occurrence).
    fired: list[Fire] = field(default_factory=list)
    # What re-scoring quiet people cost the sweep: people re-scored, and profiles rewritten
    # because a score moved across a watched threshold (None: no score trigger, no work).
    rescored: tuple[int, int] | None = None

    def to_json(self) -> dict[str, Any]:
        summary: dict[str, Any] = {
            "events": self.events,
            "skipped": len(self.skipped),
            "clock": self.last_time.isoformat() if self.last_time else None,
            "triggers": {
                trigger: report.to_json() for trigger, report in sorted(self.triggers.items())
            },
        }
        if self.rescored is not None:
            summary["sweep_rescored"] = {"people": self.rescored[0], "kept": self.rescored[1]}
        return summary


def backtest(
    events: Sequence[Event],
    triggers: Sequence[Trigger],
    progress: Callable[[int], None] | None = None,
    until: datetime | None = None,
    retention: timedelta = DEFAULT_RETENTION,
    scoring: Scoring | None = None,
) -> BacktestReport:
    """``until``: run the clock on past the last event to that moment, deciding the timers
    and sweeps due by then (a live stack whose clock was advanced that far has).
    ``retention``: the stack's RetentionDays, which says when a profile expires."""
    replay = _Replay(TriggerIndex.of(triggers), profile_kept(retention))
    replay.scoring = scoring or Scoring()
    replay.thresholds = crossing_thresholds(replay.index.crossing)
    replay.quiet_boundaries = replay.scoring.quiet_boundaries(replay.thresholds)
    # The sweep has work when a trigger waits for inactivity or a score may cross while quiet.
    replay.sweeps = replay.sweeps or bool(replay.quiet_boundaries)
    timers = replay.timers  # the queue, a heap kept in place: its head is the next one due
    for done, event in enumerate(events, start=1):
        moment = event.timestamp
        # Most events find nothing due: the clock is advanced when a timer or a sweep is
        # (advance_to's own test), not called on every event to find that out.
        if (timers and timers[0][0] <= moment) or (
            replay.sweeps and replay.next_sweep is not None and replay.next_sweep <= moment
        ):
            replay.advance_to(moment)
        replay.apply(event)
        if progress:
            progress(done)
    last = events[-1].timestamp if events else None
    end = max((moment for moment in (last, until) if moment is not None), default=None)
    if end is not None:
        replay.advance_to(end)
    return BacktestReport(
        events=len(events),
        skipped=[],
        triggers=replay.reports,
        last_time=end,
        fired=replay.fired,
        rescored=(replay.rescored, replay.rescores_kept) if replay.quiet_boundaries else None,
    )


@dataclass(slots=True, eq=False)
class _Partition:
    """One partition's state in the replay: a user's, or an anonymous visitor's (where the
    live path keys a profile, events and timers). All of it in one object, found once per
    event by the id the event names it by, rather than in a dictionary per kind, keyed by
    PersonId (whose hash is a Python method): those lookups were a sixth of an event's time.
    Compared and hashed by identity: there is one per PersonId (``_Replay._known``)."""

    id: PersonId
    profile: Profile | None = None  # None: none yet, or expired (and forgotten)
    arms: dict[str, str] = field(default_factory=dict)  # as the profile keeps them
    history: list[dict[str, Any]] = field(default_factory=list)  # its events, as kept
    latest: str = ""  # the timestamp text of the last event kept (``_when``)
    unordered: bool = False  # its history was appended out of time order: _history sorts it
    # The timers in the queue armed under this partition: what an event of the person may
    # exit (a cancelled one stays queued, and pending, until its due time).
    queued: list[Pending] = field(default_factory=list)
    seen_moment: str | None = None  # the text of the hour it was last filed under
    seen_hour: datetime | None = None  # the by_seen_hour index's hour for it
    expires: datetime | None = None  # when a profile filed under seen_hour expires


def _by_person(part: _Partition) -> PersonId:
    return part.id


class _Replay:
    def __init__(self, index: TriggerIndex, kept: timedelta) -> None:
        self.index = index
        self.kept = kept  # how long a profile outlives its sweep hour
        self.links: dict[str, str] = {}  # anonymousId -> userId
        # Every partition's state (_Partition), by its PersonId, and by the id an event
        # names it by: an event finds its partition by userId or anonymousId alone.
        self.partitions: dict[PersonId, _Partition] = {}
        self.users: dict[str, _Partition] = {}
        self.visitors: dict[str, _Partition] = {}
        self.timers: list[tuple[datetime, int, Pending]] = []
        self.armed: dict[tuple[PersonId, str, str], datetime] = {}
        self.ledger: dict[tuple[PersonId, str, str | None], tuple[str, datetime]] = {}
        # The by_seen_hour index: who was last seen in each hour (each one's own hour is
        # on their _Partition).
        self.seen_in: dict[datetime, set[_Partition]] = defaultdict(set)
        self.hours: dict[str, datetime | None] = {}  # sweep_hour by the text of its hour
        self._inactive: list[list[float]] | None = None
        self.scoring = Scoring()  # no predictions scored unless backtest is given them
        # As Evaluate's: the thresholds score triggers watch, and when the sweep re-scores.
        self.thresholds: dict[str, frozenset[int]] = {}
        self.quiet_boundaries: tuple[timedelta, ...] = ()
        self.rescored = self.rescores_kept = 0
        self.next_sweep: datetime | None = None
        self.reports: dict[str, TriggerReport] = {
            trigger: TriggerReport() for trigger in index.triggers
        }
        self.journeys = any(trigger.steps is not None for trigger in index.triggers.values())
        self.sweeps = bool(index.inactivity)  # the hourly sweep has work (see backtest())
        self.inactive_gaps = bool(index.inactivity)  # the "days inactive" samples are kept
        # The event names that may decide something: an entry's, an exit's, an awaited
        # one's; None when any may (a score trigger's crossing is looked for on every event).
        self.watched = None if index.crossing else frozenset(index.by_event) | index.exit_names
        self._counter = 0
        self.fired: list[Fire] = []
        # The thresholds each entry trigger samples, by the event names that enter them.
        self.measures: dict[str, list[tuple[str, list[tuple[str, _Measure]]]]] = defaultdict(list)
        by_path: dict[str, _Measure] = {}  # one measure per path, whichever triggers compare it
        for name, watching in index.by_event.items():
            for trigger in watching:
                if isinstance(trigger.when, EventMatch) and trigger.when.event == name:
                    conditions: list[Condition] = [
                        *trigger.when.where,
                        *([trigger.audience] if trigger.audience else []),
                    ]
                    self.measures[name].append((trigger.id, _measures(conditions, by_path)))
        # By event name, each measure with the sample lists it fills: looked up once, on the
        # name's first event (a report lists a threshold once an event entered its trigger),
        # not a report and a label per threshold on every event; and a path many triggers
        # compare (product_interest's and product_offer's active_seconds) is read once.
        self._sampling: dict[Any, list[tuple[_Measure, list[list[float]]]]] = {}

    # ---- events -------------------------------------------------------------------

    def apply(self, event: Event) -> None:
        # The hot path, once per event. The partition's state is looked up once, by the id
        # the event names it by, and read and written through its attributes from then on;
        # each step's usual case is written out here and its helper called for the rest (on
        # this path a method call costs about what the step itself does).
        user_id, anonymous_id = event.user_id, event.anonymous_id
        if user_id and anonymous_id:
            self.links[anonymous_id] = user_id
        if event.type == "alias" and user_id and event.previous_id:
            self.links[event.previous_id] = user_id
        part = self.users.get(user_id) if user_id else None  # a user's event: by their id
        if part is None:
            part = self._partition_of(event)
        person = part.id
        now = event.timestamp
        profile = part.profile
        if profile is None or (part.expires is not None and part.expires <= now):
            profile = self._profile_at(part, now)  # none yet, or expired
        if self.inactive_gaps and profile.last_seen:
            gap = (now - datetime.fromisoformat(profile.last_seen)).total_seconds() / 86400
            for samples in self._inactive or self._inactive_samples():
                samples.append(gap)
        before, profile = profile, fold(profile, event)
        body = event.body
        history = part.history
        when = body.get("timestamp")
        if type(when) is not str:
            when = str(when)  # as _when reads it
        if when < part.latest:
            part.unordered = True  # appended out of time order: _history sorts it
        part.latest = when
        history.append(body)
        scored_facts = None
        if self.scoring.predictions:  # scored as Evaluate scores, on the same history
            facts = self._facts(person, profile, body, now, history)
            profile, scored_facts = scored(self.scoring, before, profile, facts)
        part.profile = profile
        # The text of the hour the sweep files the partition under (_index_seen): most
        # events leave it unchanged.
        seen, folded = profile.last_seen or "", profile.folded_at
        hour_text = (folded if folded and folded > seen else seen)[:13]
        if hour_text != part.seen_moment:
            self._index_seen(part, profile, hour_text)
        name = event_name(body)
        if self.watched is not None and name not in self.watched:
            return  # no trigger watches the event and none waits for it: it decides nothing
        # Only an exit's or an awaited event's name acts on a waiting timer (on_event matches
        # the name first): the person's timers are gathered for those events alone, not for
        # each page view of someone with a cart pending (and none when no timer is queued).
        waits = self.timers and name in self.index.exit_names
        pending = self._pending(part) if waits else []
        if not pending and name not in self.index.by_event and not self.index.crossing:
            return  # no trigger watches the event and no timer waits: it decides nothing
        facts = scored_facts or _EventFacts.of(now, body, profile, history)
        self._sample(name, facts)
        arms = part.arms
        result = on_event(self.index, person, facts, pending, arms)
        if result.actions:  # assignments and timers come with actions; most events have none
            arms.update(assigned(result))
            self._carry_out(result, now)

    def _facts(
        self,
        person: PersonId,
        profile: Profile,
        body: dict[str, Any],
        now: datetime,
        history: list[dict[str, Any]],
    ) -> Facts:
        return Facts(
            now=now,
            event=body,
            traits=profile.traits,
            profile=profile.facts(now),
            history=history,
        )

    def _pending(self, part: _Partition) -> list[Pending]:
        """The timers waiting for the person, under any of their partitions."""
        pending: list[Pending] = []
        partitions = self._partitions(part)
        for each in dict.fromkeys(partitions) if len(partitions) > 1 else partitions:
            pending += each.queued
        if self.journeys:
            # A journey's timer that moved on, or ended, is gone from the live store; here
            # it stays queued until its due time, and must not act again.
            pending = [timer for timer in pending if timer.step is None or self._armed(timer)]
        return pending

    def _armed(self, timer: Pending) -> bool:
        return self.armed.get((timer.person, timer.trigger, timer.occurrence)) == timer.due

    def _profile_at(self, part: _Partition, now: datetime) -> Profile:
        """The partition's profile, or a new one if theirs expired by ``now`` (with the arms
        it kept), as the live path, which leaves out an expired profile TTL has not deleted
        yet. Only an event can come that late: a timer or a sweep decides within 90 days of
        the person's latest activity, before their profile expires (``profile_kept``)."""
        expires = part.expires
        if expires is not None and expires <= now and part.profile is not None:
            part.profile = None
            part.arms = {}
        return part.profile or Profile(person=part.id)

    def _inactive_samples(self) -> list[list[float]]:
        """The "days inactive" sample lists, one per inactivity trigger, looked up once
        (and made on the first gap found: a report without one shows none)."""
        if self._inactive is None:
            self._inactive = [
                self.reports[trigger.id].samples["days inactive"]
                for trigger in self.index.inactivity
            ]
        return self._inactive

    def _index_seen(self, part: _Partition, profile: Profile, moment: str) -> None:
        """Files the partition under the hour named by ``moment``, the text up to the hour
        of what sweep_hour reads: the last activity or the last fold, whichever is later.
        Both are written by timefmt.iso (UTC, fixed width), so the later one is the greater
        text, and its text up to the hour names the hour: worked out once per such text."""
        part.seen_moment = moment
        hour = self.hours.get(moment)
        if hour is None:
            hour = self.hours[moment] = profile.sweep_hour()
        if hour is None:
            return
        if self.next_sweep is None:
            self.next_sweep = hour + SWEEP_EVERY
        previous = part.seen_hour
        if previous is not None:
            self.seen_in[previous].discard(part)
        self.seen_in[hour].add(part)
        part.seen_hour = hour
        part.expires = expiry(hour, self.kept)

    def _partition_of(self, event: Event) -> _Partition:
        user = event.user_id or self.links.get(event.anonymous_id or "")
        if user:
            # The usual case, once per event: the user's partition, by their id alone.
            found = self.users.get(user)
            return found if found is not None else self._known("user", user)
        found = self.visitors.get(event.anonymous_id or "")
        if found is not None:
            return found
        visitor = PersonId.of(None, event.anonymous_id)  # raises as it would without an id
        return self._known(visitor.kind, visitor.value)

    def _known(self, kind: Literal["user", "anonymous"], value: str) -> _Partition:
        """The partition of that id, made on its first mention."""
        by_id = self.users if kind == "user" else self.visitors
        found = by_id.get(value)
        if found is None:
            found = by_id[value] = _Partition(PersonId(kind, value))
            self.partitions[found.id] = found
        return found

    def _partition(self, person: PersonId) -> _Partition:
        found = self.partitions.get(person)
        return found if found is not None else self._known(person.kind, person.value)

    def _partitions(self, part: _Partition) -> list[_Partition]:
        """The person as they are now (their user, once linked), then the anonymous ids
        linked to them, as the profile lists them."""
        if part.id.is_anonymous and part.id.value in self.links:
            part = self._known("user", self.links[part.id.value])
        profile = part.profile
        if profile is None or not profile.anonymous_ids:
            return [part]
        return [part, *(self._known("anonymous", anon) for anon in profile.anonymous_ids)]

    # ---- the clock ------------------------------------------------------------------

    def advance_to(self, moment: datetime) -> None:
        """Decides, in time order, the timers and the sweeps due by ``moment``."""
        while True:
            timer_due = self.timers[0][0] if self.timers else None
            sweep_due = self.next_sweep if self.sweeps else None
            if (timer_due is None or timer_due > moment) and (
                sweep_due is None or sweep_due > moment
            ):
                return  # the usual case: nothing due yet
            due = [when for when in (timer_due, sweep_due) if when is not None and when <= moment]
            if not due:
                return
            if timer_due is not None and timer_due == min(due):
                self._pop_timer()
            else:
                assert sweep_due is not None
                self._sweep(sweep_due)
                self.next_sweep = sweep_due + SWEEP_EVERY

    def _pop_timer(self) -> None:
        due, _, timer = heapq.heappop(self.timers)
        queued = self._partition(timer.person).queued
        del queued[next(at for at, other in enumerate(queued) if other is timer)]
        if self.armed.get((timer.person, timer.trigger, timer.occurrence)) != due:
            return  # cancelled or superseded
        del self.armed[(timer.person, timer.trigger, timer.occurrence)]
        self._decide(timer, due)

    # ---- the hourly inactivity sweep (next_sweep is when the next one is due) -----------

    def _sweep(self, at: datetime) -> None:
        """As the live sweep: the partitions filed under the hour, by who they are now, each
        person decided once, and only in the sweep of their latest identity's hour."""
        for trigger in self.index.inactivity:
            hour = swept_hour(trigger, at)
            for person, partitions in self._people_in(hour).items():
                identities = [p.profile for p in partitions if p.profile is not None]
                if _latest_hour(identities) not in (None, hour):
                    continue  # seen since under another identity: a later sweep decides
                seen = [datetime.fromisoformat(p.last_seen) for p in identities if p.last_seen]
                profile = person.profile or Profile(person=person.id)
                # As the live sweep loads it: the trigger's window, none without one.
                window = self.index.history_window([trigger])
                facts = Facts(
                    now=at,
                    traits=profile.traits,
                    profile=profile.facts(at),
                    history=self._history(partitions, at - window) if window else [],
                )
                last_seen = max(seen, default=None)
                result = on_inactive(trigger, person.id, facts, last_seen, person.arms)
                self._carry_out(result, at)
        for hour in rescored_hours(self.quiet_boundaries, at):
            for person, partitions in self._people_in(hour).items():
                identities = [p.profile for p in partitions if p.profile is not None]
                if _latest_hour(identities) in (None, hour):
                    self._rescore_quiet(person, at)

    def _rescore_quiet(self, person: _Partition, at: datetime) -> None:
        """As the live sweep (``EvaluateService._rescore_quiet``): scored again as of ``at``
        on the person's own history, the score triggers decided, and the new scores kept
        only when one moved across a watched threshold."""
        profile = person.profile or Profile(person=person.id)
        facts = Facts(now=at, traits=profile.traits, profile=profile.facts(at))
        if not self.scoring.wanted(facts):
            return
        history = self._history([person], at - self.scoring.window)
        self.rescored += 1
        rescored, facts = scored(self.scoring, profile, profile, replace(facts, history=history))
        if not moved_across(profile.scores, rescored.scores, self.thresholds):
            return
        for trigger in self.index.crossing:
            result = on_rescored(trigger, person.id, facts, person.arms)
            person.arms.update(assigned(result))
            self._carry_out(result, at)
        person.profile = replace(rescored, scored_at=iso(at))
        self.rescores_kept += 1

    def _people_in(self, hour: datetime) -> dict[_Partition, list[_Partition]]:
        """Who the partitions filed under ``hour`` are now, with all their partitions."""
        people: dict[_Partition, list[_Partition]] = {}
        for found in sorted(self.seen_in.get(hour, ()), key=_by_person):
            partitions = self._partitions(found)
            known = people.setdefault(partitions[0], [])
            # Each partition once: a person's history is the sum of their partitions.
            known += [p for p in dict.fromkeys([*partitions, found]) if p not in known]
        return people

    # ---- a timer due ------------------------------------------------------------------

    def _decide(self, timer: Pending, now: datetime) -> None:
        trigger = self.index.triggers[timer.trigger]
        partitions = self._partitions(self._partition(timer.person))
        person = partitions[0].id
        profile = partitions[0].profile or Profile(person=person)
        # As the live path loads it (Evaluate's due timer): since the entry event, or the
        # trigger's window if that reaches further back. The whole history was a person's
        # every event since the replay began, read through on each due timer.
        entered = _moment(timer.entry) or now
        history = self._history(partitions, min(entered, now - trigger.history_window))
        facts = Facts(now=now, traits=profile.traits, profile=profile.facts(now), history=history)
        self._carry_out(on_due(trigger, timer, person, facts), now)

    @staticmethod
    def _history(partitions: Sequence[_Partition], since: datetime) -> list[dict[str, Any]]:
        """The partitions' events at or after ``since``, in time order (ties: in partition
        order, then as kept)."""
        found = [part.history for part in partitions]
        if any(part.unordered for part in partitions):
            return sorted(
                (event for events in found for event in events if _at_or_after(event, since)),
                key=_when,
            )
        # Each list in time order: the first event at or after ``since`` is found by bisection,
        # and merging the lists is what the sort would give (stably).
        found = [events[bisect_left(events, True, key=_from(since)) :] for events in found]
        if len(found) == 1:
            return found[0]
        return list(heapq.merge(*found, key=_when))

    # ---- actions, with the ledger's rule for re-entry ---------------------------------

    def _carry_out(self, result: Result, now: datetime) -> None:
        for action in result.actions:
            if isinstance(action, Arm):
                self._arm(action.pending, action.replaces)
            elif isinstance(action, Cancel | Finish):
                key = (action.pending.person, action.pending.trigger, action.pending.occurrence)
                if self.armed.get(key) == action.pending.due:  # still waiting at that step
                    del self.armed[key]
                if isinstance(action, Finish):
                    self.reports[action.pending.trigger].left(action.pending.step, action.why)
            elif isinstance(action, Fire):
                self._fire(action)
            elif isinstance(action, Begin) and self._claim(action.fire, False):
                self.reports[action.fire.trigger].entered += 1
                self._carry_out(Result(list(action.actions), list(action.decisions)), now)
        for decision in result.decisions:
            if decision.step is not None and decision.outcome in ("pending", "fired"):
                self.reports[decision.trigger].reached(decision.step, decision.outcome)

    def _arm(self, timer: Pending, replaces: Pending | None) -> None:
        key = (timer.person, timer.trigger, timer.occurrence)
        if replaces is not None:
            # A journey moving on: only from the step it still waits at (the live store's
            # conditional write); a due timer was taken off ``armed`` when it was popped.
            if self.armed.get(key) not in (None, replaces.due):
                return
        elif key in self.armed:
            return  # the first timer of an occurrence stands
        self.armed[key] = timer.due
        self._counter += 1
        heapq.heappush(self.timers, (timer.due, self._counter, timer))
        self._partition(timer.person).queued.append(timer)

    def _claim(self, fire: Fire, journey_step: bool) -> bool:
        """The live ledger's rule (EngineStore.claim): a first fire passes; under once_per a
        later one passes when the last fire is older than the period and is not this one.
        A journey's send step claims once per occurrence, whatever the trigger's re-entry."""
        reentry = STEP_REENTRY if journey_step else self.index.triggers[fire.trigger].reentry
        scope = fire.occurrence if reentry.mode == "every_time" else None
        key = (fire.person, fire.trigger, scope)
        previous = self.ledger.get(key)
        if previous is not None:
            if reentry.mode != "once_per" or reentry.period is None:
                return False
            fire_id, fired_at = previous
            if fired_at >= fire.at - reentry.period or fire_id == fire.fire_id:
                return False
        self.ledger[key] = (fire.fire_id, fire.at)
        return True

    def _fire(self, fire: Fire) -> None:
        if not self._claim(fire, journey_step=fire.step is not None):
            return
        self.fired.append(fire)
        report = self.reports[fire.trigger]
        report.fires += 1
        report.per_day[fire.at.date().isoformat()] += 1
        if fire.arm is not None:
            report.per_arm[fire.arm] += 1

    # ---- threshold calibration ---------------------------------------------------------

    def _sample(self, name: Any, facts: Facts) -> None:
        """What each threshold of the triggers the event enters compares, as found."""
        sampling = self._sampling.get(name)
        if sampling is None:
            sampling = self._sampling[name] = self._sampling_of(name)
        for measure, filled in sampling:
            found = measure(facts)
            for samples in filled:
                samples += found

    def _sampling_of(self, name: Any) -> list[tuple[_Measure, list[list[float]]]]:
        lists: dict[_Measure, list[list[float]]] = {}
        for trigger, measures in self.measures.get(name or "", ()):
            for label, measure in measures:
                lists.setdefault(measure, []).append(self.reports[trigger].samples[label])
        return list(lists.items())


_NONE: Mapping[str, Any] = MappingProxyType({})


class _EventFacts(Facts):
    """An event's facts as ``Facts(now, event, traits, profile.facts(now), history)`` holds
    them, with the profile's aggregates worked out when a condition first reads them: most
    events are decided on their properties and the traits alone, and ``profile.facts`` was a
    tenth of the time the replay spent on an event. Made without the frozen dataclass's
    ``__init__`` (a field at a time through ``object.__setattr__``), as on_event makes its
    decisions; the dataclass's equality and repr read the fields, the profile's too."""

    @classmethod
    def of(
        cls, now: datetime, event: dict[str, Any], profile: Profile, history: list[dict[str, Any]]
    ) -> _EventFacts:
        facts = object.__new__(cls)
        fields = facts.__dict__  # a field at a time: no keyword dict made per event
        fields["now"] = now
        fields["event"] = event
        fields["traits"] = profile.traits
        fields["history"] = history
        fields["scores_before"] = fields["unscored"] = _NONE  # the replay scored nothing
        fields["_profile"] = profile
        return facts

    @cached_property
    def profile(self) -> Mapping[str, Any]:
        # Not in __dict__ until read: the cached_property computes it then and keeps it there.
        aggregates: Mapping[str, Any] = self.__dict__["_profile"].facts(self.now)
        return aggregates


def _when(event: dict[str, Any]) -> str:
    """What a person's history is ordered by: the event's timestamp as text."""
    return str(event.get("timestamp"))


def _moment(event: Mapping[str, Any]) -> datetime | None:
    """The event's time as the live store reads it, None if it has none it can read."""
    value = event.get("timestamp")
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) and value else None
    except ValueError:
        return None


def _at_or_after(event: Mapping[str, Any], since: datetime) -> bool:
    moment = _moment(event)
    return moment is not None and moment >= since


def _from(since: datetime) -> Callable[[Mapping[str, Any]], bool]:
    """A key that is False before ``since`` and True from it on: on a list in time order, a
    run of False then True, which bisect_left cuts at the first True."""
    return lambda event: _at_or_after(event, since)


def _latest_hour(profiles: Sequence[Profile]) -> datetime | None:
    hours = [hour for profile in profiles if (hour := profile.sweep_hour()) is not None]
    return max(hours, default=None)


_Measure = Callable[[Facts], list[float]]


def _measures(
    conditions: Sequence[Condition], by_path: dict[str, _Measure]
) -> list[tuple[str, _Measure]]:
    """For each threshold (a numeric comparison), how to find the quantity it compares: a
    path's measure is the one ``by_path`` holds for it, if any (a count is its own)."""
    found: list[tuple[str, _Measure]] = []
    stack: list[Any] = list(conditions)
    while stack:
        condition = stack.pop()
        if isinstance(condition, AllOf):
            stack += condition.all
        elif isinstance(condition, Count):
            found.append((f"count of {condition.count.event}", _counted(condition)))
        elif isinstance(condition, Predicate) and condition.operator in _NUMERIC:
            path = condition.path
            measure = by_path.get(path) or _numbers_at(path)
            found.append((path, by_path.setdefault(path, measure)))
    return found


def _numbers_at(path: str) -> _Measure:
    """The numbers a path reaches. A property of the event (``properties.active_seconds``,
    what thresholds mostly compare, on every event that enters their trigger) is read
    straight from the event, as ``compile_path`` finds it: its root's value if a dict, the
    name's value in it if there; any other path through ``compile_path``."""
    general = _numbers(compile_path(path))
    root, _, head = path.partition(".")
    if root not in ("properties", "context") or not head or "." in head:
        return general

    def numbers(facts: Facts) -> list[float]:
        found = facts.event.get(root, _NONE)
        if type(found) is not dict:
            return general(facts)
        if head not in found:
            return []
        value = found[head]
        kind = type(value)  # a plain int or float, the usual, told apart without isinstance
        if kind is int or kind is float:
            return [float(value)]
        return [float(value)] if isinstance(value, (int, float)) and kind is not bool else []

    return numbers


def _counted(condition: Count) -> _Measure:
    return lambda facts: [float(count_in_window(condition, facts))]


def _numbers(values: Callable[[Facts], list[Any]]) -> _Measure:
    def numbers(facts: Facts) -> list[float]:
        # A tuple, not int | float: isinstance checks a union several times slower.
        return [
            float(v)
            for v in values(facts)
            if isinstance(v, (int, float)) and not isinstance(v, bool)
        ]

    return numbers


def distribution(values: Sequence[float]) -> dict[str, float | int]:
    if not values:
        return {"count": 0}
    ordered = sorted(values)
    summary: dict[str, float | int] = {"count": len(ordered), "min": ordered[0], "max": ordered[-1]}
    for percentile in PERCENTILES:
        rank = min(len(ordered) - 1, max(0, round(percentile / 100 * (len(ordered) - 1))))
        summary[f"p{percentile}"] = round(ordered[rank], 3)
    return summary
