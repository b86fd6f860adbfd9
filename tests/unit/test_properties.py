"""Properties that hold for any input, checked with Hypothesis."""

from __future__ import annotations

import gzip
import json
from datetime import datetime, timedelta, timezone
from functools import reduce
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from nudge.domain.errors import InvalidRequest
from nudge.domain.intake import ROUTE_TYPES, Event, Intake, Limits
from nudge.domain.person import PersonId
from nudge.domain.profile import Profile, fold
from nudge.domain.segment import MESSAGE_TYPES
from nudge.domain.timefmt import iso
from nudge.entrypoints.http_errors import status_of

from tests.unit.builders import NOW, event, parse

BOUNDED = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LIMITS = Limits()
ROUTES = [*ROUTE_TYPES, "m", "unknown"]

# Text as a client may legally send it: any Unicode scalar except NUL.
clean_text = st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), max_size=30)
# Text as a hostile client may send it: NUL, lone surrogates and all.
any_text = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=30)


def json_values(depth: int, text: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    """JSON values nested at most ``depth`` levels, with finite numbers only."""
    leaves = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**63), max_value=2**63),
        st.floats(allow_nan=False, allow_infinity=False),
        text,
    )
    if depth == 0:
        return leaves
    inner = json_values(depth - 1, text)
    return st.one_of(
        leaves,
        st.lists(inner, max_size=3),
        st.dictionaries(text, inner, max_size=3),
    )


def offsets() -> st.SearchStrategy[timezone]:
    span = timedelta(hours=23, minutes=59)
    return st.builds(timezone, st.timedeltas(min_value=-span, max_value=span))


# Any date-time from year 1 to 9999 in any offset, near-now ones, and junk.
timestamps = st.one_of(
    st.datetimes(timezones=offsets()).map(lambda moment: moment.isoformat()),
    st.timedeltas(min_value=-timedelta(days=60), max_value=timedelta(days=60)).map(
        lambda shift: iso(NOW + shift)
    ),
    any_text,
    st.integers(),
)
ids = st.one_of(any_text, st.integers(), st.booleans(), st.none())
jsonish = json_values(3, any_text)

messages = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from([*MESSAGE_TYPES, "purchase"]),
        "userId": ids,
        "anonymousId": ids,
        "messageId": ids,
        "event": st.one_of(any_text, jsonish),
        "name": any_text,
        "groupId": ids,
        "previousId": ids,
        "timestamp": timestamps,
        "originalTimestamp": timestamps,
        "sentAt": timestamps,
        "properties": jsonish,
        "traits": jsonish,
        "context": jsonish,
        "integrations": jsonish,
        "writeKey": st.one_of(any_text, st.integers()),
    },
)
batches = st.fixed_dictionaries(
    {"batch": st.one_of(st.lists(messages, max_size=4), jsonish)},
    optional={"sentAt": timestamps, "context": jsonish, "integrations": jsonish},
)


def outcome_of(raw: bytes, route: str, content_encoding: str | None) -> Intake | InvalidRequest:
    """What parse_request returned, or the InvalidRequest it raised; anything else escapes."""
    try:
        return parse(raw, route=route, content_encoding=content_encoding)
    except InvalidRequest as error:
        return error


@BOUNDED
@given(
    raw=st.one_of(st.binary(max_size=2048), st.binary(max_size=2048).map(gzip.compress)),
    route=st.sampled_from(ROUTES),
    content_encoding=st.sampled_from([None, "gzip", "identity", "br"]),
)
def test_arbitrary_bytes_raise_only_invalid_request(
    raw: bytes, route: str, content_encoding: str | None
) -> None:
    """Whatever the bytes, route and encoding, intake returns an Intake or raises InvalidRequest."""
    # given
    request = (raw, route, content_encoding)

    # when
    outcome = outcome_of(*request)

    # then
    if isinstance(outcome, InvalidRequest):
        assert status_of(outcome) in {400, 404, 413}
        assert isinstance(outcome.field, str)
    else:
        assert isinstance(outcome, Intake)


@BOUNDED
@given(payload=st.one_of(messages, batches, jsonish), route=st.sampled_from(ROUTES))
def test_arbitrary_json_raises_only_invalid_request(payload: Any, route: str) -> None:
    """JSON shaped like Segment messages but with any values yields an Intake or InvalidRequest."""
    # given
    raw = json.dumps(payload).encode()

    # when
    outcome = outcome_of(raw, route, None)

    # then
    if isinstance(outcome, InvalidRequest):
        assert status_of(outcome) in {400, 404, 413}
        assert outcome.field
    else:
        assert all(isinstance(accepted, Event) for accepted in outcome.events)


@BOUNDED
@given(
    name=st.text(
        alphabet=st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=80
    ),
    properties=st.dictionaries(clean_text, json_values(3, clean_text), max_size=5),
    ascii_only=st.booleans(),
)
def test_a_valid_track_round_trips_its_name_and_properties(
    name: str, properties: dict[str, Any], ascii_only: bool
) -> None:
    """Any valid track message is stored with its event name and properties unchanged."""
    # given
    raw = json.dumps(
        {"userId": "user-1", "event": name, "properties": properties}, ensure_ascii=ascii_only
    ).encode()
    assume(len(raw) <= LIMITS.max_message_bytes)

    # when
    (accepted,) = parse(raw).events

    # then
    assert accepted.body["event"] == name
    assert accepted.body["properties"] == properties


@BOUNDED
@given(
    properties=st.dictionaries(clean_text, json_values(3, clean_text), max_size=6),
)
def test_gzip_is_transparent(properties: dict[str, Any]) -> None:
    """A gzip body yields exactly the events its plain form yields."""
    # given
    raw = json.dumps({"userId": "user-1", "event": "e", "properties": properties}).encode()
    assume(len(raw) <= LIMITS.max_message_bytes)

    # when
    plain = parse(raw).events
    compressed = parse(gzip.compress(raw), content_encoding="gzip").events

    # then
    assert compressed == plain


@BOUNDED
@given(
    original=st.timedeltas(min_value=-timedelta(days=90), max_value=timedelta(days=90)),
    sent=st.one_of(
        st.none(), st.timedeltas(min_value=-timedelta(days=90), max_value=timedelta(days=90))
    ),
)
def test_accepted_timestamps_are_within_the_skew_bounds(
    original: timedelta, sent: timedelta | None
) -> None:
    """Every accepted event's corrected timestamp lies within the configured skew bounds."""
    # given
    message: dict[str, Any] = {"userId": "u", "event": "e", "timestamp": iso(NOW + original)}
    if sent is not None:
        message["sentAt"] = iso(NOW + sent)

    # when
    outcome = outcome_of(json.dumps(message).encode(), "track", None)

    # then
    if isinstance(outcome, InvalidRequest):
        assert outcome.field == "timestamp"
    else:
        (accepted,) = outcome.events
        assert NOW - LIMITS.max_past <= accepted.timestamp <= NOW + LIMITS.max_future


@BOUNDED
@given(
    timestamp=st.datetimes(timezones=offsets()),
    sent_at=st.one_of(st.none(), st.datetimes(timezones=offsets())),
)
def test_any_calendar_date_time_is_accepted_or_refused_by_field(
    timestamp: datetime, sent_at: datetime | None
) -> None:
    """Date-times anywhere from year 1 to 9999, in any offset, never crash the correction."""
    # given
    message: dict[str, Any] = {"userId": "u", "event": "e", "timestamp": timestamp.isoformat()}
    if sent_at is not None:
        message["sentAt"] = sent_at.isoformat()

    # when
    outcome = outcome_of(json.dumps(message).encode(), "track", None)

    # then
    if isinstance(outcome, InvalidRequest):
        assert outcome.field == "timestamp"
    else:
        assert outcome.events[0].timestamp.tzinfo is not None


@BOUNDED
@given(
    size=st.integers(min_value=1, max_value=20),
    data=st.data(),
)
def test_a_batch_is_rejected_at_its_first_bad_item(size: int, data: st.DataObject) -> None:
    """In a batch of valid items with one invalid, the error names that item's index."""
    # given
    bad_index = data.draw(st.integers(min_value=0, max_value=size - 1))
    batch: list[dict[str, Any]] = [
        {"type": "track", "userId": f"user-{index}", "event": "e"} for index in range(size)
    ]
    del batch[bad_index]["event"]

    # when
    outcome = outcome_of(json.dumps({"batch": batch}).encode(), "batch", None)

    # then
    assert isinstance(outcome, InvalidRequest)
    assert outcome.field == f"batch[{bad_index}].event"


names = st.sampled_from(["Product Viewed", "Cart Updated", "Order Completed", "Signed Up"])
profile_events = st.lists(
    st.builds(
        lambda kind, minutes, name: event(kind, minutes=minutes, name=name),
        st.sampled_from(["track", "page", "screen", "identify"]),
        st.integers(min_value=0, max_value=24 * 60),
        names,
    ),
    max_size=30,
)


@BOUNDED
@given(orders=profile_events.flatmap(lambda evs: st.tuples(st.just(evs), st.permutations(evs))))
def test_folding_in_any_order_gives_the_same_counts(
    orders: tuple[list[Event], list[Event]],
) -> None:
    """Totals, per-name counts and the first/last seen times do not depend on arrival order."""
    # given
    in_order, shuffled = orders

    # when
    one = reduce(fold, in_order, Profile(person=PersonId.user("user-1")))
    other = reduce(fold, shuffled, Profile(person=PersonId.user("user-1")))

    # then
    assert (one.events, one.pages, one.event_counts) == (
        other.events,
        other.pages,
        other.event_counts,
    )
    assert (one.first_seen, one.last_seen) == (other.first_seen, other.last_seen)
