"""`nudge explain` against a table on moto, as an operator runs it from a laptop: only AWS
credentials and the table's name, no function environment."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from nudge.adapters.engine_store import EngineStore
from nudge.adapters.model_file import load_scoring
from nudge.adapters.store import EventStore
from nudge.domain.person import PersonId
from nudge.domain.predictions.live import rescore
from nudge.domain.profile import Profile
from nudge.domain.triggers.conditions import Facts
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


def _scored_by_the_shipped_model(profile: Profile) -> Profile:
    """The profile with the scores Evaluate would keep, folded at NOW with no history."""
    scoring, _ = load_scoring(REPO / "predictions", REPO / "models")
    facts = Facts(now=NOW, traits=profile.traits, profile=profile.facts(NOW))
    rescored = rescore(scoring, facts)
    return replace(
        profile, scores=rescored.scores, score_models=rescored.models, folded_at=NOW.isoformat()
    )


def test_explain_prints_what_moved_a_score_most(
    aws: Aws, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scored by the shipped churn model: under the score, the base score and the features
    that moved it most, each with the person's value, in score points and log-odds."""
    # given
    monkeypatch.setenv("NUDGE_PREDICTIONS_DIR", str(REPO / "predictions"))
    monkeypatch.setenv("NUDGE_MODELS_DIR", str(REPO / "models"))
    profile = Profile(
        person=ADA,
        user_id="ada",
        first_seen=(NOW - timedelta(days=20)).isoformat(),
        last_seen=(NOW - timedelta(days=9)).isoformat(),
        sessions=3,
        events=12,
        pages=9,
    )
    EventStore(aws.dynamodb, aws.table).save_profiles([_scored_by_the_shipped_model(profile)])

    # when
    status = main(
        ["explain", "--user", "ada", "--table", aws.table, "--triggers", str(REPO / "triggers")]
    )

    # then
    out = capsys.readouterr().out
    assert status == 0
    assert "for someone the model knows nothing about, the features that moved it most" in out
    line = r"profile\.days_inactive = 9 +[+-]\d+\.\d points \([+-]\d\.\d{3} log-odds\)"
    assert re.search(line, out)


def test_explain_says_when_a_score_cannot_be_taken_apart(
    aws: Aws, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A score kept from a model that is no longer the one loaded: the score is printed,
    and why its contributions are not."""
    # given
    monkeypatch.setenv("NUDGE_MODELS_DIR", str(REPO / "models"))
    scored = Profile(
        person=ADA,
        user_id="ada",
        last_seen=NOW.isoformat(),
        folded_at=NOW.isoformat(),
        sessions=3,
        scores={"churn": 88},
        score_models={"churn": "20200101T0000Z"},
    )
    EventStore(aws.dynamodb, aws.table).save_profiles([scored])

    # when
    status = main(
        ["explain", "--user", "ada", "--table", aws.table, "--triggers", str(REPO / "triggers")]
    )

    # then
    out = capsys.readouterr().out
    assert status == 0
    assert "score churn: 88 (model 20200101T0000Z)" in out
    assert "contributions not available: the score was given by model 20200101T0000Z" in out


def test_explain_notes_when_the_features_read_again_give_another_score(
    aws: Aws, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The kept score no longer follows from the person's data (here it was changed after
    scoring, as expired or late events would): the contributions come with a note saying
    which score they take apart."""
    # given
    monkeypatch.setenv("NUDGE_PREDICTIONS_DIR", str(REPO / "predictions"))
    monkeypatch.setenv("NUDGE_MODELS_DIR", str(REPO / "models"))
    profile = _scored_by_the_shipped_model(
        Profile(person=ADA, user_id="ada", last_seen=NOW.isoformat(), sessions=3, events=4)
    )
    worked_out = profile.scores["churn"]
    changed = replace(profile, scores={"churn": (worked_out + 50) % 100})
    EventStore(aws.dynamodb, aws.table).save_profiles([changed])

    # when
    status = main(
        ["explain", "--user", "ada", "--table", aws.table, "--triggers", str(REPO / "triggers")]
    )

    # then
    out = capsys.readouterr().out
    assert status == 0
    assert f"note: the features read again give {worked_out}, not {(worked_out + 50) % 100}" in out
