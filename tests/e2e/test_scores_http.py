"""The local stack scores live: with the shipped churn prediction and model bundled beside
the triggers, a user's second session puts them in churn's audience, and explain answers
with their score and the model behind it."""

from __future__ import annotations

import uuid

from tests.e2e.conftest import StackClient
from tests.e2e.shop import advance


def _page(stack: StackClient, user_id: str, name: str) -> None:
    response = stack.post("/v1/page", {"userId": user_id, "name": name})
    assert response.status_code == 200, response.text


def test_a_second_session_is_scored_and_explain_shows_the_score(stack: StackClient):
    """Two visits an hour apart (two sessions): explain lists a churn score from 0 to 100
    and the shipped model's version."""
    # given
    user = f"scored-{uuid.uuid4().hex[:10]}"
    _page(stack, user, "home")
    stack.drain()
    advance(stack, 3600)

    # when
    _page(stack, user, "pricing")
    stack.drain()

    # then
    response = stack.get("/_local/explain/" + user)
    assert response.status_code == 200, response.text
    churn = response.json()["scores"]["churn"]
    assert 0 <= churn["score"] <= 100
    assert churn["model"].endswith("Z")
