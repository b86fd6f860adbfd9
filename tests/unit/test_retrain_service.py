"""The Train function's use case on in-memory fakes: what it writes, what it leaves alone,
and that a current model it cannot read stops the run rather than being replaced blind."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from nudge.adapters.gbdt import GbdtParams
from nudge.domain.predictions.loader import load_predictions
from nudge.service.ports import Unavailable
from nudge.service.retrain import Retrain
from nudge.service.train import Plan

from bench.shop_truth import TruthMix, simulate_truth
from tests.conftest import REPO
from tests.fakes import InMemoryModels, InMemoryStoredEvents

PREDICTIONS = load_predictions(REPO / "predictions").predictions
NOW = datetime(2026, 4, 10, tzinfo=UTC)
FAST = Plan(params=GbdtParams(trees=20, depth=3))


def _shop(people: int) -> InMemoryStoredEvents:
    """Segment messages are items an export may hold too (read_items reads both)."""
    return InMemoryStoredEvents(list(simulate_truth(TruthMix(people=people, seed=3)).messages))


def test_too_little_data_writes_nothing_and_keeps_every_model() -> None:
    """Five shoppers: no prediction can be trained, the bucket is left as it was."""
    # given
    models = InMemoryModels({"churn": b"the current artefact"})

    # when
    result = Retrain(_shop(5), models, PREDICTIONS, FAST).run(NOW)

    # then
    assert [verdict.action for verdict in result.verdicts] == ["kept", "kept"]
    assert models.writes == []
    assert models.artefacts == {"churn": b"the current artefact"}


def test_a_trained_model_is_written_where_there_was_none() -> None:
    """An empty store: churn's artefact is written, carrying the quality it was judged by."""
    # given
    models = InMemoryModels()

    # when
    result = Retrain(_shop(60), models, PREDICTIONS, FAST).run(NOW)

    # then
    (churn,) = [verdict for verdict in result.verdicts if verdict.prediction == "churn"]
    assert churn.action == "replaced"
    assert churn.new is not None
    assert json.loads(models.artefacts["churn"])["metrics"]["quality"] == churn.new.quality
    assert result.events > 0
    assert result.skipped == 0


def test_an_unreadable_current_model_stops_the_run_and_writes_nothing() -> None:
    """The store does not answer: the run fails (the alarm says so) rather than replacing
    a model whose quality it could not read."""
    # given
    models = InMemoryModels(unavailable=True)

    # when / then
    with pytest.raises(Unavailable):
        Retrain(_shop(60), models, PREDICTIONS, FAST).run(NOW)
    assert models.writes == []
