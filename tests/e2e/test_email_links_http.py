"""The links in an email over real HTTP: open pixel, click redirect, one-click unsubscribe."""

from __future__ import annotations

import uuid

import pytest
import requests
from nudge.adapters.suppression import SuppressionStore
from nudge.domain.tokens import sign_token

from local.template import LocalNames
from tests.e2e.conftest import REQUEST_TIMEOUT, TRACKING_SECRET, StackClient

pytestmark = pytest.mark.e2e

TARGET = "https://acme.example/cart?id=42&utm_source=nudge"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def _user() -> str:
    return f"mail-{uuid.uuid4().hex[:10]}"


def _token(kind: str, user_id: str, **extra: str) -> str:
    claims = {"k": kind, "f": "fire-e2e", "p": f"u:{user_id}", "t": "abandoned_cart", **extra}
    return sign_token(claims, TRACKING_SECRET.encode())


def _get(stack: StackClient, path: str) -> requests.Response:
    return stack.session.get(stack.url(path), allow_redirects=False, timeout=REQUEST_TIMEOUT)


def _suppressions(stack: StackClient) -> SuppressionStore:
    return SuppressionStore(stack.aws("dynamodb"), LocalNames().physical("Table"))


def test_open_pixel_is_a_gif_that_is_never_cached(stack: StackClient):
    """GET /o/{token} serves the 43-byte transparent GIF as image/gif with no-store."""
    # given
    path = f"/o/{_token('o', _user())}"
    # when
    response = _get(stack, path)
    # then
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/gif"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.content.startswith(b"GIF89a\x01\x00\x01\x00")
    assert len(response.content) == 43


def test_open_is_stored_as_an_event(stack: StackClient):
    """Loading the pixel stores one 'Email Opened' event for the token's person."""
    # given
    user_id = _user()
    path = f"/o/{_token('o', user_id)}"
    # when
    _get(stack, path)
    _get(stack, path)
    # then
    assert [event["event"] for event in stack.events(user_id)] == ["Email Opened"]


def test_click_redirects_to_the_signed_url(stack: StackClient):
    """GET /c/{token} answers 302 to exactly the URL the token signed."""
    # given
    path = f"/c/{_token('c', _user(), url=TARGET)}"
    # when
    response = _get(stack, path)
    # then
    assert response.status_code == 302
    assert response.headers["Location"] == TARGET


def test_click_with_an_altered_token_does_not_redirect(stack: StackClient):
    """A click token whose signed URL was swapped for another gets a 400 and no Location."""
    # given
    user_id = _user()
    ours = _token("c", user_id, url=TARGET)
    forged = _token("c", user_id, url="https://evil.example/")
    spliced = forged[:-43] + ours[-43:]  # the forged claims under our signature
    # when
    response = _get(stack, f"/c/{spliced}")
    # then
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert response.json()["code"] == "invalid_token"
    assert stack.events(user_id) == []


def test_one_click_post_unsubscribes(stack: StackClient):
    """POST /u/{token} with List-Unsubscribe=One-Click suppresses the address and says so."""
    # given
    user_id = _user()
    email = f"{user_id}@example.com"
    url = stack.url(f"/u/{_token('u', user_id, e=email)}")
    # when
    response = stack.session.post(
        url, data="List-Unsubscribe=One-Click", headers=FORM, timeout=REQUEST_TIMEOUT
    )
    # then
    assert response.status_code == 200
    assert _suppressions(stack).is_suppressed("email", email)
    assert [event["event"] for event in stack.events(user_id)] == ["Unsubscribed"]


def test_unsubscribe_page_alone_does_not_unsubscribe(stack: StackClient):
    """GET /u/{token} shows the confirm page and leaves the address subscribed."""
    # given
    user_id = _user()
    email = f"{user_id}@example.com"
    # when
    response = _get(stack, f"/u/{_token('u', user_id, e=email)}")
    # then
    assert response.status_code == 200
    assert '<form method="post"' in response.text
    assert not _suppressions(stack).is_suppressed("email", email)
