"""A real browser (headless Chromium) posting beacons cross-origin to the local stack."""

from __future__ import annotations

import functools
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from tests.e2e.browser import launch_chromium
from tests.e2e.conftest import FIXTURES, StackClient

pytestmark = pytest.mark.e2e

POLL_ATTEMPTS = 40
POLL_INTERVAL = 0.25


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def page_origin() -> Iterator[str]:
    """A static site on its own port: another origin than the stack's."""
    handler = functools.partial(_QuietHandler, directory=str(FIXTURES / "browser"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from launch_chromium()


@pytest.fixture
def page(browser: Browser, page_origin: str) -> Iterator[Page]:
    context = browser.new_context()
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    opened.goto(page_origin + "/beacon.html")
    yield opened
    context.close()


def _stored_ids(stack: StackClient, user_id: str) -> list[str]:
    """The messageIds stored for a user, polled until some appear (bounded)."""
    for _ in range(POLL_ATTEMPTS):
        events = stack.events(user_id)
        if events:
            return [str(event["messageId"]) for event in events]
        time.sleep(POLL_INTERVAL)
    return []


def _message(prefix: str) -> dict[str, str]:
    suffix = uuid.uuid4().hex[:10]
    return {"userId": f"{prefix}-{suffix}", "event": "Viewed Product", "messageId": f"m-{suffix}"}


def test_send_beacon_returns_true(stack: StackClient, page: Page):
    """navigator.sendBeacon accepts the cross-origin beacon for delivery."""
    # given
    message = _message("beacon")

    # when
    queued = page.evaluate(
        "([url, key, message]) => sendWithBeacon(url, key, message)",
        [stack.base_url, stack.write_key, message],
    )

    # then
    assert queued is True


def test_send_beacon_event_is_stored(stack: StackClient, page: Page):
    """A text/plain sendBeacon with the write key in the query string is stored."""
    # given
    message = _message("beacon")

    # when
    page.evaluate(
        "([url, key, message]) => sendWithBeacon(url, key, message)",
        [stack.base_url, stack.write_key, message],
    )

    # then
    assert _stored_ids(stack, message["userId"]) == [message["messageId"]]


def test_preflighted_fetch_is_answered_and_readable(stack: StackClient, page: Page):
    """A JSON fetch with Basic auth passes CORS preflight and its response is readable."""
    # given
    message = _message("fetch")

    # when
    result = page.evaluate(
        "([url, key, message]) => sendWithFetch(url, key, message)",
        [stack.base_url, stack.write_key, message],
    )

    # then
    assert result == {"status": 200, "body": {"success": True}}


def test_preflighted_fetch_event_is_stored(stack: StackClient, page: Page):
    """A JSON fetch with Basic auth from another origin is stored."""
    # given
    message = _message("fetch")

    # when
    page.evaluate(
        "([url, key, message]) => sendWithFetch(url, key, message)",
        [stack.base_url, stack.write_key, message],
    )

    # then
    assert _stored_ids(stack, message["userId"]) == [message["messageId"]]


def _stored_events(stack: StackClient, user_id: str, count: int) -> list[dict[str, Any]]:
    """A user's stored events, polled until at least ``count`` are there (bounded)."""
    events: list[dict[str, Any]] = []
    for _ in range(POLL_ATTEMPTS):
        stack.drain()
        events = stack.events(user_id)
        if len(events) >= count:
            break
        time.sleep(POLL_INTERVAL)
    return events


@pytest.fixture
def demo(browser: Browser, stack: StackClient) -> Iterator[Page]:
    context = browser.new_context()
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    opened.goto(stack.base_url + "/demo/products/mug")
    yield opened
    context.close()


def test_the_sdk_sends_the_demo_shops_clicks_as_one_persons_events(stack: StackClient, demo: Page):
    """The demo shop's SDK beacons (a product page, add to cart, sign in at checkout) end up
    under the user."""
    # given
    email = f"shopper-{uuid.uuid4().hex[:8]}@example.com"
    demo.click("#add")
    demo.wait_for_selector("#added:has-text('Added to cart')")

    # when
    demo.goto(stack.base_url + "/demo/checkout")
    demo.fill("#email", email)
    demo.click("#identify")
    demo.evaluate("() => nudge.flush()")

    # then
    events = _stored_events(stack, email, 6)
    kinds = {str(event.get("event") or event["type"]) for event in events}
    assert {"page", "Product Viewed", "Product Added", "Checkout Started", "identify"} <= kinds
    added = next(event for event in events if event.get("event") == "Product Added")
    assert added["properties"]["cart_id"].startswith("cart-")
    assert added["context"]["library"]["name"] == "nudge.js"
