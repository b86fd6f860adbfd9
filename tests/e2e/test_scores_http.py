"""The local stack scores live: with the shipped churn prediction and model bundled beside
the triggers, and churn_risk (which reads the score) turned on, a user's second session puts
them in churn's audience, and explain answers with their score, the model behind it and
what moved the score; when they then go quiet, the hourly sweep on the stack's virtual clock
re-scores them, and churn_risk's email goes out once the score passes 70. A score no enabled
trigger reads is not worked out at all (it would cost a read and profile bytes for nothing)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.e2e.conftest import FROM_EMAIL, StackClient, _run_stack
from tests.e2e.shop import DAY, HOUR, advance, decisions, emails_to, identify, zone_where

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def scoring_stack(
    stack_logs: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StackClient]:
    """The shipped triggers, churn_risk turned on."""
    folder = tmp_path_factory.mktemp("scoring-triggers")
    (folder / "templates").symlink_to(REPO / "triggers" / "templates")
    for path in (REPO / "triggers").glob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        if path.stem == "churn_risk":
            text = text.replace("enabled: false", "enabled: true")
        (folder / path.name).write_text(text, encoding="utf-8")
    settings = {"NUDGE_TRIGGERS_DIR": str(folder), "NUDGE_FROM_EMAIL": FROM_EMAIL}
    yield from _run_stack(None, stack_logs, settings)


def _page(stack: StackClient, user_id: str, name: str) -> None:
    response = stack.post("/v1/page", {"userId": user_id, "name": name})
    assert response.status_code == 200, response.text


def _two_sessions(stack: StackClient, user_id: str) -> None:
    """Two visits an hour apart: the second session puts the user in churn's audience."""
    _page(stack, user_id, "home")
    stack.drain()
    advance(stack, 3600)
    _page(stack, user_id, "pricing")
    stack.drain()


def test_a_second_session_is_scored_and_explain_shows_the_score(scoring_stack: StackClient):
    """Two visits an hour apart (two sessions): explain lists a churn score from 0 to 100
    and the shipped model's version."""
    # given
    stack = scoring_stack
    user = f"scored-{uuid.uuid4().hex[:10]}"

    # when
    _two_sessions(stack, user)

    # then
    response = stack.get("/_local/explain/" + user)
    assert response.status_code == 200, response.text
    churn = response.json()["scores"]["churn"]
    assert 0 <= churn["score"] <= 100
    assert churn["model"].endswith("Z")


def test_explain_shows_what_moved_the_score(scoring_stack: StackClient):
    """The scored user's churn score taken apart by the shipped model: every feature it was
    trained on, largest first, adding up with the base to the log-odds and, in score points,
    to the score."""
    # given
    stack = scoring_stack
    user = f"explained-{uuid.uuid4().hex[:10]}"
    _two_sessions(stack, user)

    # when
    churn = stack.get("/_local/explain/" + user).json()["scores"]["churn"]

    # then
    shipped = json.loads((REPO / "models" / "churn.json").read_text(encoding="utf-8"))
    contributions = churn["contributions"]
    assert sorted(c["feature"] for c in contributions) == sorted(shipped["features"])
    sizes = [abs(c["logOdds"]) for c in contributions]
    assert sizes == sorted(sizes, reverse=True)
    summed = churn["base"]["logOdds"] + sum(c["logOdds"] for c in contributions)
    assert summed == pytest.approx(churn["logOdds"], abs=1e-3)
    points = churn["base"]["score"] + sum(c["points"] for c in contributions)
    assert points == pytest.approx(churn["score"], abs=0.6)
    assert "note" not in churn


def test_a_score_no_enabled_trigger_reads_is_not_worked_out(stack: StackClient):
    """The demo stack (churn_risk off): two sessions, and explain has no churn score."""
    # given
    user = f"unscored-{uuid.uuid4().hex[:10]}"

    # when
    _two_sessions(stack, user)

    # then
    response = stack.get("/_local/explain/" + user)
    assert response.status_code == 200, response.text
    assert "churn" not in (response.json().get("scores") or {})


def test_a_user_who_goes_quiet_is_emailed_churn_risk_by_the_hourly_sweep(
    scoring_stack: StackClient,
):
    """Two sessions an hour apart score 17; with the shipped model, nine quiet days take the
    score through 70. Eleven virtual days on, one churn_risk email is in the outbox, and
    explain says the score crossed while the user was quiet."""
    # given
    stack = scoring_stack
    user = f"quiet-{uuid.uuid4().hex[:10]}"
    identify(stack, user, email=f"{user}@example.com", timezone=zone_where(stack.now(), 11))
    _page(stack, user, "home")
    stack.drain()
    advance(stack, HOUR)
    _page(stack, user, "pricing")
    stack.drain()

    # when
    advance(stack, 11 * DAY)

    # then
    subjects = [str(email["subject"]) for email in emails_to(stack, user)]
    assert subjects.count("We saved a little something for you") == 1
    (fired,) = [d for d in decisions(stack, user, "churn_risk") if d["outcome"] == "fired"]
    assert "churn score crossed 70 while quiet" in fired["reason"]
    assert fired["occurrence"].startswith("score@")
