"""The hourly inactivity sweep in the engine: which hour a sweep reads, and what it decides."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st
from nudge.domain.person import PersonId
from nudge.domain.triggers.conditions import Facts
from nudge.domain.triggers.engine import (
    SWEEP_EVERY,
    Fire,
    hour_of,
    inactivity_occurrence,
    inactivity_status,
    on_inactive,
    swept_hour,
)
from nudge.domain.triggers.model import Trigger

from tests.unit.builders import NOW

WEEK = timedelta(days=7)
LAST_SEEN = datetime(2026, 11, 1, 10, 25, tzinfo=UTC)
# The sweep that reads LAST_SEEN's hour (10:00) for a 7-day trigger: a week and an hour later.
SWEEP = datetime(2026, 11, 8, 11, 0, tzinfo=UTC)
ADA = PersonId.user("ada")
INACTIVE_CRM = {"all": [{"path": "traits.crm_status", "eq": "inactive"}]}

# Offsets ISO timestamps carry (fixed, so wall-clock and elapsed time agree), half-hours included.
offsets = st.sampled_from(
    [UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=5, minutes=30))]
)
moments = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1), timezones=offsets
)
# Inactivity may last from one hour to 90 days, to the second.
durations = st.integers(min_value=3600, max_value=90 * 86400)


def inactivity_trigger(inactive: Any = "7d", **fields: Any) -> Trigger:
    """An inactivity trigger; keyword arguments add or replace fields."""
    definition: dict[str, Any] = {
        "id": "re_engagement",
        "when": {"inactive": inactive},
        "send": {"channel": "email", "template": "re_engagement"},
        **fields,
    }
    return Trigger.model_validate(definition)


def facts(at: datetime, **traits: Any) -> Facts:
    return Facts(now=at, traits=traits)


# ---- which hour a sweep reads ---------------------------------------------------------


def test_consecutive_sweeps_read_consecutive_hours() -> None:
    """The sweep an hour later reads the hour after the one this sweep read."""
    # given
    trigger = inactivity_trigger()

    # when
    first = swept_hour(trigger, SWEEP)
    second = swept_hour(trigger, SWEEP + SWEEP_EVERY)

    # then
    assert second - first == timedelta(hours=1)


@given(at=moments, seconds=durations)
def test_consecutive_sweeps_read_consecutive_hours_at_any_time(at: datetime, seconds: int) -> None:
    """Whatever the sweep time and the duration, sweeps an hour apart read adjacent hours,
    so no hour is skipped and none is read twice."""
    # given
    trigger = inactivity_trigger(seconds)

    # when
    first = swept_hour(trigger, at)
    second = swept_hour(trigger, at + SWEEP_EVERY)

    # then
    assert second - first == SWEEP_EVERY


@given(at=moments, seconds=durations, into_hour=st.integers(min_value=0, max_value=3599))
def test_everyone_in_the_swept_hour_has_been_quiet_long_enough(
    at: datetime, seconds: int, into_hour: int
) -> None:
    """Anyone last seen in the hour a sweep reads has been quiet for at least the
    trigger's duration at the sweep time."""
    # given
    trigger = inactivity_trigger(seconds)
    hour = swept_hour(trigger, at)
    last_seen = hour + timedelta(seconds=into_hour, microseconds=999_999)

    # when
    quiet = at - last_seen

    # then
    assert quiet >= timedelta(seconds=seconds)


def test_the_swept_hour_is_a_whole_utc_hour() -> None:
    """The hour a sweep reads is named by its UTC start, whatever offset the sweep time has."""
    # given
    trigger = inactivity_trigger()
    at = SWEEP.astimezone(timezone(timedelta(hours=5, minutes=30)))

    # when
    hour = swept_hour(trigger, at)

    # then
    assert hour == datetime(2026, 11, 1, 10, 0, tzinfo=UTC)
    assert hour.utcoffset() == timedelta(0)


def test_a_repeated_sweep_reads_the_same_hour() -> None:
    """A retried sweep (the same scheduled time) reads the hour the first attempt read."""
    # given
    trigger = inactivity_trigger()
    first = swept_hour(trigger, SWEEP)

    # when
    retried = swept_hour(trigger, SWEEP)

    # then
    assert retried == first == hour_of(LAST_SEEN)


# ---- what the sweep decides -------------------------------------------------------------


def test_a_quiet_person_fires_once_per_quiet_spell() -> None:
    """Someone quiet for the whole duration gets one fire, named by the moment the spell
    reached the duration, with no entry event."""
    # given
    trigger = inactivity_trigger()

    # when
    result = on_inactive(trigger, ADA, facts(SWEEP), LAST_SEEN)

    # then
    occurrence = f"inactive@{(LAST_SEEN + WEEK).isoformat()}"
    assert result.actions == [Fire("re_engagement", ADA, occurrence, SWEEP, {})]
    assert [(d.outcome, d.occurrence) for d in result.decisions] == [("fired", occurrence)]


def test_the_occurrence_names_when_the_spell_reached_the_duration() -> None:
    """inactivity_occurrence is ``inactive@`` the last-seen time plus the duration."""
    # given
    trigger = inactivity_trigger("36h")

    # when
    occurrence = inactivity_occurrence(trigger, LAST_SEEN)

    # then
    assert occurrence == "inactive@2026-11-02T22:25:00+00:00"


def test_a_person_who_came_back_is_left_alone() -> None:
    """Someone the index still lists under an old hour but who was seen since (the profile
    says so) gets neither an action nor a decision: their new hour is swept in its turn."""
    # given
    trigger = inactivity_trigger()
    came_back = SWEEP - timedelta(days=2)

    # when
    result = on_inactive(trigger, ADA, facts(SWEEP), came_back)

    # then
    assert result.actions == []
    assert result.decisions == []


def test_a_person_never_seen_is_left_alone() -> None:
    """Without a last-seen time there is no quiet spell to decide."""
    # given
    trigger = inactivity_trigger()

    # when
    result = on_inactive(trigger, ADA, facts(SWEEP), None)

    # then
    assert result.actions == []
    assert result.decisions == []


def test_a_failing_audience_is_not_matched_and_names_the_condition() -> None:
    """A quiet person outside the audience gets no fire, and a not_matched decision that
    says which condition failed and with what value."""
    # given
    trigger = inactivity_trigger(audience=INACTIVE_CRM)

    # when
    result = on_inactive(trigger, ADA, facts(SWEEP, crm_status="active"), LAST_SEEN)

    # then
    assert result.actions == []
    (decision,) = result.decisions
    assert decision.outcome == "not_matched"
    assert decision.occurrence == inactivity_occurrence(trigger, LAST_SEEN)
    assert 'traits.crm_status eq "inactive" failed: found "active"' in decision.reason


def test_a_matching_audience_fires() -> None:
    """A quiet person inside the audience is fired for."""
    # given
    trigger = inactivity_trigger(audience=INACTIVE_CRM)

    # when
    result = on_inactive(trigger, ADA, facts(SWEEP, crm_status="inactive"), LAST_SEEN)

    # then
    assert [type(action) for action in result.actions] == [Fire]
    assert [decision.outcome for decision in result.decisions] == ["fired"]


# ---- where a person stands before the sweep ----------------------------------------------


def test_before_the_sweep_the_status_is_pending_with_the_due_time() -> None:
    """Still within the spell, explain is told the trigger is pending, and when the spell
    reaches the duration."""
    # given
    trigger = inactivity_trigger()
    now = LAST_SEEN + timedelta(days=3)

    # when
    status = inactivity_status(trigger, ADA, LAST_SEEN, now)

    # then
    assert status is not None
    assert status.outcome == "pending"
    assert status.at == now
    assert status.occurrence == inactivity_occurrence(trigger, LAST_SEEN)
    assert (LAST_SEEN + WEEK).isoformat() in status.reason


def test_after_the_sweep_the_status_is_none() -> None:
    """Once the sweep has decided, there is nothing pending to report."""
    # given
    trigger = inactivity_trigger()
    long_after = SWEEP + timedelta(days=1)

    # when
    status = inactivity_status(trigger, ADA, LAST_SEEN, long_after)

    # then
    assert status is None


def test_without_a_last_seen_time_there_is_no_status() -> None:
    """Someone never seen has no spell to report."""
    # given
    trigger = inactivity_trigger()

    # when
    status = inactivity_status(trigger, ADA, None, NOW)

    # then
    assert status is None


@given(last_seen=moments, seconds=durations)
def test_the_status_is_pending_until_the_sweep_that_decides(
    last_seen: datetime, seconds: int
) -> None:
    """Up to the first hourly sweep that reads the person's hour the status is pending;
    by an hour after that sweep it is None."""
    # given
    trigger = inactivity_trigger(seconds)
    earliest = hour_of(last_seen) + timedelta(seconds=seconds) + SWEEP_EVERY
    deciding_sweep = hour_of(earliest)  # sweeps run at the top of each hour
    if deciding_sweep < earliest:
        deciding_sweep += SWEEP_EVERY

    # when
    before = inactivity_status(trigger, ADA, last_seen, deciding_sweep - timedelta(seconds=1))
    after = inactivity_status(trigger, ADA, last_seen, deciding_sweep + SWEEP_EVERY)

    # then
    assert swept_hour(trigger, deciding_sweep - SWEEP_EVERY) < hour_of(last_seen)
    assert swept_hour(trigger, deciding_sweep) == hour_of(last_seen)
    assert before is not None
    assert before.outcome == "pending"
    assert after is None


def test_a_sweep_time_in_a_daylight_saving_zone_reads_the_same_hour_as_in_utc():
    """Across a DST change, the swept hour counts elapsed time, not wall-clock time."""
    # given a sweep a week after the US clocks went forward (2026-03-08)
    trigger = inactivity_trigger("7d")
    local = datetime(2026, 3, 9, 12, 0, tzinfo=ZoneInfo("America/New_York"))
    # when
    hour = swept_hour(trigger, local)
    # then
    assert hour == swept_hour(trigger, local.astimezone(UTC))
    assert hour == datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
