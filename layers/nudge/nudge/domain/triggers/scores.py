"""``when: {score: churn, crosses: 70}``: whether an event made a prediction's score rise
through a threshold. Pure: the score after the event is ``profile.scores`` in the facts,
the score before it ``Facts.scores_before`` (the profile before the fold)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from nudge.domain.triggers.conditions import Facts
from nudge.domain.triggers.model import ScoreCross, Trigger

__all__ = [
    "crossed",
    "crossing_thresholds",
    "moved_across",
    "not_crossed",
    "score_ids",
    "uses_scores",
]


def score_ids(trigger: Trigger) -> set[str]:
    """The predictions a trigger reads: its ``when: {score}`` and any ``profile.scores.<id>``
    path in its conditions."""
    ids = {trigger.when.score} if isinstance(trigger.when, ScoreCross) else set()
    written = trigger.model_dump_json(by_alias=True, exclude_unset=True)
    ids.update(_SCORE_PATH.findall(written))
    return ids


def uses_scores(trigger: Trigger) -> bool:
    return bool(score_ids(trigger))


_SCORE_PATH = re.compile(r'"profile\.scores\.([a-z0-9][a-z0-9_-]*)')


def not_crossed(when: ScoreCross, facts: Facts) -> str | None:
    """None when the score crossed on this event; otherwise why not, with the numbers."""
    name, threshold = when.score, when.crosses
    after = (facts.profile.get("scores") or {}).get(name)
    if after is None:
        return facts.unscored.get(name) or f"no {name} score"
    if after < threshold:
        return f"{name} score {after} is below {threshold}"
    before = facts.scores_before.get(name)
    if before is not None and before >= threshold:
        return f"{name} score {after} was already at or above {threshold} ({before} before)"
    return None


def crossed(when: ScoreCross) -> str:
    """A crossing's reason, as fired decisions give it."""
    return f"{when.score} score crossed {when.crosses}"


def crossing_thresholds(triggers: Iterable[Trigger]) -> dict[str, frozenset[int]]:
    """By prediction, the thresholds score triggers watch it cross."""
    found: dict[str, set[int]] = {}
    for trigger in triggers:
        if isinstance(trigger.when, ScoreCross):
            found.setdefault(trigger.when.score, set()).add(trigger.when.crosses)
    return {prediction: frozenset(values) for prediction, values in found.items()}


def moved_across(
    before: Mapping[str, int],
    after: Mapping[str, int],
    thresholds: Mapping[str, frozenset[int]],
) -> bool:
    """Whether a score moved to the other side of a watched threshold. Crossings are judged
    by side alone (``not_crossed``), so a stored score on the same side of every threshold
    as the new one decides every later crossing the same: the sweep rewrites a quiet
    person's profile only when this holds, not whenever a score moves a point."""
    return any(
        _above(before.get(prediction), threshold) != _above(after.get(prediction), threshold)
        for prediction, watched in thresholds.items()
        for threshold in watched
    )


def _above(score: int | None, threshold: int) -> bool:
    return score is not None and score >= threshold
