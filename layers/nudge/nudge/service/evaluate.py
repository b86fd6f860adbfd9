"""Evaluate: fold new events into profiles and run the triggers they touch; decide timers.

On the stream, a batch is one unit of work: profiles are read once at its start and
written once at its end; each record is handled in order, and a person whose record
failed has the rest of their records in the batch failed too, so that their events are
never decided out of order. Every side effect is idempotent — schedules by name, timers
by key, fires by the ledger's conditional write — because a failed batch is redelivered.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from nudge.adapters.scheduler import schedule_name
from nudge.domain.experiments.attribution import (
    Assignment,
    arms_open_at,
    goal_value,
    new_assignment,
    open_for_goal,
)
from nudge.domain.experiments.counts import Measure
from nudge.domain.intake import StoredEvent
from nudge.domain.messages import FireMessage
from nudge.domain.person import PersonId
from nudge.domain.profile import Miss, Profile, fold
from nudge.domain.recent_ids import folded_recently, remember
from nudge.domain.timefmt import iso
from nudge.domain.triggers.conditions import Facts, event_name
from nudge.domain.triggers.engine import (
    Arm,
    Assign,
    Begin,
    Cancel,
    Decision,
    Finish,
    Fire,
    Pending,
    Result,
    TriggerIndex,
    assigned,
    collected,
    on_due,
    on_event,
    on_inactive,
    on_rescored,
    rescored_hours,
    swept_hour,
)
from nudge.domain.triggers.experiment import HOLDOUT
from nudge.domain.triggers.model import (
    Inactivity,
    Trigger,
    in_app_fields,
    send_time_fields,
)
from nudge.domain.triggers.scores import crossing_thresholds, moved_across
from nudge.service.ports import (
    AudienceHours,
    EngineRecords,
    ExperimentRecords,
    FireQueue,
    LedgerEntry,
    PersonStore,
    Scheduler,
)

if TYPE_CHECKING:
    # Only when a trigger reads a score (bootstrap.scoring): the prediction, model and
    # feature modules are 7 ms of a cold start that most trigger sets never use.
    from nudge.domain.predictions.live import Scoring

__all__ = [
    "SWEEP_SOURCE",
    "TIMER_SOURCE",
    "BatchWork",
    "EvaluateService",
    "PersonBlocked",
    "TimerPayload",
]

TIMER_SOURCE = "nudge.timer"
SWEEP_SOURCE = "nudge.sweep"
SWEEP_CHUNK = 100  # people decided per batched read: BatchGetItem's limit
# What the link events Track records say about a fire, as the counters name it.
REACTIONS: dict[str, Measure] = {
    "Email Opened": "opened",
    "Email Link Clicked": "clicked",
    "Unsubscribed": "unsubscribed",
}
# An event's decisions that are kept on the person's profile (the latest per trigger, on
# the write the event makes anyway) rather than as decision records: a write unit each
# otherwise, for the commonest outcomes. Explain shows them beside the records.
KEPT_ON_PROFILE = frozenset({"not_matched", "duplicate"})


@dataclass(frozen=True)
class Conversion:
    """A goal event counted for an assignment: the first one converts it."""

    trigger: str
    arm: str
    first: bool
    value: float


@dataclass(frozen=True)
class Swept:
    """Someone the sweep found (quiet or back since): who they are now, all their partitions,
    their profile and their latest activity under any identity."""

    person: PersonId
    partitions: list[PersonId]
    profile: Profile
    last_seen: datetime | None
    sweep_hour: datetime | None  # the latest hour any of their identities is filed under


class PersonBlocked(Exception):
    """An earlier record of this person failed in this batch; this one waits for it."""


@dataclass(frozen=True)
class TimerPayload:
    """A due timer, as its schedule's input hands it to Evaluate."""

    trigger: str
    person: PersonId
    occurrence: str
    due: datetime
    kind: str
    schedule: str
    entry: Mapping[str, Any]
    scheduled_time: datetime | None

    @classmethod
    def parse(cls, payload: Mapping[str, Any]) -> TimerPayload:
        scheduled = payload.get("scheduledTime")
        return cls(
            trigger=str(payload["trigger"]),
            person=PersonId.parse(str(payload["person"])),
            occurrence=str(payload["occurrence"]),
            due=datetime.fromisoformat(str(payload["due"])),
            kind=str(payload["kind"]),
            schedule=str(payload["schedule"]),
            entry=payload.get("entry") or {},
            scheduled_time=_parse_time(scheduled),
        )

    @property
    def pending(self) -> Pending:
        return Pending(self.trigger, self.person, self.occurrence, self.due, self.kind, self.entry)  # type: ignore[arg-type]


class EvaluateService:
    def __init__(
        self,
        events: PersonStore,
        engine: EngineRecords,
        reminders: Scheduler,
        queue: FireQueue,
        index: TriggerIndex,
        experiments: ExperimentRecords,
        audience: AudienceHours | None = None,
        scoring: Scoring | None = None,
    ) -> None:
        self.events = events
        self.engine = engine
        self.reminders = reminders
        self.queue = queue
        self.index = index
        self.experiments = experiments
        self.tally = AudienceTally(audience) if audience is not None else None
        # None when no trigger reads a score: nothing is scored, and the sweep re-scores no one.
        self.scoring = scoring if scoring is not None and scoring.predictions else None
        # The thresholds score triggers watch: what the sweep re-scores quiet people against.
        self.thresholds = crossing_thresholds(index.crossing)

    @cached_property
    def quiet_boundaries(self) -> tuple[timedelta, ...]:
        """When, after their last activity, the sweep re-scores quiet people. Worked out on
        the first sweep, not at cold start: it walks every tree once per recency split (8 ms
        for the shipped model, far more for a large one) and a stream batch never needs it."""
        return self.scoring.quiet_boundaries(self.thresholds) if self.scoring is not None else ()

    # ---- the stream -------------------------------------------------------------------

    def batch(self, records: Sequence[StoredEvent], target_arn: str, now: datetime) -> BatchWork:
        """``now``: the time of the batch's earliest record. A profile expired by then is
        not loaded (the person starts afresh, as once TTL has deleted it); one that expires
        during the batch's few seconds is loaded, and its first event renews it."""
        persons = sorted({record.person for record in records})
        return BatchWork(
            self,
            self.events.load_profiles(persons, now),
            target_arn,
            forgotten=self.events.forgotten(persons),
        )

    # ---- a due timer ------------------------------------------------------------------

    def on_timer(self, payload: TimerPayload, target_arn: str) -> list[Decision]:
        trigger = self.index.triggers.get(payload.trigger)
        current = {
            timer.occurrence: (timer, name)
            for timer, name in self.engine.timers([payload.person])
            if timer.trigger == payload.trigger
        }
        if payload.occurrence not in current or current[payload.occurrence][1] != payload.schedule:
            return []  # cancelled, already decided, or superseded: the schedule was only a reminder
        timer = current[payload.occurrence][0]  # the stored timer holds the whole entry event
        if trigger is None:
            self.engine.delete_timer(timer)  # the trigger was removed or disabled since
            return []
        now = payload.scheduled_time or payload.due
        if isinstance(trigger.when, Inactivity):
            return self._legacy_inactivity(trigger, timer, now, target_arn)
        person, persons, profile = self._identity(payload.person, now)
        since = min(_entry_time(timer.entry, now), now - self.index.history_window([trigger]))
        history = self.history(persons, since, now)
        facts = Facts(now=now, traits=profile.traits, profile=profile.facts(now), history=history)
        result = on_due(trigger, timer, person, facts)
        decisions = self.carry_out(result, target_arn, now, history)
        if trigger.steps is None:  # a journey's own actions move its timer on, or end it
            self.engine.delete_timer(timer)
        self.engine.save_decisions(decisions)
        return decisions

    def _legacy_inactivity(
        self, trigger: Trigger, timer: Pending, now: datetime, target_arn: str
    ) -> list[Decision]:
        """A per-person inactivity timer armed before the sweep took over: decided as the
        sweep decides (same occurrence name, so the ledger dedupes the two), then gone.
        Whoever was quiet at the upgrade is decided by it; everyone else is swept."""
        (swept,) = self._swept(self._by_person([timer.person]), now)
        decisions = self._decide_inactive(trigger, swept, now, target_arn)
        self.engine.delete_timer(timer)
        self.engine.save_decisions(decisions)
        return decisions

    # ---- the inactivity sweep -----------------------------------------------------------

    def sweep(self, at: datetime, target_arn: str) -> list[Decision]:
        """For each inactivity trigger, decides everyone last seen in the hour that has
        just become long enough ago. A repeated sweep for the same ``at`` reads the same
        hour and decides the same occurrences: the fire ledger makes it a no-op. Decisions
        are saved per hundred people, so a run that fails late keeps what it explained."""
        decisions: list[Decision] = []
        for trigger in self.index.inactivity:
            for people in self._quiet_in(swept_hour(trigger, at), at):
                decided = [
                    decision
                    for swept in people
                    for decision in self._decide_inactive(trigger, swept, at, target_arn)
                ]
                self.engine.save_decisions(decided)
                decisions += decided
        for hour in rescored_hours(self.quiet_boundaries, at):
            for people in self._quiet_in(hour, at):
                decided = [
                    decision
                    for swept in people
                    for decision in self._rescore_quiet(swept, at, target_arn)
                ]
                self.engine.save_decisions(decided)
                decisions += decided
        return decisions

    def _quiet_in(self, hour: datetime, at: datetime) -> Iterator[list[Swept]]:
        """Everyone filed under ``hour`` and not seen since, a hundred at a time."""
        people = list(self._by_person(self.events.persons_seen_in(hour)).items())
        for start in range(0, len(people), SWEEP_CHUNK):
            yield [
                swept
                for swept in self._swept(dict(people[start : start + SWEEP_CHUNK]), at)
                # Seen since under another identity: a later sweep decides.
                if swept.sweep_hour in (None, hour)
            ]

    def _by_person(self, found: Sequence[PersonId]) -> dict[PersonId, list[PersonId]]:
        """The partitions the index lists, by who they are now: a visitor and the user they
        became are one person, decided once."""
        linked = self.events.linked_users(p.value for p in found if p.is_anonymous)
        people: dict[PersonId, list[PersonId]] = {}
        for partition in found:
            people.setdefault(_linked_person(partition, linked), []).append(partition)
        return people

    def _swept(self, people: Mapping[PersonId, Sequence[PersonId]], at: datetime) -> list[Swept]:
        """Each person with their profile and latest activity over all their identities (a
        visitor who came back without logging in has been seen). Batched: a few requests
        per hundred people, not per person. Profiles expired at ``at`` are left out: the
        hour swept is at most the longest wait (90 days) ago, and a profile expires later
        than that after the hour it is filed under (``profile_kept``), so only an old
        identity of the person's can be one."""
        profiles = self.events.load_profiles(people, at)
        identities = {
            person: list(
                dict.fromkeys(
                    [
                        person,
                        *found,
                        *(PersonId.anonymous(anon) for anon in _anonymous(profiles, person)),
                    ]
                )
            )
            for person, found in people.items()
        }
        others = {p for ids in identities.values() for p in ids} - profiles.keys()
        every = {**self.events.load_profiles(others, at), **profiles}
        return [
            Swept(
                person=person,
                partitions=ids,
                profile=profiles.get(person) or Profile(person=person),
                last_seen=_latest(every[p].last_seen for p in ids if p in every),
                sweep_hour=max(
                    (hour for p in ids if p in every and (hour := every[p].sweep_hour())),
                    default=None,
                ),
            )
            for person, ids in identities.items()
        ]

    def _decide_inactive(
        self, trigger: Trigger, swept: Swept, at: datetime, target_arn: str
    ) -> list[Decision]:
        window = self.index.history_window([trigger])
        history = self.history(swept.partitions, at - window, at) if window else []
        profile = swept.profile
        facts = Facts(now=at, traits=profile.traits, profile=profile.facts(at), history=history)
        # A first arm given here is not kept (the sweep writes no profile): the same
        # hash gives it again next time, unless the weights changed in between.
        elsewhere = self.assigned_elsewhere(swept.person, swept.partitions, [trigger])
        arms = {**arms_open_at(elsewhere, at), **profile.arms}
        result = on_inactive(trigger, swept.person, facts, swept.last_seen, arms)
        if swept.person.is_anonymous and not result.actions:
            # A visitor who never logged in, left alone: most of any busy hour, and nobody
            # will ask explain about them. Recording it would cost a write each.
            return []
        return self.carry_out(result, target_arn, at, history, elsewhere)

    def _rescore_quiet(self, swept: Swept, at: datetime, target_arn: str) -> list[Decision]:
        """A quiet person whose time since their last activity has just passed a boundary
        the trees split at: scored again as of ``at``, and the score triggers decided on it
        as on an event. The profile is rewritten only when a score moved across a threshold
        a trigger watches (``moved_across``), after the fires: a sweep that fails between is
        retried for the same hour, finds the old scores, and the ledger dedupes its fires."""
        profile = swept.profile
        facts = Facts(now=at, traits=profile.traits, profile=profile.facts(at))
        scoring = self.scoring
        if scoring is None or not scoring.wanted(facts):
            return []
        from nudge.domain.predictions.live import scored  # loaded with the scoring

        window = scoring.window
        # The person's own partition, as on an event: both decide on the same history.
        history = self.history([swept.person], at - window, at) if window else []
        rescored, facts = scored(scoring, profile, profile, replace(facts, history=history))
        if not moved_across(profile.scores, rescored.scores, self.thresholds):
            return []
        elsewhere = self.assigned_elsewhere(swept.person, swept.partitions, self.index.crossing)
        arms = {**arms_open_at(elsewhere, at), **profile.arms}
        decisions: list[Decision] = []
        for trigger in self.index.crossing:
            result = on_rescored(trigger, swept.person, facts, arms)
            decisions += self.carry_out(result, target_arn, at, history, elsewhere)
            arms |= assigned(result)
        self.events.save_rescored(
            replace(rescored, arms={**rescored.arms, **arms}, scored_at=iso(at))
        )
        return decisions

    # ---- shared by both paths ---------------------------------------------------------

    def carry_out(
        self,
        result: Result,
        target_arn: str,
        now: datetime,
        history: Sequence[Mapping[str, Any]],
        assigned_elsewhere: Sequence[Assignment] = (),
    ) -> list[Decision]:
        """Does what the engine decided. ``assigned_elsewhere``: the person's assignments
        under their other identities, so an entry under this one opens no second."""
        decisions = list(result.decisions)
        for action in result.actions:
            if isinstance(action, Arm):
                self._arm(action.pending, target_arn, now, action.replaces)
            elif isinstance(action, Cancel):
                self._cancel(action.pending)
            elif isinstance(action, Finish):
                self._finish(action.pending, now)
            elif isinstance(action, Fire):
                outcome = self._fire(action, history)
                if outcome is not None:
                    decisions = [outcome if _same_fire(d, action) else d for d in decisions]
            elif isinstance(action, Assign):
                self._assign(action, now, assigned_elsewhere)
            elif isinstance(action, Begin):
                decisions += self._begin(action, target_arn, now, history)
        return decisions

    def _begin(
        self, begin: Begin, target_arn: str, now: datetime, history: Sequence[Mapping[str, Any]]
    ) -> list[Decision]:
        """A journey's entry: claimed in the ledger under the trigger's re-entry rule, and
        only then are its first steps carried out. A redelivery finds the claim: ``resume``
        (not marked begun: a crash came between) carries the steps out again, each of
        them idempotent; ``duplicate`` leaves the journey where it is."""
        trigger = self.index.triggers[begin.fire.trigger]
        fire = begin.fire
        claim, existing = self.engine.claim(
            fire.person, trigger.id, fire.occurrence, fire.fire_id, fire.at, trigger.reentry
        )
        if claim in ("blocked", "duplicate"):
            return [_refused(trigger, fire, claim, existing, "already begun")]
        decided = self.carry_out(
            Result(list(begin.actions), list(begin.decisions)), target_arn, now, history
        )
        self.engine.mark_enqueued(fire.person, trigger.id, fire.occurrence, trigger.reentry)
        return decided

    def _assign(self, entered: Assign, now: datetime, elsewhere: Sequence[Assignment]) -> None:
        """Opens an assignment for the report, unless the person's is open already (under
        this identity: the write's condition; under another: ``elsewhere``). Idempotent: a
        redelivered entry finds its assignment open."""
        trigger = self.index.triggers.get(entered.trigger)
        if trigger is None or trigger.experiment is None:
            return
        opened = new_assignment(trigger, entered.arm, now)
        if any(_same_experiment(opened, other) and other.is_open(now) for other in elsewhere):
            return
        self.experiments.assign(entered.person, opened)

    def assigned_elsewhere(
        self, person: PersonId, identities: Sequence[PersonId], watchers: Sequence[Trigger]
    ) -> list[Assignment]:
        """The person's assignments under their other identities, when an experiment may
        enter them now (one Query per other identity; most people have none)."""
        others = [identity for identity in identities if identity != person]
        if not others or not any(trigger.experiment for trigger in watchers):
            return []
        return [assignment for _, assignment in self.experiments.assignments(others)]

    # ---- attribution: goal events and reactions to fires ------------------------------

    def convert(
        self, persons: Sequence[PersonId], event: Mapping[str, Any], sequence: int, now: datetime
    ) -> list[Conversion]:
        """Counts a goal event for each of the person's open assignments it is the goal of
        (under any of their identities: a visitor's assignment converts when they buy as
        the user they became)."""
        name = event_name(event)
        if name not in self.index.goal_names:
            return []
        counted = []
        for partition, open_one in _earliest_per_experiment(
            self.experiments.assignments(persons), name, now
        ):
            value = goal_value(open_one, event)
            if self.experiments.convert(partition, open_one, sequence, value, now):
                counted.append(
                    Conversion(open_one.trigger, open_one.arm, not open_one.converted, value)
                )
        return counted

    def count_reaction(self, event: Mapping[str, Any], now: datetime) -> None:
        """An open, click or unsubscribe from an email counts once for the fire it came
        from, in the arm the fire's send was counted in."""
        measure = REACTIONS.get(str(event_name(event)))
        properties = event.get("properties") or {}
        fire_id, trigger = properties.get("fireId"), properties.get("trigger")
        if measure is None or not isinstance(fire_id, str) or not isinstance(trigger, str):
            return
        # Only a fire Send counted as sent: these event names also reach the public beacon,
        # and a made-up fire id must not count anywhere.
        under = self.experiments.sent_as(fire_id)
        if under is not None and under.trigger == trigger:
            self.experiments.count_fire(fire_id, measure, under, now)

    def _arm(
        self, timer: Pending, target_arn: str, now: datetime, replaces: Pending | None = None
    ) -> None:
        replacing = self._stored_schedule(replaces) if replaces is not None else None
        if replaces is not None and replacing is None:
            return  # the journey's timer moved on (or ended) before this delivery: it stands
        if replaces is None and self._armed_already(timer):
            # The first timer of an occurrence stands (a second Product Added to the same
            # cart): looking first costs a Query, where creating the schedule and having its
            # timer refused cost two Scheduler calls and a refused, billed write.
            return
        name = schedule_name(timer.trigger, timer.person, timer.keyed, timer.due)
        payload = {
            "source": TIMER_SOURCE,
            "trigger": timer.trigger,
            "person": str(timer.person),
            "occurrence": timer.occurrence,
            "due": timer.due.isoformat(),
            "kind": timer.kind,
            "schedule": name,
            # The entry event stays in the timer item: a schedule's input is kept small.
            "entry": {"messageId": timer.entry.get("messageId")},
            "scheduledTime": "<aws.scheduler.scheduled-time>",
        }
        # The schedule first: a timer item without its schedule would never be decided.
        self.reminders.arm(name, timer.due, target_arn, payload, now)
        if not self.engine.save_timer(timer, name, replacing):
            self.reminders.cancel(name)  # the occurrence already has a timer: the first one stands
        elif replaces is not None and replacing not in (None, name) and _ahead(replaces, now):
            # A wait_until answered early: the step's schedule has not fired yet.
            self.reminders.cancel(replacing)

    def _stored_schedule(self, timer: Pending) -> str | None:
        """The schedule name of the occurrence's timer, while it still waits at ``timer``'s
        step; None when it has moved on or is gone."""
        for existing, name in self.engine.timers([timer.person]):
            if (existing.trigger, existing.occurrence, existing.step) == (
                timer.trigger,
                timer.occurrence,
                timer.step,
            ):
                return name
        return None

    def _finish(self, timer: Pending, now: datetime) -> None:
        """A journey is over: its timer goes, unless it has moved on to another step."""
        name = self._stored_schedule(timer)
        if name is None:
            return
        if _ahead(timer, now):  # ended early (an exit): its schedule has not fired yet
            self.reminders.cancel(name)
        self.engine.delete_timer(timer, name)

    def _armed_already(self, timer: Pending) -> bool:
        return any(
            existing.trigger == timer.trigger and existing.occurrence == timer.occurrence
            for existing, _ in self.engine.timers([timer.person])
        )

    def _cancel(self, timer: Pending) -> None:
        for existing, name in self.engine.timers([timer.person]):
            if existing.trigger == timer.trigger and existing.occurrence == timer.occurrence:
                self.reminders.cancel(name)
        self.engine.delete_timer(timer)

    def _fire(self, fire: Fire, history: Sequence[Mapping[str, Any]]) -> Decision | None:
        """Claims the fire in the ledger, records it, hands it to delivery; None if it stands."""
        trigger = self.index.triggers[fire.trigger]
        fire_id = fire.fire_id
        # A journey's step sends once per occurrence; re-entry rules apply to its entry.
        reentry = trigger.reentry
        if fire.step is not None:
            from nudge.domain.triggers.journey import STEP_REENTRY  # loaded with its trigger

            reentry = STEP_REENTRY
        claim, existing = self.engine.claim(
            fire.person, trigger.id, fire.occurrence, fire_id, fire.at, reentry
        )  # the holdout claims too: re-entry rules count its turns as the arms' own
        if claim in ("blocked", "duplicate"):
            return _refused(trigger, fire, claim, existing, "already fired and handed to delivery")
        fired_at = existing.fired_at if claim == "resume" and existing else iso(fire.at)
        record = self._fire_record(trigger, fire, fire_id, fired_at, history)
        if fire.arm != HOLDOUT:  # the holdout's fire is recorded for the report, never sent
            self.queue.send(record)
        # Saved last: the record is what tells a redelivery the fire reached the queue
        # (duplicate), where its absence means a crash came first (resume: queued again).
        self.engine.save_fire(record)
        return None

    def _fire_record(
        self,
        trigger: Trigger,
        fire: Fire,
        fire_id: str,
        fired_at: str,
        history: Sequence[Mapping[str, Any]],
    ) -> FireMessage:
        variant = trigger.experiment.variant(fire.arm) if trigger.experiment and fire.arm else None
        send = variant.send if variant and variant.send else None
        step = trigger.send_at_step(fire.step)  # the one send, or the journey step's
        channel = (send.channel if send and send.channel else None) or step.channel
        return FireMessage(
            fire_id=fire_id,
            trigger=trigger.id,
            person=fire.person,
            user_id=fire.person.user_id,
            anonymous_id=fire.entry.get("anonymousId"),
            occurrence=fire.occurrence,
            fired_at=fired_at,
            channel=channel,
            template=(send.template if send and send.template else None) or step.template,
            variant=fire.arm,
            experiment=trigger.experiment.version if trigger.experiment and fire.arm else None,
            event=dict(fire.entry),
            context=collected(trigger, fire.entry, history, fire.at),
            step=fire.step,
            **send_time_fields(step, send.at if send else None),
            **in_app_fields(step, channel),
        )

    def _identity(
        self, timer_person: PersonId, now: datetime
    ) -> tuple[PersonId, list[PersonId], Profile]:
        """Who a timer's partition is now, every partition of that person, and their profile
        (none if it expired by ``now``)."""
        person = timer_person
        if timer_person.is_anonymous:
            linked = self.events.linked_users([timer_person.value])
            if linked:
                person = PersonId.user(next(iter(linked.values())))
        profile = self.events.load_profiles([person], now).get(person) or Profile(person=person)
        anonymous = [PersonId.anonymous(anon) for anon in profile.anonymous_ids]
        return person, list(dict.fromkeys([person, timer_person, *anonymous])), profile

    def history(
        self, persons: Sequence[PersonId], since: datetime, now: datetime
    ) -> list[dict[str, Any]]:
        """The persons' events since ``since``, none from an item expired by ``now``. With
        the default RetentionDays (90) no trigger window (at most ``MAX_WINDOW``, 90 days)
        reaches an expired event, so the backtest, which keeps every event, reads the same;
        a RetentionDays lowered below a trigger's window makes the live window shorter
        than the backtest's (docs/operations.md, "Retention and TTL")."""
        events = [
            event for person in persons for event in self.events.events_since(person, since, now)
        ]
        return sorted(
            events, key=lambda event: (str(event.get("timestamp")), str(event.get("messageId")))
        )

    def persons_for_exits(self, person: PersonId, profile: Profile) -> list[PersonId]:
        anonymous = [PersonId.anonymous(anon) for anon in profile.anonymous_ids]
        return list(dict.fromkeys([person, *anonymous]))


# More events than a stream record ever holds (the store groups at most 100 per item): an
# event's ordinal in the person's stream is its record's sequence number times this, plus
# its index in the record.
RECORD_EVENTS_BOUND = 1000


# Send reads the audience's hours at most hourly (adapters/audience.py READ_EVERY): adding to
# them more often would freshen nothing it reads, at up to two write units a time (measured
# at 0.09 units per event on bench cost's shop at 10 minutes).
AUDIENCE_FLUSH_EVERY = timedelta(hours=1)


@dataclass
class AudienceTally:
    """The engagements this process folded since it last added them to the audience's
    hours: one write every ``AUDIENCE_FLUSH_EVERY`` at most (and at once the first time, so
    a short-lived process still contributes), never one per batch. A prior, so approximate:
    a batch retried after a failure may count its engagements twice."""

    audience: AudienceHours
    pending: Counter[int] = field(default_factory=Counter)
    flushed_at: datetime | None = None

    def note(self, before: Mapping[int, int], after: Mapping[int, int]) -> None:
        for hour, count in after.items():
            grown = count - before.get(hour, 0)
            if grown > 0:  # halving shrinks counts; only new engagements are added
                self.pending[hour] += grown

    def flush_if_due(self, now: datetime) -> None:
        if not self.pending:
            return
        if self.flushed_at is not None and now - self.flushed_at < AUDIENCE_FLUSH_EVERY:
            return
        self.audience.add(dict(self.pending))
        self.pending.clear()
        self.flushed_at = now


@dataclass
class BatchWork:
    """One stream batch: profiles in memory, decisions gathered, failures remembered."""

    service: EvaluateService
    profiles: dict[PersonId, Profile]
    target_arn: str
    decisions: list[Decision] = field(default_factory=list)
    blocked: dict[PersonId, int] = field(default_factory=dict)  # person -> first failed sequence
    touched: set[PersonId] = field(default_factory=set)
    first_sequence: dict[PersonId, int] = field(default_factory=dict)
    conversions: list[Conversion] = field(default_factory=list)
    forgotten: set[PersonId] = field(default_factory=set)  # tombstoned: their events dropped
    dropped: int = 0  # events of forgotten persons deleted in this batch
    latest: datetime | None = None  # the latest time an event of the batch was handled at

    def handle(self, sequence: int, stored: StoredEvent, now: datetime, index: int = 0) -> None:
        """One event of a stream record: ``index`` is its place among the record's events
        (a record holds one request's events for the person)."""
        person = stored.person
        self.first_sequence.setdefault(person, sequence)
        if person in self.blocked:
            raise PersonBlocked(f"{person}: an earlier record in this batch failed")
        try:
            self._handle((sequence, index), stored, now)
        except Exception:
            self.blocked.setdefault(person, sequence)
            raise

    def _handle(self, position: tuple[int, int], stored: StoredEvent, now: datetime) -> None:
        person = stored.person
        if person in self.forgotten:
            # A late event of someone who asked to be forgotten: deleted, never folded or
            # decided on (Ingest cannot tell without a read per event; this batch read it).
            self.service.events.drop_event(person, stored.item_id or stored.event.message_id)
            self.dropped += 1
            return
        profile = self.profiles.get(person) or Profile(person=person)
        if position <= (profile.applied_seq, profile.applied_index):
            return  # folded and decided before this batch was redelivered
        sequence, index = position
        message_id = stored.event.message_id
        if folded_recently(profile.recent_ids, message_id):
            # Re-sent by its client in another request: stored twice, folded once.
            self.profiles[person] = replace(profile, applied_seq=sequence, applied_index=index)
            self.touched.add(person)
            return
        folded = fold(profile, stored.event)
        service = self.service
        if service.tally is not None:
            service.tally.note(profile.engaged_hours, folded.engaged_hours)
        self.latest = max(self.latest or now, now)
        identities = service.persons_for_exits(person, folded)
        # The goal's counting needs one number that grows with each of the person's events.
        ordinal = sequence * RECORD_EVENTS_BOUND + index
        self.conversions += service.convert(identities, stored.event.body, ordinal, now)
        service.count_reaction(stored.event.body, now)
        name = event_name(stored.event.body)
        watchers = service.index.watching(name)
        window = service.index.history_window(watchers)
        scoring = service.scoring
        known = folded.facts(now)
        if scoring is not None and scoring.window > window:
            judged = Facts(now=now, event=stored.event.body, traits=folded.traits, profile=known)
            if scoring.wanted(judged):
                # The features count events further back than the triggers look: the one
                # read goes back that far, and only for someone a prediction scores.
                window = scoring.window
        history = service.history([person], now - window, now) if window else []
        facts = Facts(
            now=now,
            event=stored.event.body,
            traits=folded.traits,
            profile=known,
            history=history,
        )
        if scoring is not None:
            from nudge.domain.predictions.live import scored  # loaded with the scoring

            folded, facts = scored(scoring, profile, folded, facts)
        pending = []
        if name in service.index.exit_names:
            pending = [timer for timer, _ in service.engine.timers(identities)]
        elsewhere = service.assigned_elsewhere(person, identities, watchers)
        # An arm given under another identity, still open, is the person's arm here too.
        arms = {**arms_open_at(elsewhere, now), **folded.arms}
        result = on_event(service.index, person, facts, pending, arms)
        decided = service.carry_out(result, self.target_arn, now, history, elsewhere)
        self.decisions += [d for d in decided if d.outcome not in KEPT_ON_PROFILE]
        arms = {**folded.arms, **assigned(result)}  # kept with the profile: no extra write
        misses = {**folded.misses, **_misses(decided)}  # likewise: explain's "why not"
        self.profiles[person] = replace(
            folded,
            applied_seq=sequence,
            applied_index=index,
            recent_ids=remember(folded.recent_ids, message_id),
            folded_at=iso(now),
            arms=arms,
            misses=misses,
        )
        self.touched.add(person)

    def finish(self) -> set[PersonId]:
        """Saves what was decided; returns the persons whose profile could not be saved."""
        refused = self.service.events.save_profiles(
            [self.profiles[person] for person in sorted(self.touched)]
        )
        self.service.engine.save_decisions(self.decisions)
        if self.service.tally is not None and self.latest is not None:
            self.service.tally.flush_if_due(self.latest)
        return refused


def _misses(decisions: Iterable[Decision]) -> dict[str, Miss]:
    """The event's "not this time" decisions, kept on the profile instead of as records."""
    return {
        d.trigger: Miss.of(iso(d.at), d.occurrence, d.reason, d.outcome)
        for d in decisions
        if d.outcome in KEPT_ON_PROFILE
    }


def _linked_person(partition: PersonId, linked: Mapping[str, str]) -> PersonId:
    """A visitor's partition is the user it was linked to, if any; a user's is itself."""
    if partition.is_anonymous and partition.value in linked:
        return PersonId.user(linked[partition.value])
    return partition


def _anonymous(profiles: Mapping[PersonId, Profile], person: PersonId) -> tuple[str, ...]:
    return profiles[person].anonymous_ids if person in profiles else ()


def _latest(moments: Iterable[str | None]) -> datetime | None:
    return max((parsed for parsed in map(_parse_time, moments) if parsed), default=None)


def _same_experiment(one: Assignment, other: Assignment) -> bool:
    return (one.trigger, one.version) == (other.trigger, other.version)


def _earliest_per_experiment(
    found: Iterable[tuple[PersonId, Assignment]], goal: object, now: datetime
) -> list[tuple[PersonId, Assignment]]:
    """The open assignments a goal event converts: one per experiment version, the
    earliest, when the person holds several under different identities (a visitor and a
    user assigned apart before they were linked are one person, converted once)."""
    chosen: dict[tuple[str, str], tuple[PersonId, Assignment]] = {}
    for partition, assignment in sorted(found, key=lambda pair: pair[1].since):
        if open_for_goal([assignment], goal, now):
            chosen.setdefault((assignment.trigger, assignment.version), (partition, assignment))
    return list(chosen.values())


def _refused(
    trigger: Trigger, fire: Fire, claim: str, existing: LedgerEntry | None, duplicate: str
) -> Decision:
    """The decision on a claim the ledger refused: re-entry blocked it, or it was made."""
    if claim == "blocked" and existing is not None:
        reason = (
            f"re-entry {trigger.reentry.mode}: already fired at"
            f" {existing.fired_at} ({existing.occurrence})"
        )
    else:
        reason = duplicate
    return Decision(
        trigger.id, fire.person, "duplicate", reason, fire.at, fire.occurrence, fire.arm, fire.step
    )


def _same_fire(decision: Decision, fire: Fire) -> bool:
    return (
        decision.outcome == "fired"
        and decision.trigger == fire.trigger
        and decision.occurrence == fire.occurrence
    )


def _ahead(timer: Pending, now: datetime) -> bool:
    """Whether a journey leaves ``timer`` before it came due. At or past its due time the
    step's own schedule is what is running now, and ActionAfterCompletion DELETE removes it
    once it has run: deleting it here would be one more Scheduler call for nothing. (If
    it has not quite fired yet, it finds the timer moved on and does nothing.)"""
    return timer.due > now


def _entry_time(entry: Mapping[str, Any], default: datetime) -> datetime:
    return _parse_time(entry.get("timestamp")) or default


def _parse_time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
