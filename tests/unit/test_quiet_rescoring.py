"""Scores that move while a person is quiet, on the in-memory fakes: the time since the
last activity is a feature (churn leans on it), so the hourly sweep re-scores the people
whose quiet spell has just passed a boundary the trees split at, and a score trigger fires
when the re-scored score rises through its threshold, as on an event.

The model is written by hand: one tree, more than three days quiet is a score of 88, less
is 12. At an event the time since the last activity is 0, so every event scores 12."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from typing import Any

from nudge.domain.predictions.bounds import recency_stretches
from nudge.domain.predictions.live import LivePrediction, Scoring
from nudge.domain.predictions.loader import parse_prediction
from nudge.domain.predictions.score import ScoreModel, parse_model
from nudge.domain.timefmt import iso
from nudge.domain.triggers.engine import rescored_hours
from nudge.domain.triggers.loader import parse_trigger
from nudge.domain.triggers.scores import moved_across
from nudge.service.backtest import backtest

from tests.conftest import REPO
from tests.unit.builders import parse
from tests.unit.test_score_triggers import (
    ADA,
    ARN,
    CHURN_RISK,
    HOUR,
    NOW,
    World,
    _visit,
    _world,
)
from tests.unit.test_score_triggers import MODEL as SESSIONS_MODEL
from tests.unit.test_score_triggers import PREDICTION as SESSIONS_PREDICTION

DAY = timedelta(days=1)
PREDICTION = SESSIONS_PREDICTION.replace(
    "  - profile.sessions", "  - profile.days_inactive\n  - count: page\n    within: 7d"
)
_ONE_TREE: dict[str, Any] = SESSIONS_MODEL["trees"][0]  # type: ignore[index]
MODEL = {
    **SESSIONS_MODEL,
    "features": ["profile.days_inactive", "count(page, 7d)"],
    # Over 2.9 days quiet (69.6 hours, re-scored at 70) 88, else 12.
    "trees": [{**_ONE_TREE, "threshold": [2.9, 0.0, 0.0], "missing_left": [True, False, False]}],
}
# ada's second visit (the score trigger tests' visit 2) is in the 12:00 hour; the sweep that
# reads it at 70 hours is the one at 11:00 three days on (its hour is 71 hours earlier).
LAST_VISIT = 2
LAST_VISIT_HOUR = NOW + LAST_VISIT * HOUR
CROSSING_SWEEP = LAST_VISIT_HOUR + 71 * HOUR


def _scoring() -> Scoring:
    prediction, problems = parse_prediction(PREDICTION, "churn.yaml")
    assert problems == []
    assert prediction is not None
    return Scoring((LivePrediction.of(prediction, parse_model(json.dumps(MODEL))),))


def _visit_number(at: datetime) -> int:
    """The score trigger tests' visits are an hour apart from NOW: the number of ``at``'s."""
    return (at - NOW) // HOUR


def _two_sessions(world: World) -> None:
    """In churn's audience (two sessions), last seen in LAST_VISIT_HOUR, scored 12."""
    world.visit(1)
    world.visit(LAST_VISIT)


def _sent(world: World) -> list[tuple[str, str | None]]:
    return [(message.trigger, message.occurrence) for message in world.sent()]


# ---- when the sweep re-scores ---------------------------------------------------------------


def test_the_boundaries_are_the_recency_splits_to_the_hour_and_the_count_windows() -> None:
    """2.9 days (69.6 hours) is re-scored at 70 hours; the 7-day count window at 168."""
    # given
    scoring = _scoring()

    # when
    boundaries = scoring.quiet_boundaries({"churn": {70}})

    # then
    assert boundaries == (70 * HOUR, 7 * DAY)


def test_a_prediction_no_score_trigger_watches_has_no_boundaries() -> None:
    """Only a crossing needs the score kept fresh while quiet: nothing else is re-scored."""
    # given
    scoring = _scoring()

    # when
    boundaries = scoring.quiet_boundaries({})

    # then
    assert boundaries == ()


def test_a_split_no_score_can_cross_a_watched_threshold_at_is_not_swept() -> None:
    """Watching 95: 12 before 2.9 days and 88 after are both below it, for anyone, so
    passing 2.9 days changes no crossing; only the count window is left."""
    # given
    scoring = _scoring()

    # when
    boundaries = scoring.quiet_boundaries({"churn": {95}})

    # then
    assert boundaries == (7 * DAY,)


def test_consecutive_sweeps_read_consecutive_hours_per_boundary() -> None:
    """The sweep at 11:xx reads the hour 71 hours before for a 70-hour boundary."""
    # given
    at = CROSSING_SWEEP + 5 * 60 * timedelta(seconds=1)

    # when
    hours = [rescored_hours([70 * HOUR], at + n * HOUR) for n in range(3)]

    # then
    assert hours == [[LAST_VISIT_HOUR], [LAST_VISIT_HOUR + HOUR], [LAST_VISIT_HOUR + 2 * HOUR]]


def test_every_score_of_the_shipped_model_lies_within_its_stretch_bounds() -> None:
    """2,000 random rows of the shipped churn model: each score is between the lowest and
    the highest its stretch of days_inactive allows, whatever the other features are."""
    # given
    model = parse_model((REPO / "models" / "churn.json").read_text(encoding="utf-8"))
    assert isinstance(model, ScoreModel)
    recency = {model.features.index("profile.days_inactive")}
    stretches = recency_stretches(model, recency)
    chooser = random.Random(7)

    # when
    outside = []
    for _ in range(2000):
        row: list[float | None] = [chooser.uniform(0, 60) for _ in model.features]
        row[0] = chooser.choice([0.0, chooser.uniform(0, 40)])
        score = model.score(row)
        stretch = [s for s in stretches if s.after < row[0]][-1]  # type: ignore[operator]
        if not stretch.lowest <= score <= stretch.highest:
            outside.append((row[0], score, stretch))

    # then
    assert model.features[0] == "profile.days_inactive"
    assert outside == []


# ---- the crossing ---------------------------------------------------------------------------


def test_a_quiet_person_whose_score_rises_through_70_is_sent_churn_risk() -> None:
    """Three days quiet, ada's score goes from 12 to 88: the sweep fires churn_risk once."""
    # given
    world = _world(_scoring())
    _two_sessions(world)

    # when
    decisions = world.service.sweep(CROSSING_SWEEP, ARN)

    # then
    assert [(d.trigger, d.outcome) for d in decisions] == [("churn_risk", "fired")]
    assert "churn score crossed 70 while quiet" in decisions[0].reason
    assert _sent(world) == [("churn_risk", f"score@{CROSSING_SWEEP.isoformat()}")]


def test_the_new_score_is_kept_on_the_profile() -> None:
    """The profile the sweep re-scored holds 88, so a later crossing is judged from there."""
    # given
    world = _world(_scoring())
    _two_sessions(world)

    # when
    world.service.sweep(CROSSING_SWEEP, ARN)

    # then
    assert world.people.profiles[ADA].scores == {"churn": 88}


def test_a_retried_sweep_sends_nothing_more() -> None:
    """The Scheduler retries a failed sweep with the same time: no second message."""
    # given
    world = _world(_scoring())
    _two_sessions(world)
    world.service.sweep(CROSSING_SWEEP, ARN)

    # when
    world.service.sweep(CROSSING_SWEEP, ARN)

    # then
    assert len(world.sent()) == 1


def test_a_sweep_that_failed_before_keeping_the_score_is_retried_without_a_second_send() -> None:
    """Fired, then the profile's write was lost: the retry finds 12 stored, crosses
    again, and the ledger dedupes the same occurrence."""
    # given
    world = _world(_scoring())
    _two_sessions(world)
    stored = world.people.profiles[ADA]
    world.service.sweep(CROSSING_SWEEP, ARN)
    world.people.profiles[ADA] = stored  # as if the sweep had crashed before its write

    # when
    world.service.sweep(CROSSING_SWEEP, ARN)

    # then
    assert len(world.sent()) == 1
    assert world.people.profiles[ADA].scores == {"churn": 88}


def test_someone_who_came_back_is_not_re_scored_from_their_old_hour() -> None:
    """A visit on day 2 files ada under a later hour: the sweep of her old hour skips her."""
    # given
    world = _world(_scoring())
    _two_sessions(world)
    world.visit(_visit_number(LAST_VISIT_HOUR + 2 * DAY))

    # when
    decisions = world.service.sweep(CROSSING_SWEEP, ARN)

    # then
    assert decisions == []
    assert world.sent() == []


def test_someone_outside_the_audience_is_not_re_scored() -> None:
    """One session is not churn's audience: quiet or not, no score and no message."""
    # given
    world = _world(_scoring())
    world.visit(LAST_VISIT)

    # when
    decisions = world.service.sweep(CROSSING_SWEEP, ARN)

    # then
    assert decisions == []
    assert world.people.profiles[ADA].scores == {}


def test_a_sweep_before_the_boundary_leaves_the_stored_score() -> None:
    """An hour earlier the sweep reads the hour before ada's: her 12 stays as it is."""
    # given
    world = _world(_scoring())
    _two_sessions(world)

    # when
    decisions = world.service.sweep(CROSSING_SWEEP - HOUR, ARN)

    # then
    assert decisions == []
    assert world.people.profiles[ADA].scores == {"churn": 12}


def test_coming_back_scores_low_again_and_the_next_quiet_spell_fires_again() -> None:
    """Back a week later (12 again at the event), then quiet three days: a new crossing."""
    # given
    world = _world(_scoring())
    _two_sessions(world)
    world.service.sweep(CROSSING_SWEEP, ARN)
    back = LAST_VISIT_HOUR + 7 * DAY
    world.visit(_visit_number(back))

    # when
    world.service.sweep(back + 71 * HOUR, ARN)

    # then
    assert world.people.profiles[ADA].scores == {"churn": 88}
    assert [m.occurrence for m in world.sent()] == [
        f"score@{CROSSING_SWEEP.isoformat()}",
        f"score@{(back + 71 * HOUR).isoformat()}",
    ]


# ---- writes only when a side changes --------------------------------------------------------


def test_a_score_that_moves_without_crossing_a_watched_threshold_is_not_rewritten() -> None:
    """12 to 40 changes nothing a trigger decides on: the profile keeps 12."""
    # given
    before, after = {"churn": 12}, {"churn": 40}

    # when
    moved = moved_across(before, after, {"churn": frozenset({70})})

    # then
    assert moved is False


def test_a_first_score_above_the_threshold_is_a_move() -> None:
    """No score stored counts as below: 88 is on the other side of 70."""
    # given
    before: dict[str, int] = {}

    # when
    moved = moved_across(before, {"churn": 88}, {"churn": frozenset({70})})

    # then
    assert moved is True


# ---- the backtest decides the same ----------------------------------------------------------


def test_the_backtest_fires_what_the_sweep_fires() -> None:
    """The same two visits replayed until after the crossing sweep: the same one fire."""
    # given
    world = _world(_scoring())
    _two_sessions(world)
    world.service.sweep(CROSSING_SWEEP, ARN)
    events = [
        parse({"batch": [_visit(n)]}, route="batch", received_at=NOW + n * HOUR).events[0]
        for n in (1, LAST_VISIT)
    ]
    trigger, _ = parse_trigger(CHURN_RISK, "churn_risk.yaml")
    assert trigger is not None

    # when
    report = backtest(events, [trigger], scoring=_scoring(), until=CROSSING_SWEEP + HOUR)

    # then
    replayed = [(fire.trigger, fire.occurrence) for fire in report.fired]
    assert replayed == _sent(world) != []


def test_a_swept_score_is_kept_as_of_the_sweep_until_the_next_event() -> None:
    """The sweep's 88 says when it was given (explain works it out then); ada's next visit
    scores her afresh, as of that visit."""
    # given
    world = _world(_scoring())
    _two_sessions(world)
    world.service.sweep(CROSSING_SWEEP, ARN)
    swept = world.people.profiles[ADA].scored_at

    # when
    world.visit(_visit_number(CROSSING_SWEEP + HOUR))

    # then
    assert swept == iso(CROSSING_SWEEP)
    assert world.people.profiles[ADA].scored_at is None
