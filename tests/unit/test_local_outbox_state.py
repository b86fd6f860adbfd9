"""The outbox's state for a fire that is not an email SES accepted."""

from __future__ import annotations

import pytest

from local.control import delivery_state


@pytest.mark.parametrize(
    ("fire", "mark", "state"),
    [
        ({"variant": None}, "", "queued"),
        ({"variant": "h24"}, "claimed@2026-12-04T10:00:00.000Z", "claimed"),
        ({"variant": None}, "sent@2026-12-04T10:00:00.000Z", "sent"),
        ({"variant": "holdout"}, "", "held_out"),
    ],
    ids=["not handled yet", "claimed", "sent", "in the holdout"],
)
def test_a_fire_shows_its_delivery_state(fire: dict[str, object], mark: str, state: str) -> None:
    """The contact record's mark names the state; a holdout's fire, never queued, is held_out."""
    # given / when / then
    assert delivery_state(fire, mark) == state
