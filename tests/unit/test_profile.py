"""Folding events into a person's profile: counts, sessions, traits and linked ids."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import reduce

from nudge.domain.intake import Event
from nudge.domain.person import PersonId
from nudge.domain.profile import MAX_DISTINCT_EVENT_NAMES, OTHER_EVENTS, Profile, fold

from tests.unit.builders import event

USER = PersonId.user("user-1")


def fold_all(events: list[Event], person: PersonId = USER) -> Profile:
    return reduce(fold, events, Profile(person=person))


def test_the_first_event_opens_the_first_session() -> None:
    """A new profile's first event starts session 1, with no previous session to report."""
    # given
    first = event("page", minutes=0, name="Home")

    # when
    profile = fold(Profile(person=USER), first)

    # then
    assert profile.sessions == 1
    assert profile.session_id == "u:user-1@2026-11-28T12:00:00.000Z"
    assert profile.session_started == "2026-11-28T12:00:00.000Z"
    assert profile.session_pages == 1
    assert profile.session_events == 1
    assert profile.last_session_pages is None


def test_events_within_thirty_minutes_stay_in_one_session() -> None:
    """Events each less than 30 minutes apart share one session, however long it runs."""
    # given
    events = [event("page", minutes=minutes, name="Home") for minutes in (0, 20, 40, 60)]

    # when
    profile = fold_all(events)

    # then
    assert profile.sessions == 1
    assert profile.session_events == 4
    assert profile.session_pages == 4
    assert profile.session_started == "2026-11-28T12:00:00.000Z"


def test_a_gap_of_exactly_thirty_minutes_keeps_the_session() -> None:
    """A session ends only after more than 30 minutes of silence."""
    # given
    events = [event(minutes=0, name="A"), event(minutes=30, name="B")]

    # when
    profile = fold_all(events)

    # then
    assert profile.sessions == 1
    assert profile.session_events == 2


def test_more_than_thirty_minutes_of_silence_opens_a_new_session() -> None:
    """An event over 30 minutes after the last one starts a new session."""
    # given
    events = [event(minutes=0, name="A"), event(minutes=30.5, name="B")]

    # when
    profile = fold_all(events)

    # then
    assert profile.sessions == 2
    assert profile.session_started == "2026-11-28T12:30:30.000Z"
    assert profile.session_id == "u:user-1@2026-11-28T12:30:30.000Z"
    assert profile.session_events == 1


def test_last_session_pages_carries_the_previous_sessions_page_count() -> None:
    """On a new session, the pages seen in the session just ended move to last_session_pages."""
    # given
    first_session = [event("page", minutes=minutes, name="P") for minutes in (0, 1, 2)]
    second_session = [event("track", minutes=90, name="Returned")]

    # when
    profile = fold_all([*first_session, *second_session])

    # then
    assert profile.last_session_pages == 3
    assert profile.session_pages == 0
    assert profile.sessions == 2


def test_screens_count_as_pages() -> None:
    """Screen views count toward pages and session pages, like page views."""
    # given
    events = [event("screen", minutes=0, name="Settings"), event("page", minutes=1, name="Home")]

    # when
    profile = fold_all(events)

    # then
    assert profile.pages == 2
    assert profile.session_pages == 2


def test_a_late_event_is_counted_but_opens_no_session() -> None:
    """An out-of-order event older than the current session adds to totals only."""
    # given
    profile = fold_all([event(minutes=0, name="A"), event("page", minutes=120, name="Home")])

    # when
    late = fold(profile, event("page", minutes=60, name="Pricing"))

    # then
    assert late.events == 3
    assert late.pages == 2
    assert late.sessions == 2
    assert late.session_started == profile.session_started
    assert late.session_events == profile.session_events
    assert late.session_pages == profile.session_pages
    assert late.last_seen == "2026-11-28T14:00:00.000Z"


def test_a_late_event_within_the_current_session_joins_it() -> None:
    """An out-of-order event no older than the session start belongs to that session."""
    # given
    profile = fold_all([event(minutes=0, name="A"), event(minutes=20, name="B")])

    # when
    late = fold(profile, event("page", minutes=10, name="Home"))

    # then
    assert late.sessions == 1
    assert late.session_events == 3
    assert late.session_pages == 1
    assert late.last_seen == "2026-11-28T12:20:00.000Z"


def test_first_seen_and_last_seen_span_all_events() -> None:
    """first_seen is the earliest event time and last_seen the latest, whatever the order."""
    # given
    events = [event(minutes=10, name="A"), event(minutes=-5, name="B"), event(minutes=3, name="C")]

    # when
    profile = fold_all(events)

    # then
    assert profile.first_seen == "2026-11-28T11:55:00.000Z"
    assert profile.last_seen == "2026-11-28T12:10:00.000Z"


def test_event_counts_are_kept_per_track_name() -> None:
    """Each track event name has its own count."""
    # given
    names = ["Product Viewed", "Product Viewed", "Cart Updated", "Product Viewed"]
    events = [event(minutes=index, name=name) for index, name in enumerate(names)]

    # when
    profile = fold_all(events)

    # then
    assert profile.event_counts == {"Product Viewed": 3, "Cart Updated": 1}
    assert profile.events == 4


def test_only_track_events_enter_event_counts() -> None:
    """Pages, identifies and other calls count as events but not by name."""
    # given
    events = [
        event("page", minutes=0, name="Home"),
        event("identify", minutes=1, traits={"plan": "pro"}),
        event("track", minutes=2, name="Signed Up"),
    ]

    # when
    profile = fold_all(events)

    # then
    assert profile.event_counts == {"Signed Up": 1}
    assert profile.events == 3


def test_distinct_names_past_the_cap_fold_into_other() -> None:
    """Once the cap of distinct names is reached, new names count under $other."""
    # given
    full = Profile(
        person=USER,
        event_counts={f"name-{index}": 1 for index in range(MAX_DISTINCT_EVENT_NAMES)},
    )

    # when
    profile = fold(fold(full, event(name="Brand New")), event(minutes=1, name="Another New"))

    # then
    assert profile.event_counts[OTHER_EVENTS] == 2
    assert "Brand New" not in profile.event_counts
    assert "Another New" not in profile.event_counts


def test_known_names_keep_counting_past_the_cap() -> None:
    """A name already counted keeps its own count after the cap is reached."""
    # given
    full = Profile(
        person=USER,
        event_counts={f"name-{index}": 1 for index in range(MAX_DISTINCT_EVENT_NAMES)},
    )

    # when
    profile = fold(full, event(name="name-7"))

    # then
    assert profile.event_counts["name-7"] == 2
    assert OTHER_EVENTS not in profile.event_counts


def test_identify_merges_traits_with_later_values_winning() -> None:
    """A later identify overrides the traits it sends and keeps the ones it does not."""
    # given
    events = [
        event("identify", minutes=0, traits={"email": "old@example.com", "plan": "free"}),
        event("identify", minutes=1, traits={"plan": "pro", "name": "Ada"}),
    ]

    # when
    profile = fold_all(events)

    # then
    assert profile.traits == {"email": "old@example.com", "plan": "pro", "name": "Ada"}


def test_group_traits_are_merged_per_group() -> None:
    """Group calls merge traits under their groupId, keeping groups apart."""
    # given
    events = [
        event("group", minutes=0, groupId="acme", traits={"name": "Acme", "seats": 5}),
        event("group", minutes=1, groupId="globex", traits={"name": "Globex"}),
        event("group", minutes=2, groupId="acme", traits={"seats": 12}),
    ]

    # when
    profile = fold_all(events)

    # then
    assert profile.groups == {
        "acme": {"name": "Acme", "seats": 12},
        "globex": {"name": "Globex"},
    }


def test_a_user_profile_records_its_user_id() -> None:
    """A user profile takes the userId of the events folded into it."""
    # given
    first = event(user_id="user-1", name="Signed Up")

    # when
    profile = fold(Profile(person=USER), first)

    # then
    assert profile.user_id == "user-1"


def test_identify_with_both_ids_links_the_anonymous_id() -> None:
    """An identify carrying userId and anonymousId links the anonymous id to the user, once."""
    # given
    identify = event("identify", user_id="user-1", anonymous_id="anon-1", traits={})

    # when
    profile = fold(fold(Profile(person=USER), identify), identify)

    # then
    assert profile.anonymous_ids == ("anon-1",)


def test_alias_links_the_previous_id() -> None:
    """An alias links its previousId to the user profile."""
    # given
    alias = event("alias", user_id="user-1", previousId="anon-0")

    # when
    profile = fold(Profile(person=USER), alias)

    # then
    assert profile.anonymous_ids == ("anon-0",)


def test_alias_with_an_anonymous_id_links_both_ids() -> None:
    """An alias sent from an anonymous device links its anonymousId and its previousId."""
    # given
    alias = event("alias", user_id="user-1", anonymous_id="anon-1", previousId="anon-0")

    # when
    profile = fold(Profile(person=USER), alias)

    # then
    assert profile.anonymous_ids == ("anon-1", "anon-0")


def test_an_anonymous_profile_links_no_ids() -> None:
    """An anonymous profile links no ids and takes no userId; only user profiles do."""
    # given
    identify = event("identify", user_id="user-1", anonymous_id="anon-1", traits={"plan": "pro"})

    # when
    profile = fold(Profile(person=PersonId.anonymous("anon-1")), identify)

    # then
    assert profile.anonymous_ids == ()
    assert profile.user_id is None
    assert profile.traits == {"plan": "pro"}


def test_fold_leaves_the_input_profile_unchanged() -> None:
    """fold returns a new profile and never mutates the one it is given."""
    # given
    before = fold_all([event("identify", traits={"plan": "free"}), event(minutes=1, name="A")])
    snapshot = before.to_json()

    # when
    fold(before, event("identify", minutes=2, traits={"plan": "pro"}))

    # then
    assert before.to_json() == snapshot


def test_to_json_uses_the_stored_field_names() -> None:
    """to_json renders the profile in camelCase with the session nested."""
    # given
    profile = fold_all([event("page", name="Home", anonymous_id="anon-1")])

    # when
    document = profile.to_json()

    # then
    assert document == {
        "person": "u:user-1",
        "userId": "user-1",
        "anonymousIds": ["anon-1"],
        "traits": {},
        "groups": {},
        "firstSeen": "2026-11-28T12:00:00.000Z",
        "lastSeen": "2026-11-28T12:00:00.000Z",
        "session": {
            "id": "u:user-1@2026-11-28T12:00:00.000Z",
            "started": "2026-11-28T12:00:00.000Z",
            "pages": 1,
            "events": 1,
        },
        "lastSessionPages": None,
        "sessions": 1,
        "events": 1,
        "pages": 1,
        "eventCounts": {},
        "arms": {},
        "engagedHours": {"132": 1},  # the session's start: Saturday 12:00 UTC
    }


def test_traits_stop_growing_at_the_key_cap_but_still_update() -> None:
    """Past the trait-key cap new keys are dropped while existing keys still take new values."""
    # given
    from nudge.domain.profile import MAX_TRAIT_KEYS

    full = Profile(person=USER, traits={f"k{i}": i for i in range(MAX_TRAIT_KEYS)})
    update = event("identify", traits={"k0": "new", "brand_new": 1})

    # when
    profile = fold(full, update)

    # then
    assert profile.traits["k0"] == "new"
    assert "brand_new" not in profile.traits
    assert len(profile.traits) == MAX_TRAIT_KEYS


def test_linked_anonymous_ids_keep_only_the_most_recent() -> None:
    """A user linked to many anonymous ids keeps the latest ones, so the item stays bounded."""
    # given
    from nudge.domain.profile import MAX_ANONYMOUS_IDS

    crowded = Profile(person=USER, anonymous_ids=tuple(f"a{i}" for i in range(MAX_ANONYMOUS_IDS)))

    # when
    profile = fold(crowded, event("identify", anonymous_id="latest"))

    # then
    assert len(profile.anonymous_ids) == MAX_ANONYMOUS_IDS
    assert profile.anonymous_ids[-1] == "latest"
    assert "a0" not in profile.anonymous_ids


def test_a_profile_is_filed_under_the_hour_of_its_last_activity() -> None:
    """The sweep reads people by the UTC hour they were last seen."""
    # given
    profile = Profile(person=PersonId.user("ada"), last_seen="2026-11-28T10:05:00+00:00")
    # when
    hour = profile.sweep_hour()
    # then
    assert hour == datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


def test_a_late_event_is_filed_under_the_hour_it_was_folded_in() -> None:
    """An event stamped 10:05 but folded at 13:20 is filed under 13:00, an hour the sweep has
    not read yet, so the person is not lost in an hour already swept."""
    # given
    profile = Profile(
        person=PersonId.user("ada"),
        last_seen="2026-11-28T10:05:00+00:00",
        folded_at="2026-11-28T13:20:00.000Z",
    )
    # when
    hour = profile.sweep_hour()
    # then
    assert hour == datetime(2026, 11, 28, 13, 0, tzinfo=UTC)


def test_a_profile_never_seen_is_filed_nowhere() -> None:
    """No activity, no hour: the sweep never reads it."""
    # given / when / then
    assert Profile(person=PersonId.user("ada")).sweep_hour() is None


def test_an_event_built_without_its_timestamp_text_gets_it_from_the_timestamp() -> None:
    """An Event made elsewhere than intake (a stored item, a test) formats its own moment."""
    # given
    at = datetime(2026, 3, 1, 8, 15, 30, 987654, tzinfo=UTC)

    # when
    made = Event("m-1", "track", "user-1", None, at, at, {"type": "track", "event": "Signed Up"})

    # then
    assert made.moment == "2026-03-01T08:15:30.987Z"
    assert fold(Profile(person=PersonId.user("user-1")), made).last_seen == made.moment
