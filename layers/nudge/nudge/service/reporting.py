"""Reports: what each trigger's counters say, analysed. A report reads one version's
counters (a few items per arm and day), never an event, so it costs the same for a
hundred people assigned as for a million."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from typing import Any

from nudge.domain.errors import InvalidRequest, NotFound
from nudge.domain.experiments.counts import NO_EXPERIMENT
from nudge.domain.experiments.report import build_report
from nudge.domain.triggers.model import Trigger
from nudge.service.ports import CounterReader

__all__ = ["Reporting"]

# An experiment's version is a 12-digit hex digest (Experiment.version); "-" is none.
_VERSION = re.compile(r"[0-9a-f]{12}|-")


class Reporting:
    def __init__(self, counters: CounterReader, triggers: Mapping[str, Trigger]) -> None:
        self._counters = counters
        self._triggers = dict(sorted(triggers.items()))

    def trigger(self, trigger_id: str, today: date, version: str | None = None) -> dict[str, Any]:
        """One trigger's report, for its current experiment version unless told another."""
        trigger = self._triggers.get(trigger_id)
        if trigger is None:
            known = ", ".join(self._triggers) or "none"
            raise NotFound("id", f"no trigger {trigger_id[:80]!r} (triggers: {known})")
        if version is not None and not _VERSION.fullmatch(version):
            raise InvalidRequest("version", "must be an experiment version (12 hex digits)")
        current = trigger.experiment.version if trigger.experiment else NO_EXPERIMENT
        chosen = version or current
        tallies = self._counters.tallies(trigger.id, chosen)
        return build_report(trigger, tallies, version=chosen, today=today)

    def triggers(self, today: date) -> list[dict[str, Any]]:
        """Every trigger's report, in id order."""
        return [self.trigger(trigger_id, today) for trigger_id in self._triggers]
