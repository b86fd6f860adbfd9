"""A prediction's features for one person at one moment, from their profile facts and
their recent events: the same numbers at training (as of a cut-off) and when scoring.

Pure: ``now`` and the history are passed in. Missing values (a fact the profile does not
have yet, such as the last finished session of someone in their first) are ``None``; the
trees send them the way training learnt.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from nudge.domain.predictions.model import COUNTS_PREFIX, CountFeature, Feature

__all__ = ["History", "feature_values"]

# The person's events before ``now``, oldest first: (when, name as conditions name it).
History = Sequence[tuple[datetime, Any]]
_MOMENTS = ("first_seen", "last_seen")


def feature_values(
    features: Sequence[Feature], facts: Mapping[str, Any], history: History, now: datetime
) -> list[float | None]:
    return [_value(feature, facts, history, now) for feature in features]


def _value(
    feature: Feature, facts: Mapping[str, Any], history: History, now: datetime
) -> float | None:
    if isinstance(feature, CountFeature):
        since = now - feature.within
        return float(
            sum(1 for moment, name in history if since <= moment < now and name == feature.count)
        )
    if feature.startswith(COUNTS_PREFIX):
        return float(facts.get("event_counts", {}).get(feature[len(COUNTS_PREFIX) :], 0))
    name = feature.removeprefix("profile.")
    value = facts.get(name)
    if name in _MOMENTS:
        # A moment means how long before now it was, in days: a date itself predicts nothing.
        return (now - datetime.fromisoformat(value)).total_seconds() / 86400 if value else None
    return None if value is None else float(value)
