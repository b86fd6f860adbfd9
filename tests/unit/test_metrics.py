"""The dashboard's metrics: one EMF line per combination of dimensions, with its count."""

from __future__ import annotations

import json
from typing import Any

import pytest
from nudge.entrypoints.metrics import emit_conversions, emit_decisions, emit_delivery


@pytest.fixture(autouse=True)
def _namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Nudge")


def _lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def _summary(line: dict[str, Any]) -> tuple[str, dict[str, str], float]:
    (metric,) = line["_aws"]["CloudWatchMetrics"][0]["Metrics"]
    (dimensions,) = line["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
    values = {name: line[name] for name in dimensions}
    value = line[metric["Name"]]
    return metric["Name"], values, value[0] if isinstance(value, list) else value


def test_decisions_of_one_trigger_arm_and_outcome_are_one_line_with_their_count(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # when
    emit_decisions([("abandoned_cart", "h24", "fired")] * 3 + [("abandoned_cart", "h48", "fired")])
    # then
    lines = [_summary(line) for line in _lines(capsys.readouterr().out)]
    assert lines == [
        ("Decisions", {"outcome": "fired", "trigger": "abandoned_cart", "variant": "h24"}, 3),
        ("Decisions", {"outcome": "fired", "trigger": "abandoned_cart", "variant": "h48"}, 1),
    ]


def test_not_matched_decisions_make_no_dimensioned_metric(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # when
    emit_decisions([("product_interest", None, "not_matched")] * 50)
    # then
    assert _lines(capsys.readouterr().out) == []


def test_a_trigger_without_an_experiment_is_the_variant_dash(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # when
    emit_delivery("re_engagement", None, "email", "sent")
    # then
    ((name, dimensions, value),) = [_summary(line) for line in _lines(capsys.readouterr().out)]
    assert (name, value) == ("Deliveries", 1)
    assert dimensions == {
        "channel": "email",
        "outcome": "sent",
        "trigger": "re_engagement",
        "variant": "-",
    }


def test_conversions_are_counted_per_trigger_and_variant(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # when
    emit_conversions([("abandoned_cart", "h24"), ("abandoned_cart", "h24")])
    # then
    lines = [_summary(line) for line in _lines(capsys.readouterr().out)]
    assert lines == [("Conversions", {"trigger": "abandoned_cart", "variant": "h24"}, 2)]
