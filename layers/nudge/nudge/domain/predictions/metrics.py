"""How good a score is on held-out people: AUC, Braze-style prediction quality (average
lift over random across audience sizes) and a calibration table. Pure Python, no numpy:
the same code reports on a model and on the simulator's true probabilities.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby

__all__ = ["CalibrationBin", "auc", "calibration", "prediction_quality"]


@dataclass(frozen=True)
class CalibrationBin:
    """One band of predicted probabilities, and how often its rows were positive."""

    low: float
    high: float
    count: int
    predicted: float  # the mean predicted probability in the bin
    observed: float  # the share of positives in it


def auc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """The chance that a random positive scores above a random negative (ties count half):
    the Mann-Whitney U statistic over both counts, with average ranks for ties."""
    positives = sum(labels)
    negatives = len(labels) - positives
    if not positives or not negatives:
        raise ValueError("AUC needs both positive and negative examples")
    ranked = sorted(zip(scores, labels, strict=True), key=lambda pair: pair[0])
    rank_sum, position = 0.0, 0
    for _, group in groupby(ranked, key=lambda pair: pair[0]):
        members = list(group)
        average_rank = position + (len(members) + 1) / 2
        rank_sum += average_rank * sum(label for _, label in members)
        position += len(members)
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


def prediction_quality(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """Average lift over random across audience sizes, 0 = random, 1 = perfect.

    For each audience size k (the k best-scored people, k = 1 .. n-1), the positives the
    score reaches, less the k*P/n a random pick reaches, over what a perfect score reaches
    (min(k, P)) less the same: then the mean over k. Braze describes its "prediction
    quality" in these words (average lift across all audience sizes, 0 % random, 100 %
    perfect) without a formula; this is that reading. Ties share their positives evenly.
    """
    n, positives = len(labels), sum(labels)
    if not positives or positives == n:
        raise ValueError("prediction quality needs both positive and negative examples")
    reached = _reached(scores, labels)
    total = 0.0
    for k in range(1, n):
        random_pick = k * positives / n
        total += (reached[k] - random_pick) / (min(k, positives) - random_pick)
    return total / (n - 1)


def _reached(scores: Sequence[float], labels: Sequence[bool]) -> list[float]:
    """Positives among the k best-scored, for k = 0 .. n (a tie's positives spread evenly)."""
    ranked = sorted(zip(scores, labels, strict=True), key=lambda pair: -pair[0])
    reached = [0.0]
    for _, group in groupby(ranked, key=lambda pair: pair[0]):
        members = list(group)
        share = sum(label for _, label in members) / len(members)
        for _ in members:
            reached.append(reached[-1] + share)
    return reached


def calibration(
    probabilities: Sequence[float], labels: Sequence[bool], bins: int = 10
) -> list[CalibrationBin]:
    """Predicted against observed, in equal-width bins of the predicted probability (the
    empty ones left out): a calibrated model's two columns agree."""
    table = []
    for index in range(bins):
        low, high = index / bins, (index + 1) / bins
        inside = [
            (p, label)
            for p, label in zip(probabilities, labels, strict=True)
            if low <= p < high or (index == bins - 1 and p == high)
        ]
        if inside:
            table.append(
                CalibrationBin(
                    low=low,
                    high=high,
                    count=len(inside),
                    predicted=sum(p for p, _ in inside) / len(inside),
                    observed=sum(label for _, label in inside) / len(inside),
                )
            )
    return table
