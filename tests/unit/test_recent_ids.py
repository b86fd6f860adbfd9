"""A profile remembers its latest messageIds, so an event re-sent in another batch folds once."""

from __future__ import annotations

from nudge.adapters.store import GROUP_MAX_EVENTS
from nudge.domain.recent_ids import KEPT, folded_recently, remember
from nudge.service.evaluate import RECORD_EVENTS_BOUND


def _remembering(*message_ids: str) -> bytes:
    recent = b""
    for message_id in message_ids:
        recent = remember(recent, message_id)
    return recent


def test_an_id_just_folded_is_recognised():
    assert folded_recently(_remembering("m-1", "m-2"), "m-1")


def test_an_id_never_folded_is_not():
    assert not folded_recently(_remembering("m-1", "m-2"), "m-3")


def test_the_memory_keeps_the_latest_ids_only():
    # given more ids than it keeps
    recent = _remembering(*(f"m-{n}" for n in range(KEPT + 5)))
    # then the oldest are forgotten, the latest kept, and its size is bounded
    assert not folded_recently(recent, "m-0")
    assert folded_recently(recent, f"m-{KEPT + 4}")
    assert folded_recently(recent, "m-5")
    assert len(recent) == KEPT * 6


def test_an_item_never_holds_more_events_than_an_ordinal_can_number():
    assert GROUP_MAX_EVENTS < RECORD_EVENTS_BOUND
