"""Reporting on the in-memory counters: which trigger and version a report reads, and what a
caller who names neither gets."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from nudge.domain.errors import InvalidRequest, NotFound
from nudge.domain.experiments.counts import NO_EXPERIMENT, CountedUnder
from nudge.domain.triggers.loader import load_triggers
from nudge.domain.triggers.model import Trigger
from nudge.service.reporting import Reporting

from tests.conftest import REPO
from tests.fakes import InMemoryExperiments

TODAY = date(2026, 12, 4)
NOW = datetime(2026, 12, 4, 12, tzinfo=UTC)


def _shipped() -> dict[str, Trigger]:
    return {trigger.id: trigger for trigger in load_triggers(REPO / "triggers").triggers}


def _version(triggers: dict[str, Trigger]) -> str:
    experiment = triggers["abandoned_cart"].experiment
    assert experiment is not None
    return experiment.version


def test_an_unknown_trigger_is_not_found_by_its_id() -> None:
    # given
    reporting = Reporting(InMemoryExperiments(), _shipped())
    # when
    with pytest.raises(NotFound) as refused:
        reporting.trigger("no_such_trigger", TODAY)
    # then
    assert refused.value.field == "id"
    assert "no_such_trigger" in refused.value.message


@pytest.mark.parametrize("version", ["latest", "0123456789AB", "0123456789a", "../x", ""])
def test_a_malformed_version_is_refused_naming_the_version(version: str) -> None:
    # given
    reporting = Reporting(InMemoryExperiments(), _shipped())
    # when
    with pytest.raises(InvalidRequest) as refused:
        reporting.trigger("abandoned_cart", TODAY, version or "-x")
    # then
    assert refused.value.field == "version"


def test_every_trigger_is_reported_in_id_order() -> None:
    # given
    triggers = _shipped()
    reporting = Reporting(InMemoryExperiments(), triggers)
    # when
    reports = reporting.triggers(TODAY)
    # then
    assert [report["trigger"] for report in reports] == sorted(triggers)


def test_a_report_reads_the_current_versions_counters() -> None:
    # given: a send counted under the current version, another under an older one
    triggers = _shipped()
    counters = InMemoryExperiments()
    current = CountedUnder("abandoned_cart", _version(triggers), "h24")
    counters.count_fire("fire-1", "sent", current, NOW)
    counters.count_fire("fire-2", "sent", CountedUnder("abandoned_cart", "0" * 12, "h24"), NOW)
    # when
    report = Reporting(counters, triggers).trigger("abandoned_cart", TODAY)
    # then
    assert {v["id"]: v["sent"] for v in report["variants"]}["h24"] == 1


def test_an_earlier_version_is_reported_when_named() -> None:
    # given
    triggers = _shipped()
    counters = InMemoryExperiments()
    counters.count_fire("fire-2", "sent", CountedUnder("abandoned_cart", "0" * 12, "h24"), NOW)
    # when
    report = Reporting(counters, triggers).trigger("abandoned_cart", TODAY, "0" * 12)
    # then
    assert report["version"] == "0" * 12
    assert {v["id"]: v["sent"] for v in report["variants"]} == {"h24": 1}


def test_a_trigger_without_an_experiment_reads_its_plain_counts() -> None:
    # given
    triggers = _shipped()
    counters = InMemoryExperiments()
    counters.count_fire("fire-3", "sent", CountedUnder("re_engagement"), NOW)
    # when
    report = Reporting(counters, triggers).trigger("re_engagement", TODAY)
    # then
    assert report["comparisons"] == []
    assert [(v["id"], v["sent"]) for v in report["variants"]] == [(NO_EXPERIMENT, 1)]


@pytest.mark.parametrize("version", ["0123456789ab\n", "-\n"])
def test_a_version_with_a_trailing_newline_is_refused(version: str) -> None:
    """A valid version followed by a newline is malformed too: 400 naming the version, not an
    empty report of a version no counter can be under."""
    # given
    reporting = Reporting(InMemoryExperiments(), _shipped())
    # when
    with pytest.raises(InvalidRequest) as refused:
        reporting.trigger("abandoned_cart", TODAY, version)
    # then
    assert refused.value.field == "version"
