"""Privacy requests through the local stack's HTTP API and the CLI: a person exported and
erased with the admin key, their later events dropped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any
from urllib.parse import quote

import pytest
import requests

from tests.e2e.conftest import REPO, REQUEST_TIMEOUT, StackClient
from tests.e2e.shop import add_to_cart, identify, new_id, track

pytestmark = pytest.mark.e2e

ADMIN = {"Authorization": "Bearer dev-admin-key"}


def _request(stack: StackClient, method: str, path: str, **headers: str) -> requests.Response:
    return stack.session.request(
        method, stack.url(path), headers=headers or None, timeout=REQUEST_TIMEOUT
    )


def _shopper(stack: StackClient) -> str:
    user = new_id("private")
    identify(stack, user, email=f"{user}@example.com", first_name="Ada")
    add_to_cart(stack, user, "cart-1", "sku-1", 9.5)
    stack.drain()
    return user


def test_erasure_without_the_admin_key_is_refused_and_erases_nothing(stack: StackClient):
    """DELETE with the write key (or none) is 401 with a JSON body; the person stays."""
    # given
    user = _shopper(stack)

    # when
    answers = [
        _request(stack, "DELETE", f"/v1/users/{user}"),
        _request(stack, "DELETE", f"/v1/users/{user}", Authorization="Bearer dev-write-key"),
    ]

    # then
    assert [answer.status_code for answer in answers] == [401, 401]
    assert answers[0].json()["field"] == "Authorization"
    assert stack.user(user) is not None


def test_export_returns_the_persons_data_as_one_document(stack: StackClient):
    """GET /v1/users/{id}/export with the admin key answers every item stored, by kind."""
    # given
    user = _shopper(stack)

    # when
    answer = _request(stack, "GET", f"/v1/users/{quote(user)}/export", **ADMIN)

    # then
    assert answer.status_code == 200, answer.text
    document = answer.json()
    kinds = {kind for part in document["partitions"] for kind in part["items"]}
    assert {"event", "profile"} <= kinds
    assert answer.headers["Cache-Control"] == "no-store"


def test_erasure_removes_the_person_and_drops_later_events(stack: StackClient):
    """DELETE with the admin key erases the person; an event sent afterwards is not kept."""
    # given
    user = _shopper(stack)

    # when
    answer = _request(stack, "DELETE", f"/v1/users/{quote(user)}", **ADMIN)
    track(stack, user, "Page Engaged", {"active_seconds": 5})
    stack.drain()

    # then
    assert answer.status_code == 200, answer.text
    assert answer.json()["deleted"]["event"] >= 2
    assert stack.user(user) is None


def test_erasure_is_idempotent(stack: StackClient):
    """A second DELETE answers 200 and deletes nothing more."""
    # given
    user = _shopper(stack)
    _request(stack, "DELETE", f"/v1/users/{quote(user)}", **ADMIN)

    # when
    again = _request(stack, "DELETE", f"/v1/users/{quote(user)}", **ADMIN)

    # then
    assert again.status_code == 200
    assert again.json()["deleted"] == {}


def test_nudge_forget_erases_from_a_laptop(stack: StackClient):
    """`nudge forget USER` against the stack's moto erases the person, as the API does."""
    # given
    user = _shopper(stack)
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": stack.aws_endpoint,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    }
    command = [sys.executable, "-m", "nudge.entrypoints.cli", "forget", user]
    command += ["--table", "nudge-local-Table", "--schedule-group", "nudge-local-timers"]

    # when
    done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=60)

    # then
    assert done.returncode == 0, done.stderr
    summary: dict[str, Any] = json.loads(done.stdout)
    assert summary["forgotten"][0] == f"u:{user}"
    assert stack.user(user) is None
