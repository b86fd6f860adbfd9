"""A trigger's experiment block: what nudge validate accepts and refuses (file:line), and
the stable assignment of people to arms."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from nudge.domain.person import PersonId
from nudge.domain.triggers.experiment import HOLDOUT, Experiment, assign
from nudge.domain.triggers.loader import Problem, parse_trigger

TEMPLATES = Path(__file__).resolve().parents[2] / "triggers" / "templates"

# Lines 1 to 12 (experiment: is line 12); tests append from line 13 on.
CART = """\
id: cart_test
when:
  event: Product Added
key: properties.cart_id
unless:
  event: Order Completed
  within: 24h
  same: properties.cart_id
send:
  channel: email
  template: abandoned_cart
experiment:
"""

ARMS = """\
  variants:
    - id: h24
      weight: 45
      unless: {within: 24h}
    - id: h48
      weight: 45
      unless: {within: 48h}
  holdout: 10%
"""


def load(text: str) -> Experiment:
    trigger, problems = parse_trigger(text, "triggers/cart.yaml", TEMPLATES)
    assert problems == [], problems
    assert trigger is not None
    assert trigger.experiment is not None
    return trigger.experiment


def only_problem(text: str) -> Problem:
    trigger, problems = parse_trigger(text, "triggers/cart.yaml", TEMPLATES)
    assert trigger is None
    assert len(problems) == 1, problems
    return problems[0]


# ---- what loads ----------------------------------------------------------------------


def test_the_issue_example_loads_with_its_defaults() -> None:
    """Two timing variants and a 10 % holdout load; the goal defaults to Order Completed in 7d."""
    # given / when
    experiment = load(CART + ARMS)

    # then
    assert [variant.id for variant in experiment.variants] == ["h24", "h48"]
    assert experiment.holdout == pytest.approx(0.10)
    assert experiment.goal.event == "Order Completed"
    assert experiment.goal.within == timedelta(days=7)
    assert experiment.variant("h48") is not None
    assert experiment.variant("h48").unless.within == timedelta(hours=48)  # type: ignore[union-attr]


def test_reweighting_keeps_the_version_and_editing_a_variant_changes_it() -> None:
    """Weights are not part of the version; what a variant does is."""
    # given
    before = load(CART + ARMS)

    # when
    reweighted = load(CART + ARMS.replace("weight: 45", "weight: 30", 1))
    edited = load(CART + ARMS.replace("within: 48h", "within: 72h"))

    # then
    assert reweighted.version == before.version
    assert edited.version != before.version


def test_a_variant_may_send_another_template_that_exists() -> None:
    """A send override naming a shipped template loads."""
    # given
    text = CART + "  variants:\n    - {id: plain, weight: 1, send: {template: re_engagement}}\n"

    # when / then
    assert load(text).variants[0].send is not None


# ---- what nudge validate refuses, with file:line ---------------------------------------


@pytest.mark.parametrize(
    ("arms", "line", "words"),
    [
        ("  variants:\n    - {id: a, weight: 0}\n", 14, "greater than 0"),
        ("  variants:\n    - {id: a, weight: -5}\n", 14, "greater than 0"),
        ("  variants:\n    - {id: a, weight: heavy}\n", 14, "number"),
        ("  variants:\n    - {id: a, weight: 1}\n  holdout: 100%\n", 15, "out of range"),
        ("  variants:\n    - {id: a, weight: 1}\n  holdout: 150%\n", 15, "out of range"),
        ("  variants:\n    - {id: a, weight: 1}\n  holdout: lots\n", 15, "percentage"),
        ("  variants:\n    - {id: a, weight: 1}\n    - {id: a, weight: 1}\n", 12, "unique"),
        (
            "  variants:\n    - {id: a, weight: 1, audience: {path: traits.vip, eq: true}}\n",
            14,
            "audience",
        ),
        ("  variants:\n    - {id: a, weight: 1}\n  goal: {within: 31d}\n", 15, "out of range"),
        ("  variants:\n    - {id: holdout, weight: 1}\n", 14, "holdout"),
        ("  variants: []\n", 13, "at least 1"),
        ("  variants:\n    - {id: a, weight: 1, send: {template: nowhere}}\n", 14, "no template"),
    ],
    ids=[
        "zero weight",
        "negative weight",
        "a weight that is not a number",
        "a holdout of 100%",
        "a holdout over 100%",
        "a holdout that is not a percentage",
        "duplicate variant ids",
        "an override a variant may not change",
        "a goal window over 30 days",
        "a variant named holdout",
        "no variants",
        "a variant template that does not exist",
    ],
)
def test_a_bad_experiment_is_refused_at_its_line(arms: str, line: int, words: str) -> None:
    """Each mistake is one problem, at the line that holds it, saying what is wrong."""
    # given / when
    problem = only_problem(CART + arms)

    # then
    assert problem.file == "triggers/cart.yaml"
    assert problem.line == line, problem
    assert words in problem.message, problem


def test_re_timing_an_absence_the_trigger_does_not_have_is_refused() -> None:
    """unless.within in a variant needs an 'unless' on the trigger."""
    # given
    text = (
        "id: t\nwhen: {event: Signed Up}\nsend: {channel: email, template: abandoned_cart}\n"
        "experiment:\n  variants:\n    - {id: a, weight: 1, unless: {within: 24h}}\n"
    )

    # when
    problem = only_problem(text)

    # then
    assert "has no 'unless'" in problem.message


# ---- assignment ----------------------------------------------------------------------


def test_a_person_gets_the_same_arm_every_time() -> None:
    """Assignment is a pure function of trigger, version and person: asked twice, one arm."""
    # given
    experiment, ada = load(CART + ARMS), PersonId.user("ada")

    # when / then
    assert assign("cart_test", experiment, ada) == assign("cart_test", experiment, ada)


def test_arms_follow_the_weights_and_the_holdout() -> None:
    """Over 20,000 people the arms come out near 45 / 45 / 10 %."""
    # given
    experiment = load(CART + ARMS)

    # when
    arms = Counter(
        assign("cart_test", experiment, PersonId.user(f"user-{n}")) for n in range(20_000)
    )

    # then
    assert arms[HOLDOUT] / 20_000 == pytest.approx(0.10, abs=0.01)
    assert arms["h24"] / 20_000 == pytest.approx(0.45, abs=0.015)
    assert arms["h48"] / 20_000 == pytest.approx(0.45, abs=0.015)


def test_a_new_version_reshuffles_people() -> None:
    """Editing what the variants do starts a new experiment: arms are drawn afresh."""
    # given
    before = load(CART + ARMS)
    after = load(CART + ARMS.replace("within: 48h", "within: 72h"))
    people = [PersonId.user(f"user-{n}") for n in range(1_000)]

    # when
    moved = sum(assign("t", before, p) != assign("t", after, p) for p in people)

    # then
    assert moved > 300  # about half would move between two equal arms


@given(st.text(min_size=1, max_size=40))
def test_every_person_lands_in_an_arm_of_the_experiment(user_id: str) -> None:
    """Whatever the id, the arm is the holdout or one of the variants."""
    # given
    experiment = load(CART + ARMS)

    # when
    arm = assign("cart_test", experiment, PersonId.user(user_id))

    # then
    assert arm in {HOLDOUT, "h24", "h48"}
