"""The two vocabularies of decision records: what the engine decided about a trigger, and
what delivery made of a fire. Kept apart so each side can only say its own words."""

from __future__ import annotations

from typing import Literal

__all__ = ["DeliveryOutcome", "EngineOutcome", "Outcome"]

EngineOutcome = Literal[
    "fired", "held_out", "pending", "not_matched", "exited", "duplicate", "completed"
]
DeliveryOutcome = Literal[
    "sent",
    "deferred",
    "duplicate",
    "capped",
    "cooldown",
    "suppressed",
    "retry",
    "in_flight",
    "awaiting_receipt",
    "skipped",
    "dead_letter",
]
# A decision record holds either: explain and the reports list both, in time order.
Outcome = EngineOutcome | DeliveryOutcome
