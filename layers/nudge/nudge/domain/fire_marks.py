"""How an email says which fire it delivers, for SES's feedback to name it again: constants
in a module of their own, so that Feedback reads them without loading the fire message
model (pydantic) that Send and Evaluate use."""

from __future__ import annotations

__all__ = ["FIRE_HEADER", "FIRE_TAG"]

FIRE_HEADER = "X-Nudge-Fire"  # on every email Send sends: the fire it delivers
FIRE_TAG = "nudge_fire"  # the same, as an SES message tag (SES never truncates tags)
