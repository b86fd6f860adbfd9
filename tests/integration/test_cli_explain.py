"""`nudge explain` against a table on moto, as an operator runs it from a laptop: only AWS
credentials and the table's name, no function environment."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from nudge.adapters.engine_store import EngineStore
from nudge.adapters.store import EventStore
from nudge.domain.person import PersonId
from nudge.domain.profile import Profile
from nudge.domain.triggers.engine import Decision
from nudge.entrypoints.cli import main

from tests.conftest import REPO
from tests.integration._harness import NOW, Aws

TRIGGERS = REPO / "triggers"
ADA = PersonId.user("ada")


def _recorded(aws: Aws, *decisions: Decision) -> None:
    EngineStore(aws.dynamodb, aws.table, timedelta(days=30)).save_decisions(list(decisions))


def test_explain_prints_each_recorded_decision_with_its_reason(
    aws: Aws, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each decision about the user is a line: time, trigger, occurrence, outcome, reason."""
    # given
    for name in ("NUDGE_SEND_QUEUE_URL", "NUDGE_SCHEDULE_GROUP", "NUDGE_SCHEDULER_ROLE_ARN"):
        monkeypatch.delenv(name, raising=False)
    reason = "Product Added matched; waiting no Order Completed until tomorrow"
    _recorded(aws, Decision("abandoned_cart", ADA, "pending", reason, NOW, "cart_id=c1"))
    # when
    status = main(
        ["explain", "--user", "ada", "--table", aws.table, "--triggers", str(REPO / "triggers")]
    )
    # then
    out = capsys.readouterr().out
    assert status == 0
    assert "abandoned_cart [cart_id=c1]: pending — Product Added matched" in out


def test_explain_without_trigger_files_still_prints_the_records(
    aws: Aws, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    """Run outside the repository (no triggers folder): the records are printed all the same."""
    # given
    _recorded(aws, Decision("vip_checkout_call", ADA, "not_matched", "tier is gold", NOW))
    # when
    status = main(
        ["explain", "--user", "ada", "--table", aws.table, "--triggers", str(tmp_path / "none")]
    )
    # then
    assert status == 0
    assert "vip_checkout_call: not_matched — tier is gold" in capsys.readouterr().out


def test_explain_without_a_table_name_says_how_to_give_one(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No --table and no NUDGE_TABLE_NAME: exit 2 with the way to name it."""
    # given
    monkeypatch.delenv("NUDGE_TABLE_NAME", raising=False)
    # when
    status = main(["explain", "--user", "ada"])
    # then
    assert status == 2
    assert "--table or NUDGE_TABLE_NAME" in capsys.readouterr().err


def test_explain_prints_the_persons_scores_with_their_model(
    aws: Aws, capsys: pytest.CaptureFixture[str]
) -> None:
    """A scored profile: explain prints each score and the version of the model behind it."""
    # given
    scored = Profile(
        person=ADA,
        user_id="ada",
        last_seen=NOW.isoformat(),
        sessions=3,
        scores={"churn": 88},
        score_models={"churn": "20261205T2136Z"},
    )
    EventStore(aws.dynamodb, aws.table).save_profiles([scored])
    # when
    status = main(
        ["explain", "--user", "ada", "--table", aws.table, "--triggers", str(REPO / "triggers")]
    )
    # then
    assert status == 0
    assert "score churn: 88 (model 20261205T2136Z)" in capsys.readouterr().out
