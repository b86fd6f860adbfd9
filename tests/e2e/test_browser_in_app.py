"""In-app messages end to end: the browser SDK in headless Chromium, connected to the local
stack's WebSocket API, showing what the shipped product_offer trigger decides (display: 5 s
after load or half the page read, never on /checkout*, kept for a day)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from tests.e2e.browser import launch_chromium
from tests.e2e.conftest import StackClient
from tests.e2e.shop import advance
from tests.e2e.test_browser_sdk import (
    hide,
    options_for,
    sdk_url,
    serve_site,
    wait_until,
)

pytestmark = pytest.mark.e2e

MESSAGE = "[data-nudge-message]"
SETTLE = 1.5  # real seconds for a pushed message to reach the page and be considered
SHOW_WAIT = 15_000  # ms a message may take to appear once its rules hold
T0 = datetime(2026, 12, 5, 9, 0, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    yield from serve_site()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from launch_chromium()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    opened = browser.new_context()
    opened.set_default_timeout(20_000)
    yield opened
    opened.close()


@pytest.fixture
def user() -> str:
    return f"inapp-{uuid.uuid4().hex[:10]}"


def _open(
    context: BrowserContext,
    stack: StackClient,
    site: str,
    user: str,
    *,
    path: str = "/products/sdk.html",
    tall: float | None = None,
    paused: bool = False,
) -> Page:
    """A shop page whose SDK knows the user and keeps a socket to the stack; with
    ``paused``, the page's clock stands still two seconds after install."""
    page = context.new_page()
    if paused:
        page.clock.install(time=T0)
    options = options_for(stack, socket=stack.websocket_url)
    page.goto(sdk_url(site, options, path=path, tall=tall, user=user))
    if paused:
        page.clock.pause_at(T0 + timedelta(seconds=2))
    _connected(stack, user)
    return page


def _connected(stack: StackClient, user: str) -> None:
    """Waits until the stack has the user's page on record (its $connect ran)."""
    wait_until(lambda: _open_pages(stack, user) > 0, message=f"a socket open for {user}")


def _open_pages(stack: StackClient, user: str) -> int:
    return len(stack.connections(user))


def _fire_offer(stack: StackClient, user: str, **properties: Any) -> None:
    """What the SDK reports after two minutes on a product page, which fires product_offer."""
    body = {
        "userId": user,
        "type": "track",
        "event": "Page Engaged",
        "properties": {
            "product_id": "sku-1",
            "name": "Trail Runner",
            "active_seconds": 120,
            **properties,
        },
    }
    assert stack.post("/v1/track", body).status_code == 200
    stack.drain()


def _shown(page: Page) -> int:
    return page.locator(MESSAGE).count()


def _message_text(page: Page) -> str:
    return str(
        page.evaluate("() => document.querySelector('[data-nudge-message]').shadowRoot.textContent")
    )


def _scroll_to(page: Page, fraction: float) -> None:
    page.evaluate(
        "(f) => window.scrollTo(0, (document.documentElement.scrollHeight - innerHeight) * f)",
        fraction,
    )


def test_a_message_waits_for_the_delay_after_load(
    stack: StackClient, site: str, context: BrowserContext, user: str
):
    """Pushed while a long page is open (and not scrolled), the offer is not shown before
    5 s after load, and is shown once they have passed."""
    # given
    page = _open(context, stack, site, user, tall=4, paused=True)
    _fire_offer(stack, user)
    time.sleep(SETTLE)
    page.clock.fast_forward(1500)  # 3.5 s after install: still inside the delay
    time.sleep(SETTLE)
    before = _shown(page)

    # when
    page.clock.fast_forward(3000)

    # then
    assert before == 0
    page.wait_for_selector(MESSAGE, state="attached", timeout=SHOW_WAIT)


def test_a_message_shows_once_half_the_page_was_scrolled(
    stack: StackClient, site: str, context: BrowserContext, user: str
):
    """Inside the delay, scrolling past half the page is enough (display match: any)."""
    # given
    page = _open(context, stack, site, user, tall=4, paused=True)
    _fire_offer(stack, user)
    time.sleep(SETTLE)
    before = _shown(page)

    # when
    _scroll_to(page, 0.6)

    # then
    assert before == 0
    page.wait_for_selector(MESSAGE, state="attached", timeout=SHOW_WAIT)


def test_a_message_is_never_shown_on_an_excluded_path(
    stack: StackClient, site: str, context: BrowserContext, user: str
):
    """On /checkout/..., past the delay and scrolled to the bottom, the offer stays hidden."""
    # given
    page = _open(context, stack, site, user, path="/checkout/sdk.html", tall=4, paused=True)
    _fire_offer(stack, user)
    time.sleep(SETTLE)

    # when
    page.clock.fast_forward(10_000)
    _scroll_to(page, 1.0)
    time.sleep(SETTLE)

    # then
    assert _shown(page) == 0


def test_a_message_kept_from_an_excluded_page_shows_on_the_next_page(
    stack: StackClient, site: str, context: BrowserContext, user: str
):
    """Not shown on checkout, the offer is still kept, and the next product page shows it."""
    # given
    checkout = _open(context, stack, site, user, path="/checkout/sdk.html")
    _fire_offer(stack, user)
    time.sleep(SETTLE)
    checkout.close()

    # when
    page = _open(context, stack, site, user)

    # then
    page.wait_for_selector(MESSAGE, state="attached", timeout=SHOW_WAIT)
    assert "Trail Runner" in _message_text(page)


def test_one_tab_of_two_shows_the_message(
    stack: StackClient, site: str, context: BrowserContext, user: str
):
    """Two open tabs of one person both hear of the offer; exactly one shows it."""
    # given
    first = _open(context, stack, site, user)
    second = _open(context, stack, site, user)
    wait_until(lambda: _open_pages(stack, user) == 2, message="both tabs connected")

    # when
    _fire_offer(stack, user)
    wait_until(lambda: _shown(first) + _shown(second) > 0, timeout=SHOW_WAIT / 1000)
    time.sleep(SETTLE * 2)  # long enough for a second copy to appear, if one would

    # then
    assert _shown(first) + _shown(second) == 1


def test_a_message_fired_with_no_page_open_shows_at_the_next_page_load(
    stack: StackClient, site: str, context: BrowserContext, user: str
):
    """Fired while the person had no page open, the offer shows on their next page."""
    # given
    _fire_offer(stack, user)

    # when
    page = _open(context, stack, site, user)

    # then
    page.wait_for_selector(MESSAGE, state="attached", timeout=SHOW_WAIT)


def test_a_message_not_shown_within_its_expiry_never_shows(
    stack: StackClient, site: str, context: BrowserContext, user: str
):
    """A day and a minute after the fire (its expires), the next page shows nothing."""
    # given
    _fire_offer(stack, user)
    advance(stack, 86_400 + 60)

    # when
    page = _open(context, stack, site, user)
    time.sleep(SETTLE)
    page.wait_for_timeout(6_000)  # past the display delay

    # then
    assert _shown(page) == 0


def test_event_data_in_a_message_shows_as_text(
    stack: StackClient, site: str, context: BrowserContext, user: str
):
    """A product name holding markup is shown as text: no element made, no script run."""
    # given
    hostile = '<img src=x onerror="window.__pwned = 1">'
    page = _open(context, stack, site, user)

    # when
    _fire_offer(stack, user, name=hostile)
    page.wait_for_selector(MESSAGE, state="attached", timeout=SHOW_WAIT)

    # then
    assert hostile in _message_text(page)
    images = page.evaluate(
        "() => document.querySelector('[data-nudge-message]').shadowRoot"
        ".querySelectorAll('img').length"
    )
    assert images == 0
    assert page.evaluate("() => window.__pwned") is None


def test_showing_and_dismissing_a_message_are_tracked(
    stack: StackClient, site: str, context: BrowserContext, user: str
):
    """The SDK reports In-App Message Shown and, on close, Dismissed, each with the fire and
    the trigger."""
    # given
    page = _open(context, stack, site, user)
    _fire_offer(stack, user)
    page.wait_for_selector(MESSAGE, state="attached", timeout=SHOW_WAIT)

    # when
    page.evaluate(
        "() => document.querySelector('[data-nudge-message]').shadowRoot"
        ".querySelector('[data-nudge-dismiss]').click()"
    )
    page.evaluate("() => nudge.flush()")

    # then
    def reported() -> list[dict[str, Any]]:
        events = stack.events(user)
        names = {"In-App Message Shown", "In-App Message Dismissed"}
        found = [event for event in events if event.get("event") in names]
        return found if len(found) == 2 else []

    events = wait_until(reported, message="Shown and Dismissed stored")
    assert {event["properties"]["trigger"] for event in events} == {"product_offer"}
    assert len({event["properties"]["fire_id"] for event in events}) == 1
    assert _shown(page) == 0


def test_two_minutes_of_attention_on_a_product_page_shows_the_offer_there(
    stack: StackClient, site: str, context: BrowserContext, user: str
):
    """With the page's clock run for 120 s of visible, active time (input every 20 s), the
    SDK's Page Engaged fires product_offer, and the offer appears on that same page (a
    short page: fully read, so the scroll rule holds)."""
    # given
    page = _open(context, stack, site, user, paused=True)
    page.evaluate("() => nudge.productViewed({product_id: 'sku-att', name: 'Attention Boot'})")

    # when
    for _ in range(7):  # 140 s, a mouse move every 20 s (the SDK pauses after 30 s idle)
        page.mouse.move(10 + _, 10)
        page.clock.run_for(20_000)
    wait_until(lambda: _engaged_at_least(stack, user, 120), message="Page Engaged at 120 s")
    stack.drain()

    # then
    page.wait_for_selector(MESSAGE, state="attached", timeout=SHOW_WAIT)
    assert "Attention Boot" in _message_text(page)


def test_time_in_a_hidden_tab_does_not_count_towards_the_offer(
    stack: StackClient, site: str, context: BrowserContext, user: str
):
    """200 s with the tab hidden report no active time worth an offer: nothing fires."""
    # given
    page = _open(context, stack, site, user, paused=True)
    page.evaluate("() => nudge.productViewed({product_id: 'sku-hid', name: 'Hidden Boot'})")
    hide(page)

    # when
    for step in range(10):
        page.mouse.move(10 + step, 10)
        page.clock.run_for(20_000)
    page.evaluate("() => nudge.flush()")
    stack.drain()

    # then
    assert not _engaged_at_least(stack, user, 120)
    decisions = stack.get(f"/_local/explain/{user}").json()["decisions"]
    assert [
        d for d in decisions if d["trigger"] == "product_offer" and d["outcome"] == "fired"
    ] == []


def _engaged_at_least(stack: StackClient, user: str, seconds: int) -> bool:
    return any(
        event.get("event") == "Page Engaged"
        and isinstance(event.get("properties", {}).get("active_seconds"), int | float)
        and event["properties"]["active_seconds"] >= seconds
        for event in stack.events(user)
    )
