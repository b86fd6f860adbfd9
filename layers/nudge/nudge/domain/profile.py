"""Per-person aggregates, folded from events one at a time, so no decision scans history.

A session ends after 30 minutes without events, decided here on the server from the
events' own timestamps: any client works, even one that knows nothing about sessions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from nudge.domain.engagement import CLICKED, OPENED, counted, hour_of_week, is_engagement
from nudge.domain.intake import Event
from nudge.domain.person import PersonId
from nudge.domain.timefmt import hour_of

__all__ = [
    "DEFAULT_RETENTION",
    "SESSION_GAP",
    "Miss",
    "Profile",
    "expiry",
    "fold",
    "profile_kept",
]

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
# The template's RetentionDays by default: how long an event is kept.
DEFAULT_RETENTION = timedelta(days=90)
# The longest inactivity a trigger may wait for (triggers.common.MAX_WINDOW; not imported
# here: Ingest must not load the trigger language).
_LONGEST_WAIT = timedelta(days=90)


def profile_kept(retention: timedelta) -> timedelta:
    """How long a profile outlives the hour of its person's last activity: as long as their
    events are kept, and at least as long as the longest inactivity a trigger may wait for,
    plus a day. Then it holds nothing a decision needs, only traits nobody should keep."""
    return max(retention, _LONGEST_WAIT) + timedelta(days=1)


def expiry(sweep_hour: datetime, kept: timedelta) -> datetime:
    """When a profile filed under ``sweep_hour`` (``Profile.sweep_hour``) expires: ``kept``
    after that hour ends. A whole second, as DynamoDB's TTL attribute holds it."""
    return sweep_hour + timedelta(hours=1) + kept


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
    """One person's aggregates: identity, traits, sessions, counts, engagement hours, scores,
    experiment arms, and the stream position folded so far."""

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
    # How many of that record's events were folded (a record holds a request's events for
    # the person): a redelivered record resumes after them.
    applied_index: int = 0
    # Digests of the last messageIds folded (domain/recent_ids.py): an event a client
    # re-sent in a batch cut differently is stored twice, and folded once.
    recent_ids: bytes = b""
    # When the last record was folded (the stream's time, not the event's): see sweep_hour.
    folded_at: str | None = None
    # Experiment arms, by trigger and version (engine.arm_key): kept so a re-entry keeps its arm.
    arms: dict[str, str] = field(default_factory=dict)
    # Why each event trigger last did not match an event of the person's: what `explain`
    # shows for "why not". Kept here, on the profile write every event makes anyway, rather
    # than as a decision record per event (a write unit each, half of the writes there were).
    misses: dict[str, Miss] = field(default_factory=dict)
    # Engagements (session starts, clicks, opens a person made) by hour of the week on their
    # clock, 0 = Monday 00:00 (domain/engagement.py): when they tend to look.
    engaged_hours: dict[int, int] = field(default_factory=dict)
    # Prediction scores (0-100) as of the person's last event, and the version of the model
    # that gave each (domain/predictions/live.py): a few bytes, on the write made anyway.
    scores: dict[str, int] = field(default_factory=dict)
    score_models: dict[str, str] = field(default_factory=dict)
    # When the hourly sweep re-scored a quiet person, the sweep's time: what the scores are
    # as of (explain works their features out again then). None: as of the last fold.
    scored_at: str | None = None

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
            "scores": self.scores,
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
            "engagedHours": {str(hour): n for hour, n in sorted(self.engaged_hours.items())},
            # Only when some prediction scored the person: most profiles have none.
            **({"scores": self._scores_json()} if self.scores else {}),
            **({"scoredAt": self.scored_at} if self.scored_at else {}),
        }

    def _scores_json(self) -> dict[str, dict[str, Any]]:
        return {
            prediction: {"score": score, "model": self.score_models.get(prediction)}
            for prediction, score in sorted(self.scores.items())
        }


def fold(profile: Profile, event: Event) -> Profile:
    """The profile after one more event. Pure; the caller decides whether it is new.

    The new profile's fields start as a copy of the old one's, each change is written into
    that copy, worked out from the old profile and the event, and the copy becomes the new
    profile (``_made``): this runs once per event, on the live path and, tens of thousands
    of times a second, in the backtest, where three ``dataclasses.replace`` calls were half
    the time spent per event.
    """
    fields = dict(profile.__dict__)  # every field (see _made)
    kind = event.type
    is_page = kind in PAGE_TYPES
    # Counts: every event, whatever its time.
    fields["events"] = profile.events + 1
    fields["pages"] = profile.pages + is_page
    name = event.name if kind == "track" else None
    if name:
        counts = profile.event_counts
        counted_as = name
        if name not in counts and len(counts) >= MAX_DISTINCT_EVENT_NAMES:
            counted_as = OTHER_EVENTS
        fields["event_counts"] = {**counts, counted_as: counts.get(counted_as, 0) + 1}
    _sessionize(profile, event, event.moment, is_page, fields)
    # Most events are a user's track or page with nothing to link and no traits: the user
    # id written again is all _identify would do (what is_user answers, without its call).
    if kind in _IDENTIFYING or event.anonymous_id or profile.person.kind != "user":
        _identify(profile, event, fields)
    elif event.user_id:
        fields["user_id"] = event.user_id
    # Only a session's start or a track event named as a click or an open may be an
    # engagement (is_engagement): any other event is passed over without asking it.
    if fields["sessions"] > profile.sessions or name in _ENGAGING:
        _engage(profile, event, fields)
    return _made(fields)


# The event types _identify reads beyond the ids: traits, a group's, an alias's previous id.
_IDENTIFYING = frozenset({"identify", "group", "alias"})
_ENGAGING = frozenset({CLICKED, OPENED})


def _engage(profile: Profile, event: Event, fields: dict[str, Any]) -> None:
    starts_session = fields["sessions"] > profile.sessions
    if not is_engagement(event, starts_session):
        return
    traits = fields["traits"]
    timezone = traits.get("timezone") or (event.body.get("context") or {}).get("timezone")
    slot = hour_of_week(event.timestamp, timezone)
    fields["engaged_hours"] = counted(profile.engaged_hours, slot)


def _sessionize(
    profile: Profile, event: Event, moment: str, is_page: bool, fields: dict[str, Any]
) -> None:
    first_seen = profile.first_seen
    fields["first_seen"] = moment if not first_seen or moment < first_seen else first_seen
    last_seen = profile.last_seen
    if last_seen is None or event.timestamp - _parse(last_seen) > SESSION_GAP:
        fields["last_seen"] = moment
        fields["session_id"] = f"{profile.person}@{moment}"
        fields["session_started"] = moment
        fields["session_pages"] = int(is_page)
        fields["session_events"] = 1
        fields["last_session_pages"] = profile.session_pages if profile.session_id else None
        fields["sessions"] = profile.sessions + 1
        return
    # Within the session, or late but not older than its start: it belongs to this session.
    # A late event older than the current session is counted above but reshapes no session.
    fields["last_seen"] = moment if moment > last_seen else last_seen
    started = profile.session_started
    if started is not None and moment >= started:
        fields["session_pages"] = profile.session_pages + is_page
        fields["session_events"] = profile.session_events + 1


def _identify(profile: Profile, event: Event, fields: dict[str, Any]) -> None:
    is_user = profile.person.is_user
    if event.user_id and is_user:
        fields["user_id"] = event.user_id
    if event.type == "identify":
        traits = event.body.get("traits") or {}
        fields["traits"] = _bounded_merge(profile.traits, traits)
    elif event.type == "group":
        group_id = str(event.body.get("groupId"))
        groups = profile.groups
        if group_id in groups or len(groups) < MAX_GROUPS:
            traits = event.body.get("traits") or {}
            merged = _bounded_merge(groups.get(group_id, {}), traits)
            fields["groups"] = {**groups, group_id: merged}
    if not is_user:
        return  # only a user's profile links anonymous ids
    linked = [event.anonymous_id] if event.user_id and event.anonymous_id else []
    if event.type == "alias" and event.previous_id:
        linked.append(event.previous_id)
    if not linked:
        return  # most events: a user's, with no visitor id to link
    known = profile.anonymous_ids
    new_ids = [anon for anon in linked if anon and anon not in known]
    if new_ids:
        fields["anonymous_ids"] = (*known, *new_ids)[-MAX_ANONYMOUS_IDS:]


def _made(fields: dict[str, Any]) -> Profile:
    """``Profile(**fields)``, in a quarter of the time.

    The dataclass's ``__init__`` sets each of the twenty-odd fields with
    ``object.__setattr__`` (the class is frozen). Profile has no ``__post_init__`` and no
    ``__slots__``: its state is its ``__dict__``, so ``fields`` (a copy of another profile's
    ``__dict__``, changes written in) becomes the new one's as it is. It holds field names
    only (a typo would be a stray attribute, not a field: the fold is its one caller).
    """
    made = object.__new__(Profile)
    object.__setattr__(made, "__dict__", fields)
    return made


def _bounded_merge(current: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Later values win; new keys are dropped rather than let the profile outgrow its item."""
    merged = {**current, **update}
    if len(merged) <= MAX_TRAIT_KEYS and _json_size(merged) <= MAX_TRAITS_BYTES:
        return merged
    updates_only = {**current, **{key: value for key, value in update.items() if key in current}}
    return updates_only if _json_size(updates_only) <= MAX_TRAITS_BYTES else current


def _json_size(value: dict[str, Any]) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


# The stored text's datetime: fromisoformat itself, not a function around it (the fold
# parses the last activity on every event).
_parse = datetime.fromisoformat
