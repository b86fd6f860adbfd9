"""The per-trigger metrics the dashboard draws, by trigger, variant (the experiment arm) and
channel, in CloudWatch's Embedded Metric Format (a log line CloudWatch turns into metrics,
no API call).

| Metric          | Dimensions                  | Counts                                        |
|-----------------|-----------------------------|-----------------------------------------------|
| ``Fires``       | trigger, variant            | fired, and held_out (the holdout's fires)     |
| ``Conversions`` | trigger, variant            | assignments a goal event converted            |
| ``Sends``       | trigger, variant, channel   | sent                                          |
| ``Deferrals``   | trigger, variant, channel   | deferred (quiet hours)                        |
| ``Suppressions``| trigger, variant, channel   | suppressed (the suppression list)             |
| ``Capped``      | trigger, variant, channel   | capped, cooldown (the contact policy's limits)|
| ``Skipped``     | trigger, variant, channel   | skipped (no address)                          |
| ``Failures``    | trigger, variant, channel   | retry, dead_letter                            |

Left out, because they would cost a custom metric per trigger and arm for no insight the
handlers' per-outcome counters (``Decision_<outcome>``, ``Delivery_<outcome>``, service
dimension only) do not already give: the engine's ``not_matched`` (one per event that did not
qualify: a per-trigger metric would be as large as the traffic), ``pending``, ``exited`` and
``duplicate``; delivery's ``in_flight``, ``awaiting_receipt`` and ``duplicate`` (at-most-once
bookkeeping).

Log lines: the counts are added up first and each distinct set of dimension values becomes
one EMF line holding all its metrics with their counts (EMF's limits, 100 metrics and 30
dimensions a line, are far off: six and three). A stream batch of a hundred events that fired
twenty times for two triggers writes two lines, and a Send batch of ten fires of one trigger
one. An outcome as a dimension instead of a metric name would need a line per outcome (EMF
puts one value per dimension in a line), and ``single_metric`` a line per metric.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Protocol

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

from nudge.domain.experiments.counts import NO_EXPERIMENT
from nudge.domain.outcomes import DeliveryOutcome, Outcome

if TYPE_CHECKING:  # Send need not import the engine, nor Evaluate the fire message, to count
    from nudge.domain.messages import FireMessage
    from nudge.domain.triggers.engine import Decision

__all__ = [
    "DELIVERY_METRICS",
    "FIRE_OUTCOMES",
    "MetricSink",
    "emf_sink",
    "emit_conversions",
    "emit_decisions",
    "emit_deliveries",
]

FIRE_OUTCOMES: frozenset[Outcome] = frozenset({"fired", "held_out"})
DELIVERY_METRICS: Mapping[DeliveryOutcome, str] = {
    "sent": "Sends",
    "deferred": "Deferrals",
    "suppressed": "Suppressions",
    "capped": "Capped",
    "cooldown": "Capped",
    "skipped": "Skipped",
    "retry": "Failures",
    "dead_letter": "Failures",
}


class MetricSink(Protocol):
    """Where one line goes: its dimension values and each metric's count."""

    def __call__(self, dimensions: Mapping[str, str], counts: Mapping[str, int]) -> None: ...


def emf_sink(namespace: str | None = None) -> MetricSink:
    """EMF on standard output, in ``namespace`` (default POWERTOOLS_METRICS_NAMESPACE)."""

    def write(dimensions: Mapping[str, str], counts: Mapping[str, int]) -> None:
        # Its own metric set, not the handler's Metrics (whose every metric shares one set
        # of dimensions); service="" keeps the service dimension out, so a trigger's
        # figures are one metric whichever function counts them.
        line = EphemeralMetrics(namespace=namespace, service="")
        for name, value in dimensions.items():
            line.add_dimension(name, value)
        for name, count in counts.items():
            line.add_metric(name, MetricUnit.Count, count)
        line.flush_metrics()

    return write


def emit_decisions(metrics_or_sink: Metrics | MetricSink, decisions: Iterable[Decision]) -> None:
    """``Fires`` per trigger and variant, from the engine's decisions (Evaluate)."""
    lines: _Lines = defaultdict(Counter)
    for decision in decisions:
        if decision.outcome in FIRE_OUTCOMES:
            lines[_variant_of(decision.trigger, decision.arm)]["Fires"] += 1
    _write(metrics_or_sink, lines)


def emit_conversions(
    metrics_or_sink: Metrics | MetricSink, conversions: Iterable[tuple[str, str]]
) -> None:
    """``Conversions`` per trigger and variant, from (trigger, variant) pairs: one per
    assignment converted."""
    lines: _Lines = defaultdict(Counter)
    for trigger, variant in conversions:
        lines[_variant_of(trigger, variant)]["Conversions"] += 1
    _write(metrics_or_sink, lines)


def emit_deliveries(
    metrics_or_sink: Metrics | MetricSink,
    deliveries: Iterable[tuple[FireMessage, DeliveryOutcome]],
) -> None:
    """``Sends``, ``Deferrals`` ... per trigger, variant and channel, from what delivery made
    of each fire (Send); one call per invocation keeps it to a line per combination."""
    lines: _Lines = defaultdict(Counter)
    for fire, outcome in deliveries:
        name = DELIVERY_METRICS.get(outcome)
        if name is not None:
            dimensions = (*_variant_of(fire.trigger, fire.variant), ("channel", fire.channel))
            lines[dimensions][name] += 1
    _write(metrics_or_sink, lines)


_Dimensions = tuple[tuple[str, str], ...]
_Lines = defaultdict[_Dimensions, Counter[str]]


def _variant_of(trigger: str, variant: str | None) -> _Dimensions:
    return (("trigger", trigger), ("variant", variant or NO_EXPERIMENT))


def _write(metrics_or_sink: Metrics | MetricSink, lines: _Lines) -> None:
    sink = (
        emf_sink(metrics_or_sink.namespace)
        if isinstance(metrics_or_sink, Metrics)
        else metrics_or_sink
    )
    for dimensions, counts in sorted(lines.items()):
        sink(dict(dimensions), dict(sorted(counts.items())))
