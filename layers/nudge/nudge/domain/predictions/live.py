"""Scores on every event: each loaded prediction scores the person just folded, when they
are in its audience. Pure: the profile, the facts and the history come in; the scores, the
model versions and why a prediction scored nothing go out. The live path (Evaluate) and the
backtest call the same ``rescore``, so they decide on the same numbers.

The trees are walked (``ScoreModel.probability``), not compiled: compiling 200 trees into
one function takes 0.3-0.8 s, all of it on a cold start, for a saving of about 0.1 ms a
scored event (docs/predictions.md, "Scoring live").
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from nudge.domain.predictions.bounds import Stretch, recency_stretches
from nudge.domain.predictions.features import feature_values
from nudge.domain.predictions.model import CountFeature, Prediction, feature_name
from nudge.domain.predictions.score import ModelProblem, ScoreModel
from nudge.domain.profile import Profile
from nudge.domain.triggers.conditions import Facts, event_name
from nudge.domain.triggers.explain import why_not

if TYPE_CHECKING:
    from nudge.domain.predictions.contributions import Explained

__all__ = ["LivePrediction", "Rescored", "Scoring", "explain_score", "rescore", "scored"]


@dataclass(frozen=True)
class LivePrediction:
    """A prediction as Evaluate runs it: its definition and its model, or why it has none."""

    prediction: Prediction
    model: ScoreModel | ModelProblem

    @classmethod
    def of(cls, prediction: Prediction, found: ScoreModel | ModelProblem) -> LivePrediction:
        if isinstance(found, ScoreModel):
            names = [feature_name(feature) for feature in prediction.feature_list]
            found = found.mismatch(prediction.id, names) or found
        return cls(prediction, found)


@dataclass(frozen=True)
class Scoring:
    """Every prediction scored live."""

    predictions: tuple[LivePrediction, ...] = ()

    @cached_property
    def window(self) -> timedelta:
        """How far back the features' event counts look: the history a score needs."""
        return max(
            (
                feature.within
                for live in self.predictions
                if isinstance(live.model, ScoreModel)  # one with no model reads nothing
                for feature in live.prediction.feature_list
                if isinstance(feature, CountFeature)
            ),
            default=timedelta(0),
        )

    def wanted(self, facts: Facts) -> bool:
        """Whether any prediction that can score holds this person in its audience: only
        then does Evaluate read their history further back than the triggers need. Judged
        before that read, on facts without history (a count in an audience sees none here;
        ``rescore`` judges it again with the history)."""
        return any(
            isinstance(live.model, ScoreModel)
            and why_not([live.prediction.audience], facts) is None
            for live in self.predictions
        )

    def quiet_boundaries(self, thresholds: Mapping[str, Set[int]]) -> tuple[timedelta, ...]:
        """How long after a person's last activity a score can move across one of
        ``thresholds`` (by prediction: those its score triggers watch) with no event: the
        recency splits where the trees' bounds say it can (``recency_stretches``), and the
        count windows (the last event leaves a window when the window has passed). Between
        two of these the side of every threshold stays as it was (only the age feature
        drifts, read afresh whenever the sweep re-scores). Every boundary costs the sweep an
        index read an hour, so they are kept to the hour: two in the same hour are one."""
        found: set[timedelta] = set()
        for live in self.predictions:
            watched = thresholds.get(live.prediction.id)
            if not watched or not isinstance(live.model, ScoreModel):
                continue
            found.update(_moving_splits(live.model, watched))
            found.update(
                feature.within
                for feature in live.prediction.feature_list
                if isinstance(feature, CountFeature)
            )
        return tuple(sorted({_to_hour(boundary) for boundary in found if boundary > timedelta(0)}))

    @property
    def problems(self) -> list[str]:
        return [
            f"prediction {live.prediction.id}: {live.model}"
            for live in self.predictions
            if isinstance(live.model, ModelProblem)
        ]


@dataclass(frozen=True)
class Rescored:
    """A person's scores after a rescore, which model gave each, and why any is missing."""

    scores: dict[str, int]  # prediction id -> 0-100
    models: dict[str, str]  # prediction id -> the version of the model that scored it
    unscored: dict[str, str]  # prediction id -> why it scored nothing this time


def rescore(scoring: Scoring, facts: Facts) -> Rescored:
    """The person's scores as of ``facts.now``: ``facts.profile`` is the folded profile's
    facts, ``facts.history`` their events before now, oldest first. A prediction that
    cannot score (no model, or the person is outside its audience) has no score."""
    scores: dict[str, int] = {}
    models: dict[str, str] = {}
    unscored: dict[str, str] = {}
    history: list[tuple[datetime, Any]] | None = None
    for live in scoring.predictions:
        prediction, model = live.prediction, live.model
        if isinstance(model, ModelProblem):
            unscored[prediction.id] = f"{prediction.id} has no model: {model}"
            continue
        outside = why_not([prediction.audience], facts)
        if outside is not None:
            unscored[prediction.id] = f"not in {prediction.id}'s audience: {outside}"
            continue
        if history is None:
            history = _moments(facts.history, facts.now - scoring.window)
        row = feature_values(prediction.feature_list, facts.profile, history, facts.now)
        scores[prediction.id] = round(100 * model.live_probability(row))
        models[prediction.id] = model_version(model)
    return Rescored(scores, models, unscored)


def scored(
    scoring: Scoring, before: Profile, folded: Profile, facts: Facts
) -> tuple[Profile, Facts]:
    """The folded profile with its new scores, and the facts the triggers decide on: the
    scores after the event in ``profile.scores``, the ones before it beside them. Shared
    with the backtest, so both decide on the same numbers."""
    rescored = rescore(scoring, facts)
    folded = replace(folded, scores=rescored.scores, score_models=rescored.models, scored_at=None)
    facts = replace(
        facts,
        profile=folded.facts(facts.now),
        scores_before=before.scores,
        unscored=rescored.unscored,
    )
    return folded, facts


def explain_score(
    scoring: Scoring,
    prediction_id: str,
    scored_by: str | None,
    profile: Mapping[str, Any],
    history: Sequence[Mapping[str, Any]],
    now: datetime,
) -> Explained | ModelProblem:
    """The contributions behind a kept score: its features worked out again as ``rescore``
    did at ``now`` (when the profile was folded and scored), from the profile's facts as of
    then and the events before then, and taken apart by the model that gave the score. Any
    other model would explain a score the person was never given, so a retrained model
    explains nothing until the person's next event scores them with it."""
    live = next((p for p in scoring.predictions if p.prediction.id == prediction_id), None)
    if live is None:
        return ModelProblem(f"no prediction {prediction_id!r} is loaded here")
    model = live.model
    if isinstance(model, ModelProblem):
        return ModelProblem(f"{prediction_id} has no model here: {model}")
    if scored_by != model_version(model):
        return ModelProblem(
            f"the score was given by model {scored_by}, and the model loaded now is"
            f" {model_version(model)}: the person's next event scores them with it"
        )
    # Only explain takes a score apart: Evaluate, which imports this module, never loads it.
    from nudge.domain.predictions.contributions import explained

    moments = _moments(history, now - scoring.window)
    return explained(model, feature_values(live.prediction.feature_list, profile, moments, now))


def model_version(model: ScoreModel) -> str:
    """When the model was trained, to the minute in UTC (20261205T2136Z): what tells one
    artefact of a prediction from the next, in few bytes (it is kept on every profile)."""
    trained = model.about.get("trained")
    at = trained.get("at") if isinstance(trained, Mapping) else None
    try:
        moment = datetime.fromisoformat(at) if isinstance(at, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        return "?"
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%MZ")


# Features that measure the time since the person's last activity, in days.
RECENCY = frozenset({"profile.days_inactive", "profile.last_seen"})


def _moving_splits(model: ScoreModel, watched: Set[int]) -> set[timedelta]:
    """The recency splits past which a score may land on the other side of a watched
    threshold: leaving a stretch where everyone is below it (or everyone at or above it)
    for one where everyone is too changes no crossing, and needs no re-score."""
    columns = {index for index, name in enumerate(model.features) if name in RECENCY}
    stretches = recency_stretches(model, columns)
    return {
        timedelta(days=current.after)
        for previous, current in itertools.pairwise(stretches)
        if any(not _same_side(previous, current, threshold) for threshold in watched)
    }


def _same_side(first: Stretch, second: Stretch, threshold: int) -> bool:
    below = first.highest < threshold and second.highest < threshold
    above = first.lowest >= threshold and second.lowest >= threshold
    return below or above


def _to_hour(boundary: timedelta) -> timedelta:
    """Rounded up: by then the person has passed the threshold itself."""
    return -(-boundary // timedelta(hours=1)) * timedelta(hours=1)


def _moments(events: Sequence[Mapping[str, Any]], since: datetime) -> list[tuple[datetime, Any]]:
    """The history as features count it: (when, name), oldest first, back to ``since`` (no
    feature counts further back). Walked from the newest, so a long history (the backtest
    keeps all of a person's events) costs only its last window."""
    found: list[tuple[datetime, Any]] = []
    for event in reversed(events):
        value = event.get("timestamp")
        try:
            moment = datetime.fromisoformat(value) if isinstance(value, str) else None
        except ValueError:
            moment = None
        if moment is None:
            continue
        if moment < since:
            break
        found.append((moment, event_name(event)))
    found.reverse()
    return found
