"""The Train function's rule, pure: a new model replaces the current one only if its
held-out quality is not worse; a current model that does not count is replaced; too
little data keeps what is there. Each decision logs numbers and names, never a person."""

from __future__ import annotations

import json
from typing import Any

from nudge.domain.predictions.keep import (
    Held,
    held_out,
    keep_or_replace,
    measured_on,
    too_little,
)
from nudge.domain.predictions.score import ModelProblem, parse_model

from tests.unit.test_score_triggers import MODEL

CURRENT = Held(quality=0.80, auc=0.90)


def _artefact(**metrics: Any) -> bytes:
    return json.dumps({**MODEL, "metrics": metrics}).encode()


def test_a_better_model_replaces_the_current_one() -> None:
    """Higher held-out quality: replaced, with both qualities in the verdict."""
    # when
    verdict = keep_or_replace("churn", CURRENT, Held(quality=0.85, auc=0.91))

    # then
    assert verdict.action == "replaced"
    assert (verdict.old, verdict.new) == (CURRENT, Held(quality=0.85, auc=0.91))


def test_an_equal_model_replaces_the_current_one() -> None:
    """Not worse is enough: the new model has seen the latest weeks."""
    # when
    verdict = keep_or_replace("churn", CURRENT, Held(quality=0.80, auc=0.89))

    # then
    assert verdict.action == "replaced"


def test_a_worse_model_keeps_the_current_one() -> None:
    """Lower held-out quality: the current model stays, and the reason says why."""
    # when
    verdict = keep_or_replace("churn", CURRENT, Held(quality=0.79, auc=0.95))

    # then
    assert verdict.action == "kept"
    assert "worse" in verdict.reason


def test_with_no_current_model_the_new_one_is_written() -> None:
    """Nothing in the bucket yet: any new model is better than none."""
    # given
    current = held_out(ModelProblem("no current model"))

    # when
    verdict = keep_or_replace("churn", current, Held(quality=0.10, auc=0.55))

    # then
    assert verdict.action == "replaced"
    assert verdict.old is None
    assert "no current model" in verdict.reason


def test_a_corrupt_current_model_is_replaced() -> None:
    """An artefact that does not parse cannot score: it does not count."""
    # given
    current = held_out(parse_model(b"{not json"))

    # when
    verdict = keep_or_replace("churn", current, Held(quality=0.10, auc=0.55))

    # then
    assert verdict.action == "replaced"
    assert "no usable current model" in verdict.reason


def test_a_current_model_without_stored_metrics_is_replaced() -> None:
    """A hand-made artefact that says nothing of its quality cannot be compared."""
    # given
    current = held_out(parse_model(json.dumps(MODEL)))

    # when
    verdict = keep_or_replace("churn", current, Held(quality=0.10, auc=0.55))

    # then
    assert verdict.action == "replaced"
    assert "metrics.quality" in verdict.reason


def test_the_stored_metrics_are_the_current_models_quality() -> None:
    """The artefact's metrics, as training wrote them, are what the new model must match."""
    # when
    current = held_out(parse_model(_artefact(quality=0.7, auc=0.88)))

    # then
    assert current == Held(quality=0.7, auc=0.88)


def test_too_little_data_keeps_the_current_model_and_says_why() -> None:
    """No new model: kept, the old quality stated, the training's reason passed on."""
    # when
    verdict = too_little("churn", CURRENT, "too little data to train churn: 3 positive")

    # then
    assert verdict.action == "kept"
    assert (verdict.old, verdict.new) == (CURRENT, None)
    assert verdict.reason.startswith("too little data")


def test_the_log_line_holds_the_prediction_the_qualities_and_the_decision() -> None:
    """What the Train function logs: names and numbers only."""
    # given
    verdict = keep_or_replace("churn", CURRENT, Held(quality=0.75, auc=0.9))

    # when
    line = verdict.to_log()

    # then
    assert line == {
        "prediction": "churn",
        "decision": "kept",
        "old_quality": 0.80,
        "new_quality": 0.75,
        "old_auc": 0.90,
        "new_auc": 0.9,
        "reason": verdict.reason,
    }


# ---- the current model judged on the new model's held-out rows --------------------------------


def test_the_current_model_is_judged_on_the_new_models_held_out_rows() -> None:
    """Its stored metrics say 0.5, but on these rows (three sessions or more bought, fewer
    did not) it ranks every person right: 1.0, and that is what the new model must match."""
    # given
    current = parse_model(_artefact(quality=0.5, auc=0.6).decode())
    rows = [([3.0], True), ([1.0], False), ([4.0], True), ([2.0], False)]

    # when
    measured = measured_on(current, rows)

    # then
    assert measured == Held(quality=1.0, auc=1.0)


def test_rows_of_one_class_fall_back_to_the_stored_quality() -> None:
    """No positive among the rows: nothing to rank, so the artefact's own figures stand."""
    # given
    current = parse_model(_artefact(quality=0.5, auc=0.6).decode())

    # when
    measured = measured_on(current, [([3.0], False), ([1.0], False)])

    # then
    assert measured == Held(quality=0.5, auc=0.6)


def test_a_current_model_that_does_not_load_is_not_judged() -> None:
    """A problem stays a problem: any new model replaces it."""
    # given
    problem = ModelProblem("no current model")

    # when
    measured = measured_on(problem, [([3.0], True), ([1.0], False)])

    # then
    assert measured == problem
