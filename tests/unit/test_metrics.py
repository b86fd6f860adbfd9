"""The dashboard's metrics: counted per trigger, variant (and channel), one EMF line per
combination with all its metrics, with exactly the dimensions the dashboard searches for."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, get_args

import pytest
from aws_lambda_powertools import Metrics
from nudge.domain.messages import FireMessage
from nudge.domain.outcomes import DeliveryOutcome, EngineOutcome
from nudge.domain.person import PersonId
from nudge.domain.triggers.engine import Decision
from nudge.entrypoints.metrics import (
    DELIVERY_METRICS,
    MetricSink,
    emit_conversions,
    emit_decisions,
    emit_deliveries,
)

from tests.conftest import REPO

ADA = PersonId.user("ada")
AT = datetime(2026, 12, 4, 12, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _as_in_a_function(monkeypatch: pytest.MonkeyPatch) -> None:
    """As Lambda runs it: the namespace and the function's service name set (template.yaml)."""
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Nudge")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "evaluate")


class _Recorder:
    """A MetricSink that keeps the lines instead of printing them."""

    def __init__(self) -> None:
        self.lines: list[tuple[dict[str, str], dict[str, int]]] = []

    def __call__(self, dimensions: Mapping[str, str], counts: Mapping[str, int]) -> None:
        self.lines.append((dict(dimensions), dict(counts)))


def _decision(trigger: str, outcome: EngineOutcome, arm: str | None = None) -> Decision:
    return Decision(trigger, ADA, outcome, "why", AT, "cart_id=c1", arm)


def _fire(trigger: str, variant: str | None = None, channel: str = "email") -> FireMessage:
    return FireMessage.model_validate(
        {
            "fireId": f"{trigger}-1",
            "trigger": trigger,
            "person": "u:ada",
            "firedAt": "2026-12-04T12:00:00.000Z",
            "channel": channel,
            "template": trigger,
            "variant": variant,
        }
    )


def _emf_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def _read(line: dict[str, Any]) -> tuple[str, dict[str, str], dict[str, float]]:
    """A line's namespace, dimension values and metric values."""
    (directive,) = line["_aws"]["CloudWatchMetrics"]
    (names,) = directive["Dimensions"]
    values = {metric["Name"]: sum(line[metric["Name"]]) for metric in directive["Metrics"]}
    return directive["Namespace"], {name: line[name] for name in names}, values


def test_decisions_are_counted_as_fires_per_trigger_and_variant() -> None:
    """Fires of one trigger and arm make one line with their count; the holdout's held_out
    decisions are its fires."""
    # given
    sink = _Recorder()
    decisions = [_decision("abandoned_cart", "fired", "h24")] * 3 + [
        _decision("abandoned_cart", "fired", "h48"),
        _decision("abandoned_cart", "held_out", "holdout"),
    ]
    # when
    emit_decisions(sink, decisions)
    # then
    assert sink.lines == [
        ({"trigger": "abandoned_cart", "variant": "h24"}, {"Fires": 3}),
        ({"trigger": "abandoned_cart", "variant": "h48"}, {"Fires": 1}),
        ({"trigger": "abandoned_cart", "variant": "holdout"}, {"Fires": 1}),
    ]


@pytest.mark.parametrize("outcome", ["not_matched", "pending", "exited", "duplicate"])
def test_decisions_that_fire_nothing_make_no_dimensioned_metric(outcome: EngineOutcome) -> None:
    """not_matched (one per event that did not qualify) and the other non-fires stay with
    the handler's Decision_<outcome>, service dimension only."""
    # given
    sink = _Recorder()
    # when
    emit_decisions(sink, [_decision("product_interest", outcome)] * 50)
    # then
    assert sink.lines == []


def test_a_decision_without_an_arm_is_the_variant_dash() -> None:
    """A trigger without an experiment is counted under variant "-" (NO_EXPERIMENT)."""
    # given
    sink = _Recorder()
    # when
    emit_decisions(sink, [_decision("re_engagement", "fired")])
    # then
    assert sink.lines == [({"trigger": "re_engagement", "variant": "-"}, {"Fires": 1})]


def test_a_batch_of_deliveries_is_one_line_per_trigger_variant_and_channel() -> None:
    """What became of a Send batch's fires: each combination one line with every metric."""
    # given
    sink = _Recorder()
    h24, h48 = _fire("abandoned_cart", "h24"), _fire("abandoned_cart", "h48")
    outcomes: list[tuple[FireMessage, DeliveryOutcome]] = [
        (h24, "sent"),
        (h24, "sent"),
        (h24, "deferred"),
        (h24, "retry"),
        (h24, "dead_letter"),
        (h48, "suppressed"),
        (h48, "capped"),
        (h48, "cooldown"),
        (h48, "skipped"),
    ]
    # when
    emit_deliveries(sink, outcomes)
    # then
    email = {"trigger": "abandoned_cart", "channel": "email"}
    assert sink.lines == [
        ({**email, "variant": "h24"}, {"Deferrals": 1, "Failures": 2, "Sends": 2}),
        ({**email, "variant": "h48"}, {"Capped": 2, "Skipped": 1, "Suppressions": 1}),
    ]


def test_delivery_bookkeeping_makes_no_dimensioned_metric() -> None:
    """in_flight, awaiting_receipt and duplicate (at-most-once bookkeeping) stay with
    Delivery_<outcome>."""
    # given
    sink = _Recorder()
    bookkeeping: tuple[DeliveryOutcome, ...] = ("in_flight", "awaiting_receipt", "duplicate")
    # when
    emit_deliveries(sink, [(_fire("vip_call"), outcome) for outcome in bookkeeping])
    # then
    assert sink.lines == []


def test_every_delivery_outcome_is_counted_or_deliberately_left_out() -> None:
    """A new delivery outcome has to be given a metric, or joined to the left-out ones."""
    # then
    left_out = {"in_flight", "awaiting_receipt", "duplicate"}
    assert set(get_args(DeliveryOutcome)) == {*DELIVERY_METRICS, *left_out}


def test_conversions_are_counted_per_trigger_and_variant() -> None:
    """(trigger, variant) pairs, one per assignment converted, counted per combination."""
    # given
    sink = _Recorder()
    # when
    emit_conversions(sink, [("abandoned_cart", "h24"), ("abandoned_cart", "h24")])
    # then
    assert sink.lines == [({"trigger": "abandoned_cart", "variant": "h24"}, {"Conversions": 2})]


def test_given_the_handlers_metrics_it_writes_emf_in_their_namespace(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """With the handler's Metrics the lines are EMF on stdout, in its namespace, without
    the service dimension, and the handler's own metric set is left alone."""
    # given
    metrics = Metrics(namespace="Elsewhere")
    metrics.add_metric("EventsEvaluated", "Count", 1)
    # when
    emit_conversions(metrics, [("abandoned_cart", "h24")])
    # then
    (line,) = _emf_lines(capsys.readouterr().out)
    assert _read(line) == (
        "Elsewhere",
        {"trigger": "abandoned_cart", "variant": "h24"},
        {"Conversions": 1.0},
    )
    assert set(metrics.metric_set) == {"EventsEvaluated"}
    metrics.clear_metrics()


def _dashboard_schemas() -> dict[str, set[str]]:
    """Each metric the dashboard searches for, with the dimension names of its schema."""
    template = (REPO / "template.yaml").read_text()
    found: dict[str, set[str]] = {}
    for names, terms in re.findall(r"SEARCH\('\{Nudge,([\w,]+)\} ([^']+)'", template):
        for metric in re.findall(r'MetricName=\\"(\w+)\\"', terms):
            found[metric] = set(names.split(","))
    return found


EMITTERS: list[Callable[[MetricSink | Metrics], None]] = [
    lambda m: emit_decisions(m, [_decision("abandoned_cart", "fired", "h24")]),
    lambda m: emit_conversions(m, [("abandoned_cart", "h24")]),
    lambda m: emit_deliveries(m, [(_fire("abandoned_cart", "h24"), o) for o in DELIVERY_METRICS]),
]


@pytest.mark.parametrize("emit", EMITTERS)
def test_in_a_function_the_dimensions_are_exactly_the_dashboards(
    emit: Callable[[MetricSink | Metrics], None], capsys: pytest.CaptureFixture[str]
) -> None:
    """Each metric written, where Lambda writes it, has exactly the dimension names of the
    dashboard's SEARCH schema for it: a schema only finds metrics with exactly its
    dimensions (a service dimension would hide them all)."""
    # given
    schemas = _dashboard_schemas()
    # when
    emit(Metrics())
    # then
    lines = [_read(line) for line in _emf_lines(capsys.readouterr().out)]
    assert lines
    for namespace, dimensions, values in lines:
        assert namespace == "Nudge"
        for metric in values:
            assert schemas.get(metric) == set(dimensions), metric


def test_the_dashboard_searches_only_for_metrics_that_are_written(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every per-trigger SEARCH names a metric this module writes (no panel stays empty
    for a misspelt name)."""
    # when
    for emit in EMITTERS:
        emit(Metrics())
    # then
    written = {m for line in _emf_lines(capsys.readouterr().out) for m in _read(line)[2]}
    assert set(_dashboard_schemas()) == written
