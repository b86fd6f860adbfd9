"""Properties of the fast paths (the profile fold, the compiled conditions, the backtest),
each checked against the plain reading it replaced, on generated input.

Bounded and derandomized: a hundred examples each, the same ones on every run.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nudge.adapters.store import _profile_item
from nudge.domain.engagement import counted, hour_of_week, is_engagement
from nudge.domain.intake import Event
from nudge.domain.person import PersonId
from nudge.domain.profile import (
    MAX_ANONYMOUS_IDS,
    MAX_DISTINCT_EVENT_NAMES,
    MAX_GROUPS,
    OTHER_EVENTS,
    PAGE_TYPES,
    SESSION_GAP,
    Profile,
    _bounded_merge,
    fold,
)
from nudge.domain.timefmt import iso
from nudge.domain.triggers.compiled import compile_condition
from nudge.domain.triggers.conditions import Facts, holds
from nudge.domain.triggers.engine import Fire, TriggerIndex, on_event
from nudge.domain.triggers.explain import why_not
from nudge.domain.triggers.model import Condition, Trigger
from nudge.service.backtest import backtest
from pydantic import TypeAdapter, ValidationError

BOUNDED = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
START = datetime(2026, 9, 1, tzinfo=UTC)
USERS = ["u1", "u2"]
ANONYMOUS = ["a1", "a2"]
NAMES = ["A", "B", "Checkout Started", "Email Opened", "Email Link Clicked"]
ZONES = ["Europe/Paris", "Asia/Tokyo", "Nowhere/City"]

# ---- generated input ---------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 300),
    st.floats(-5, 300, allow_nan=False),
    st.sampled_from(["vip", "gold", "a", 'q"uote', "é", "1", "100"]),
    st.just(float("nan")),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["sku", "x", "0"]), inner, max_size=3),
    ),
    max_leaves=6,
)


@st.composite
def events(draw: st.DrawFn, number: int = 0, people: bool = True) -> Event:
    """One accepted event: any type, any of a few people, within a fortnight."""
    kind = draw(st.sampled_from(["track", "track", "page", "screen", "identify", "group", "alias"]))
    at = START + timedelta(minutes=draw(st.integers(0, 60 * 24 * 14)))
    user = draw(st.sampled_from([None, *USERS])) if people else "u1"
    anonymous = draw(st.sampled_from([None, *ANONYMOUS])) if people else None
    if user is None and anonymous is None:
        anonymous = ANONYMOUS[0]
    body: dict[str, Any] = {"type": kind, "messageId": f"m{number}", "timestamp": iso(at)}
    if kind == "track":
        body["event"] = draw(st.sampled_from(NAMES))
    if kind in PAGE_TYPES:
        body["name"] = draw(st.sampled_from(["Home", "Cart"]))
    if kind in ("identify", "group"):
        body["traits"] = draw(st.dictionaries(st.sampled_from(["tier", "n", "email"]), scalars))
    if kind == "group":
        body["groupId"] = draw(st.sampled_from(["g1", "g2"]))
    if kind == "alias":
        body["previousId"] = draw(st.sampled_from(ANONYMOUS))
    if draw(st.booleans()):
        body["properties"] = draw(
            st.dictionaries(st.sampled_from(["x", "y", "items"]), values, max_size=3)
        )
    if kind == "identify" and draw(st.booleans()):
        body["traits"]["timezone"] = draw(st.sampled_from(ZONES))
    if draw(st.booleans()):
        body["context"] = {"timezone": draw(st.sampled_from(ZONES))}
    if body.get("event") == "Email Opened" and draw(st.booleans()):
        sent = at - timedelta(seconds=draw(st.integers(0, 600)))
        body["properties"] = {**body.get("properties", {}), "sentAt": iso(sent)}
    if user:
        body["userId"] = user
    if anonymous:
        body["anonymousId"] = anonymous
    return Event(f"m{number}", kind, user, anonymous, at, at, body)


@st.composite
def streams(draw: st.DrawFn, people: bool = True) -> list[Event]:
    count = draw(st.integers(1, 30))
    drawn = [draw(events(number, people)) for number in range(count)]
    return sorted(drawn, key=lambda event: event.timestamp)


PATHS = [
    "properties.x",
    "properties.y",
    "properties.items.sku",
    "properties.items.0.sku",
    "traits.tier",
    "traits.n",
    "profile.pages",
    "profile.sessions",
    "profile.session_pages",
    "event",
    "type",
    "userId",
]


@st.composite
def predicates(draw: st.DrawFn) -> dict[str, Any]:
    operator = draw(
        st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte", "in", "exists", "starts_with"])
    )
    operand: Any
    if operator == "exists":
        operand = draw(st.booleans())
    elif operator == "in":
        operand = draw(st.lists(scalars, max_size=3))
    elif operator in ("gt", "gte", "lt", "lte"):
        operand = draw(st.one_of(st.integers(0, 200), st.sampled_from(["a", "m"])))
    elif operator == "starts_with":
        operand = draw(st.sampled_from(["v", "", "g"]))
    else:
        operand = draw(scalars)
    return {"path": draw(st.sampled_from(PATHS)), operator: operand}


conditions = st.recursive(
    predicates(),
    lambda inner: st.one_of(
        st.builds(lambda items: {"all": items}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda items: {"any": items}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda item: {"not": item}, inner),
        st.builds(
            lambda where, operator, number: {
                "count": {"event": "A", "within": "1d", "where": [where]},
                operator: number,
            },
            predicates(),
            st.sampled_from(["gte", "lt", "eq"]),
            st.integers(0, 3),
        ),
    ),
    max_leaves=5,
)
CONDITION = TypeAdapter(Condition)


def _condition(document: dict[str, Any]) -> Condition | None:
    try:
        return CONDITION.validate_python(document)
    except ValidationError:
        return None  # a generated condition the schema refuses (e.g. ``gt`` a list)


@st.composite
def facts(draw: st.DrawFn) -> Facts:
    now = START + timedelta(days=2)
    history = [event.body for event in draw(streams(people=False))]
    return Facts(
        now=now,
        event=draw(events()).body,
        traits=draw(st.dictionaries(st.sampled_from(["tier", "n"]), values, max_size=2)),
        profile=draw(st.dictionaries(st.sampled_from(["pages", "sessions"]), values, max_size=2)),
        history=history,
    )


# ---- the fold ----------------------------------------------------------------------


def _fold_by_replace(profile: Profile, event: Event) -> Profile:
    """The fold as first written, one ``dataclasses.replace`` per concern: the reference."""
    counts = profile.event_counts
    if event.type == "track" and event.name:
        name = event.name
        if name not in counts and len(counts) >= MAX_DISTINCT_EVENT_NAMES:
            name = OTHER_EVENTS
        counts = {**counts, name: counts.get(name, 0) + 1}
    profile = replace(
        profile,
        events=profile.events + 1,
        pages=profile.pages + (event.type in PAGE_TYPES),
        event_counts=counts,
    )
    moment = iso(event.timestamp)
    is_page = int(event.type in PAGE_TYPES)
    sessions_before = profile.sessions
    first_seen = min(filter(None, (profile.first_seen, moment)))
    if (
        profile.last_seen is None
        or event.timestamp - datetime.fromisoformat(profile.last_seen) > SESSION_GAP
    ):
        profile = replace(
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
    else:
        in_session = profile.session_started is not None and moment >= profile.session_started
        profile = replace(
            profile,
            first_seen=first_seen,
            last_seen=max(profile.last_seen, moment),
            session_pages=profile.session_pages + (is_page if in_session else 0),
            session_events=profile.session_events + int(in_session),
        )
    if event.user_id and profile.person.is_user:
        profile = replace(profile, user_id=event.user_id)
    if event.type == "identify":
        traits = event.body.get("traits") or {}
        profile = replace(profile, traits=_bounded_merge(profile.traits, traits))
    elif event.type == "group":
        group_id = str(event.body.get("groupId"))
        if group_id in profile.groups or len(profile.groups) < MAX_GROUPS:
            merged = _bounded_merge(
                profile.groups.get(group_id, {}), event.body.get("traits") or {}
            )
            profile = replace(profile, groups={**profile.groups, group_id: merged})
    linked = [event.anonymous_id] if event.user_id else []
    if event.type == "alias" and event.previous_id:
        linked.append(event.previous_id)
    new_ids = [anon for anon in linked if anon and anon not in profile.anonymous_ids]
    if new_ids and profile.person.is_user:
        profile = replace(
            profile, anonymous_ids=(*profile.anonymous_ids, *new_ids)[-MAX_ANONYMOUS_IDS:]
        )
    if is_engagement(event, starts_session=profile.sessions > sessions_before):
        zone = profile.traits.get("timezone") or (event.body.get("context") or {}).get("timezone")
        slot = hour_of_week(event.timestamp, zone)
        profile = replace(profile, engaged_hours=counted(profile.engaged_hours, slot))
    return profile


def _encoded(profile: Profile) -> str:
    """What is stored and shown, as text: True and 1 are equal values, not equal items."""
    stored = _profile_item(profile, shards=4, kept=timedelta(days=30))
    return json.dumps([stored, profile.to_json()], sort_keys=True, default=str)


PEOPLE = st.sampled_from([PersonId.user("u1"), PersonId.anonymous("a1")])


@BOUNDED
@given(PEOPLE, streams())
def test_the_fold_is_the_reference_fold(person: PersonId, stream: list[Event]) -> None:
    """Event after event, the one-step fold makes the profile the replace() fold makes,
    down to its stored item's encoding."""
    fast = reference = Profile(person=person)
    for event in stream:
        fast, reference = fold(fast, event), _fold_by_replace(reference, event)
        assert fast == reference
        assert _encoded(fast) == _encoded(reference)


@BOUNDED
@given(PEOPLE, streams())
def test_the_fold_is_pure_and_deterministic(person: PersonId, stream: list[Event]) -> None:
    """The same profile and event give equal profiles, and the profile folded from is
    left as it was (its dictionaries are shared with the next one, never changed)."""
    profile = Profile(person=person)
    for event in stream:
        before = _encoded(profile)
        once, twice = fold(profile, event), fold(profile, event)
        assert once == twice
        assert _encoded(profile) == before
        profile = once


@BOUNDED
@given(PEOPLE, streams(), st.randoms(use_true_random=False))
def test_the_counts_do_not_depend_on_arrival_order(
    person: PersonId, stream: list[Event], chooser: Any
) -> None:
    """Late events are still counted: in any order, the same events give the same counts
    and the same first and last seen; sessions are what only time order decides."""
    shuffled = list(stream)
    chooser.shuffle(shuffled)
    in_order = in_any_order = Profile(person=person)
    for event in stream:
        in_order = fold(in_order, event)
    for event in shuffled:
        in_any_order = fold(in_any_order, event)
    for name in ("events", "pages", "event_counts", "first_seen", "last_seen"):
        assert getattr(in_any_order, name) == getattr(in_order, name), name


# ---- compiled conditions -------------------------------------------------------------


@BOUNDED
@given(conditions, facts())
def test_compiled_conditions_agree_with_the_interpreter(
    document: dict[str, Any], found: Facts
) -> None:
    """A compiled condition holds exactly when conditions.holds says so, and gives the
    reason explain.why_not gives, or raises what they raise."""
    condition = _condition(document)
    if condition is None:
        return
    compiled = compile_condition(condition)
    expected: Any
    got: Any
    try:
        expected = (holds(condition, found), why_not([condition], found))
    except Exception as error:  # the same failure is the expected answer
        expected = type(error)
    try:
        got = (compiled.test(found), compiled.check(found))
    except Exception as error:
        got = type(error)
    assert got == expected


# ---- the backtest and the live engine ------------------------------------------------


@st.composite
def immediate_triggers(draw: st.DrawFn) -> list[Trigger]:
    """Triggers that fire on the event itself (no wait, every time): what on_event fires
    is every fire, so the backtest must count exactly those."""
    found: list[Trigger] = []
    for number in range(draw(st.integers(1, 4))):
        document: dict[str, Any] = {
            "id": f"t{number}",
            "when": {
                "event": draw(st.sampled_from(NAMES)),
                "where": draw(st.lists(conditions, max_size=2)),
            },
            "reentry": "every_time",
            "send": {"channel": "email", "template": "x"},
        }
        if draw(st.booleans()):
            document["audience"] = draw(conditions)
        try:
            found.append(Trigger.model_validate(document))
        except ValidationError:
            continue
    return found


@BOUNDED
@given(immediate_triggers(), streams(people=False))
def test_the_backtest_fires_what_on_event_fires(
    triggers: list[Trigger], stream: list[Event]
) -> None:
    """Replayed, a stream fires what the live engine's on_event fires for its events one
    by one (the profile folded with each, the person's history so far), per trigger and day."""
    index = TriggerIndex.of(triggers)
    person = PersonId.user("u1")
    profile = Profile(person=person)
    history: list[dict[str, Any]] = []
    expected: Counter[tuple[str, str]] = Counter()
    for event in stream:
        profile = fold(profile, event)
        history.append(event.body)
        facts = Facts(
            now=event.timestamp,
            event=event.body,
            traits=profile.traits,
            profile=profile.facts(event.timestamp),
            history=list(history),
        )
        for action in on_event(index, person, facts, [], {}).actions:
            assert isinstance(action, Fire)
            expected[(action.trigger, action.at.date().isoformat())] += 1
    report = backtest(stream, triggers)
    replayed = Counter(
        {
            (trigger, day): count
            for trigger, result in report.triggers.items()
            for day, count in result.per_day.items()
        }
    )
    assert +replayed == +expected
    assert report.events == len(stream)
