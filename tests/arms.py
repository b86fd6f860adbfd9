"""Shoppers picked by the experiment arm the shipped triggers put them in.

A trigger running an experiment assigns each person an arm by a stable hash
(nudge.domain.triggers.experiment.assign), so a test that means "a shopper who gets the 24 h
email" names one the hash puts in ``h24``: same id, same arm, on every run and every path
(the engine, the backtest, the local stack).
"""

from __future__ import annotations

import itertools
from functools import cache

from nudge.domain.person import PersonId
from nudge.domain.triggers.experiment import HOLDOUT, Experiment, assign
from nudge.domain.triggers.loader import load_triggers
from nudge.domain.triggers.model import Trigger

from tests.conftest import REPO

__all__ = ["arm_of", "shopper_in", "user_in"]


@cache
def _experiment(trigger: str) -> Experiment:
    loaded = load_triggers(REPO / "triggers")
    assert loaded.problems == [], loaded.problems
    (shipped,) = [each for each in loaded.triggers if each.id == trigger]
    assert shipped.experiment is not None, f"{trigger} runs no experiment"
    return shipped.experiment


def _person(who: str, anonymous: bool) -> PersonId:
    return PersonId.anonymous(who) if anonymous else PersonId.user(who)


def arm_of(who: str, trigger: str = "abandoned_cart", *, anonymous: bool = False) -> str:
    """The arm the shipped trigger assigns the user (or, with ``anonymous``, the visitor):
    a variant id or ``holdout``."""
    return assign(trigger, _experiment(trigger), _person(who, anonymous))


@cache
def shopper_in(
    prefix: str, arm: str = "h24", trigger: str = "abandoned_cart", *, anonymous: bool = False
) -> str:
    """The first id ``<prefix>-<n>`` (n = 1, 2, ...) the shipped trigger puts in ``arm``: a
    userId, or with ``anonymous`` an anonymousId (a visitor's cart gets the visitor's arm)."""
    experiment = _experiment(trigger)
    arms = {variant.id for variant in experiment.variants} | {HOLDOUT}
    assert arm in arms, f"{trigger} has no arm {arm!r}; it has {sorted(arms)}"
    for n in itertools.count(1):
        candidate = f"{prefix}-{n}"
        if assign(trigger, experiment, _person(candidate, anonymous)) == arm:
            return candidate
    raise AssertionError("unreachable")  # itertools.count never ends


def user_in(trigger: Trigger, arm: str) -> PersonId:
    """The first ``user-<n>`` (n = 0, 1, ...) a trigger defined in a test puts in ``arm``."""
    assert trigger.experiment is not None, f"{trigger.id} runs no experiment"
    for n in itertools.count():
        person = PersonId.user(f"user-{n}")
        if assign(trigger.id, trigger.experiment, person) == arm:
            return person
    raise AssertionError("unreachable")  # itertools.count never ends
