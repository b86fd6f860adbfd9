"""AUC, prediction quality and calibration on small cases worked by hand."""

from __future__ import annotations

import pytest
from nudge.domain.predictions.metrics import auc, calibration, prediction_quality


def test_auc_is_one_when_every_positive_scores_above_every_negative() -> None:
    """A perfect ranking has AUC 1; the reversed one 0."""
    # given
    labels = [False, False, True, True]

    # then
    assert auc([0.1, 0.2, 0.8, 0.9], labels) == 1.0
    assert auc([0.9, 0.8, 0.2, 0.1], labels) == 0.0


def test_auc_counts_a_tie_as_half() -> None:
    """One positive tied with one negative of two: (1 + 0.5) / 2 pairs won."""
    # when
    value = auc([0.5, 0.2, 0.5], [True, False, False])

    # then
    assert value == pytest.approx(0.75)


def test_prediction_quality_is_one_for_a_perfect_ranking_and_zero_for_none() -> None:
    """Perfect knowledge is 100 %; scores that tell nobody apart are random: 0 %."""
    # given
    labels = [True, False, True, False, False, False]

    # then
    assert prediction_quality([0.9, 0.1, 0.8, 0.2, 0.3, 0.1], labels) == pytest.approx(1.0)
    assert prediction_quality([0.5] * 6, labels) == pytest.approx(0.0)


def test_prediction_quality_averages_the_lift_over_audience_sizes() -> None:
    """Ranked P N P N: at k=1 perfect (1), k=2 random (0), k=3 perfect (1): mean 2/3."""
    # when
    value = prediction_quality([0.9, 0.8, 0.7, 0.6], [True, False, True, False])

    # then
    assert value == pytest.approx(2 / 3)


def test_quality_and_auc_refuse_a_set_with_one_class() -> None:
    """Without both kinds of examples neither measure means anything."""
    with pytest.raises(ValueError, match="both positive and negative"):
        auc([0.1, 0.2], [True, True])
    with pytest.raises(ValueError, match="both positive and negative"):
        prediction_quality([0.1, 0.2], [False, False])


def test_calibration_sets_predicted_against_observed_per_bin() -> None:
    """Equal-width bins; empty ones left out; 1.0 falls in the last bin."""
    # when
    table = calibration([0.05, 0.15, 0.12, 1.0], [False, True, False, True], bins=10)

    # then
    assert [(row.low, row.count, row.observed) for row in table] == [
        (0.0, 1, 0.0),
        (0.1, 2, 0.5),
        (0.9, 1, 1.0),
    ]
    assert table[1].predicted == pytest.approx(0.135)
