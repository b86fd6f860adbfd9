"""Per-person aggregates, folded from events one at a time, so no decision scans history.

A session ends after 30 minutes without events, decided here on the server from the
events' own timestamps: any client works, even one that knows nothing about sessions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from nudge.domain.intake import Event
from nudge.domain.person import PersonId
from nudge.domain.timefmt import hour_of, iso

__all__ = ["SESSION_GAP", "Miss", "Profile", "fold"]

SESSION_GAP = timedelta(minutes=30)
# A client that invents event names per user must not grow a profile past DynamoDB's item limit.
MAX_DISTINCT_EVENT_NAMES = 300
OTHER_EVENTS = "$other"
# The profile is one DynamoDB item (400 KB at most): traits, groups and linked ids are capped.
MAX_TRAITS_BYTES = 64 * 1024
MAX_TRAIT_KEYS = 300
MAX_GROUPS = 50
MAX_ANONYMOUS_IDS = 50
PAGE_TYPES = frozenset({"page", "screen"})


MAX_MISS_REASON = 120  # characters of a miss's reason kept: the profile stays near 1 KB


@dataclass(frozen=True)
class Miss:
    """A trigger's latest "not this time" for the person: ``not_matched`` (the event did
    not meet the conditions) or ``duplicate`` (it did, but that occurrence already fired):
    when, which occurrence, why. Kept on the profile, which the event writes anyway, rather
    than as a decision record of its own."""

    at: str
    occurrence: str | None
    reason: str
    outcome: str = "not_matched"

    @classmethod
    def of(cls, at: str, occurrence: str | None, reason: str, outcome: str = "not_matched") -> Miss:
        shown = reason if len(reason) <= MAX_MISS_REASON else reason[: MAX_MISS_REASON - 1] + "…"
        return cls(at, occurrence, shown, outcome)


@dataclass(frozen=True)
class Profile:
    person: PersonId
    user_id: str | None = None
    anonymous_ids: tuple[str, ...] = ()
    traits: dict[str, Any] = field(default_factory=dict)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    first_seen: str | None = None
    last_seen: str | None = None
    session_id: str | None = None
    session_started: str | None = None
    session_pages: int = 0
    session_events: int = 0
    last_session_pages: int | None = None
    sessions: int = 0
    events: int = 0
    pages: int = 0
    event_counts: dict[str, int] = field(default_factory=dict)
    # The stream position of the last record folded in: folding is exactly once per record.
    applied_seq: int = 0
    # When the last record was folded (the stream's time, not the event's): see sweep_hour.
    folded_at: str | None = None
    # Experiment arms, by trigger and version (engine.arm_key): kept so a re-entry keeps its arm.
    arms: dict[str, str] = field(default_factory=dict)
    # Why each event trigger last did not match an event of the person's: what `explain`
    # shows for "why not". Kept here, on the profile write every event makes anyway, rather
    # than as a decision record per event (a write unit each, half of the writes there were).
    misses: dict[str, Miss] = field(default_factory=dict)

    def sweep_hour(self) -> datetime | None:
        """The UTC hour the inactivity sweep files this person under: the hour of their last
        activity, or of the fold that learnt of it if that came later. An event that arrives
        late (an offline batch, a lagging stream) is filed under an hour not yet swept, never
        under one already read, and the sweep, checking ``last_seen``, still decides it."""
        moments = [_parse(value) for value in (self.last_seen, self.folded_at) if value]
        if not moments:
            return None
        return hour_of(max(moments))

    def facts(self, now: datetime | None = None) -> dict[str, Any]:
        """The aggregates conditions name as ``profile.<name>``, as of ``now``.

        ``last_session_pages`` is the last *finished* session: once 30 minutes have passed
        without events, the most recent session has ended and is the one it describes.
        """
        last_seen = _parse(self.last_seen) if self.last_seen else None
        ended = now is not None and last_seen is not None and now - last_seen > SESSION_GAP
        return {
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "sessions": self.sessions,
            "events": self.events,
            "pages": self.pages,
            "session_pages": self.session_pages,
            "session_events": self.session_events,
            "last_session_pages": self.session_pages if ended else self.last_session_pages,
            "days_inactive": (now - last_seen).total_seconds() / 86400
            if now and last_seen
            else None,
            "event_counts": self.event_counts,
            "user_id": self.user_id,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "person": str(self.person),
            "userId": self.user_id,
            "anonymousIds": list(self.anonymous_ids),
            "traits": self.traits,
            "groups": self.groups,
            "firstSeen": self.first_seen,
            "lastSeen": self.last_seen,
            "session": {
                "id": self.session_id,
                "started": self.session_started,
                "pages": self.session_pages,
                "events": self.session_events,
            },
            "lastSessionPages": self.last_session_pages,
            "sessions": self.sessions,
            "events": self.events,
            "pages": self.pages,
            "eventCounts": self.event_counts,
            "arms": self.arms,
        }


def fold(profile: Profile, event: Event) -> Profile:
    """The profile after one more event. Pure; the caller decides whether it is new."""
    updated = _count(profile, event)
    updated = _sessionize(updated, event)
    return _identify(updated, event)


def _count(profile: Profile, event: Event) -> Profile:
    counts = profile.event_counts
    if event.type == "track" and event.name:
        name = event.name
        if name not in counts and len(counts) >= MAX_DISTINCT_EVENT_NAMES:
            name = OTHER_EVENTS
        counts = {**counts, name: counts.get(name, 0) + 1}
    return replace(
        profile,
        events=profile.events + 1,
        pages=profile.pages + (event.type in PAGE_TYPES),
        event_counts=counts,
    )


def _sessionize(profile: Profile, event: Event) -> Profile:
    moment = iso(event.timestamp)
    is_page = int(event.type in PAGE_TYPES)
    first_seen = min(filter(None, (profile.first_seen, moment)))
    if profile.last_seen is None or event.timestamp - _parse(profile.last_seen) > SESSION_GAP:
        return replace(
            profile,
            first_seen=first_seen,
            last_seen=moment,
            session_id=f"{profile.person}@{moment}",
            session_started=moment,
            session_pages=is_page,
            session_events=1,
            last_session_pages=profile.session_pages if profile.session_id else None,
            sessions=profile.sessions + 1,
        )
    # Within the session, or late but not older than its start: it belongs to this session.
    # A late event older than the current session is counted above but reshapes no session.
    in_session = profile.session_started is not None and moment >= profile.session_started
    return replace(
        profile,
        first_seen=first_seen,
        last_seen=max(profile.last_seen, moment),
        session_pages=profile.session_pages + (is_page if in_session else 0),
        session_events=profile.session_events + int(in_session),
    )


def _identify(profile: Profile, event: Event) -> Profile:
    if event.user_id and profile.person.is_user:
        profile = replace(profile, user_id=event.user_id)
    if event.type == "identify":
        traits = event.body.get("traits") or {}
        profile = replace(profile, traits=_bounded_merge(profile.traits, traits))
    elif event.type == "group":
        group_id = str(event.body.get("groupId"))
        if group_id in profile.groups or len(profile.groups) < MAX_GROUPS:
            traits = event.body.get("traits") or {}
            merged = _bounded_merge(profile.groups.get(group_id, {}), traits)
            profile = replace(profile, groups={**profile.groups, group_id: merged})
    linked = [event.anonymous_id] if event.user_id else []
    if event.type == "alias" and event.previous_id:
        linked.append(event.previous_id)
    new_ids = [anon for anon in linked if anon and anon not in profile.anonymous_ids]
    if new_ids and profile.person.is_user:
        linked_ids = (*profile.anonymous_ids, *new_ids)[-MAX_ANONYMOUS_IDS:]
        profile = replace(profile, anonymous_ids=linked_ids)
    return profile


def _bounded_merge(current: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Later values win; new keys are dropped rather than let the profile outgrow its item."""
    merged = {**current, **update}
    if len(merged) <= MAX_TRAIT_KEYS and _json_size(merged) <= MAX_TRAITS_BYTES:
        return merged
    updates_only = {**current, **{key: value for key, value in update.items() if key in current}}
    return updates_only if _json_size(updates_only) <= MAX_TRAITS_BYTES else current


def _json_size(value: dict[str, Any]) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


def _parse(moment: str) -> datetime:
    return datetime.fromisoformat(moment)
