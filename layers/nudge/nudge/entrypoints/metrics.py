"""CloudWatch metrics with the dimensions the dashboard draws: per trigger, variant and
channel, in Embedded Metric Format (a log line CloudWatch turns into metrics; no API call).

Each distinct combination of dimensions is one EMF line (``single_metric``) carrying its
count, so a stream batch of a hundred events that decided twenty fires of two triggers
writes a handful of lines, not a hundred. Three dimension sets, fixed, because the
dashboard's SEARCH expressions name them exactly:

- ``Decisions``   trigger, variant, outcome   (fired, held_out, pending, exited, duplicate)
- ``Deliveries``  trigger, variant, channel, outcome   (sent, deferred, suppressed, capped ...)
- ``Conversions`` trigger, variant

``not_matched`` decisions are left out here: one per event that did not qualify would make
the metric as large as the traffic for no insight; the handlers' ``Decision_not_matched``
(service dimension only) still counts them. Each combination is one custom metric
(billed per metric per month): docs/operations.md estimates it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from aws_lambda_powertools.metrics import MetricUnit, single_metric

from nudge.domain.experiments.counts import NO_EXPERIMENT

__all__ = ["emit_conversions", "emit_decisions", "emit_delivery"]

_QUIET_OUTCOMES = frozenset({"not_matched"})


def emit_decisions(decisions: Iterable[tuple[str, str | None, str]]) -> None:
    """(trigger, arm, outcome) per decision."""
    _emit(
        "Decisions",
        (
            {"trigger": trigger, "variant": arm or NO_EXPERIMENT, "outcome": outcome}
            for trigger, arm, outcome in decisions
            if outcome not in _QUIET_OUTCOMES
        ),
    )


def emit_delivery(trigger: str, variant: str | None, channel: str, outcome: str) -> None:
    _emit(
        "Deliveries",
        [
            {
                "trigger": trigger,
                "variant": variant or NO_EXPERIMENT,
                "channel": channel,
                "outcome": outcome,
            }
        ],
    )


def emit_conversions(conversions: Sequence[tuple[str, str]]) -> None:
    """(trigger, variant) per assignment converted."""
    _emit("Conversions", ({"trigger": t, "variant": v} for t, v in conversions))


def _emit(name: str, rows: Iterable[dict[str, str]]) -> None:
    counted = Counter(tuple(sorted(row.items())) for row in rows)
    for dimensions, count in sorted(counted.items()):
        with single_metric(name=name, unit=MetricUnit.Count, value=count) as metric:
            for key, value in dimensions:
                metric.add_dimension(key, value[:250])  # CloudWatch's dimension value limit
