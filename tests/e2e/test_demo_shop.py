"""The demo shop at /demo, in headless Chromium against the local stack: what a visitor of
`make run` does in under a minute, end to end."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from tests.arms import shopper_in
from tests.e2e.browser import launch_chromium
from tests.e2e.conftest import StackClient
from tests.e2e.shop import zone_where
from tests.e2e.test_browser_sdk import wait_until

pytestmark = pytest.mark.e2e

PRODUCTS = 6
MESSAGE = "[data-nudge-message]"
# What the abandoned-cart trigger collects from each Product Added and its email shows
# (triggers/abandoned_cart.yaml), and what ties the adds to one cart.
CART_FIELDS = {"cart_id", "product_id", "sku", "name", "price", "quantity", "url", "image_url"}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from launch_chromium()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    opened = browser.new_context()
    opened.set_default_timeout(20_000)
    yield opened
    opened.close()


def _visit(context: BrowserContext, stack: StackClient, path: str) -> Page:
    page = context.new_page()
    page.goto(stack.base_url + path)
    return page


def _visitor(page: Page) -> str:
    return str(page.evaluate("() => nudge.userId || nudge.anonymousId()"))


def _events_named(stack: StackClient, who: str, name: str, count: int) -> list[dict[str, Any]]:
    def found() -> list[dict[str, Any]]:
        events = [event for event in stack.events(who) if event.get("event") == name]
        return events if len(events) >= count else []

    result: list[dict[str, Any]] = wait_until(found, message=f"{count} {name} for {who}")
    return result


def _add(context: BrowserContext, stack: StackClient, product: str) -> None:
    page = _visit(context, stack, f"/demo/products/{product}")
    page.click("#add")
    page.wait_for_selector("#added:has-text('Added to cart')")
    page.evaluate("() => nudge.flush()")
    page.close()


def _as_visitor_in(context: BrowserContext, arm: str) -> str:
    """Makes the context's visitor one the shipped abandoned-cart experiment puts in ``arm``:
    the SDK's anonymousId (a cart added before signing in gets the visitor's arm), set
    before the first page load. Returns it."""
    visitor = shopper_in(f"demo-{uuid.uuid4().hex[:8]}", arm, anonymous=True)
    context.add_init_script(
        "if (!localStorage.getItem('nudge.anonymousId'))"
        f" localStorage.setItem('nudge.anonymousId', '{visitor}');"
    )
    return visitor


def test_the_catalogue_lists_the_products_with_pictures(
    stack: StackClient, context: BrowserContext
):
    """/demo shows every product, each with its picture and a link to its page."""
    # given
    page = _visit(context, stack, "/demo")

    # when
    products = page.locator(".product")
    page.wait_for_load_state("load")  # the pictures too

    # then
    assert products.count() == PRODUCTS
    assert page.locator(".product a[href^='/demo/products/']").count() == PRODUCTS
    widths = page.eval_on_selector_all(".product img", "images => images.map(i => i.naturalWidth)")
    assert len(widths) == PRODUCTS
    assert all(width > 0 for width in widths), widths  # every picture loaded


def test_a_product_page_sends_product_viewed(stack: StackClient, context: BrowserContext):
    """Opening a product page sends a Segment Product Viewed for that product."""
    # given
    page = _visit(context, stack, "/demo/products/boots")

    # when
    page.evaluate("() => nudge.flush()")

    # then
    (viewed,) = _events_named(stack, _visitor(page), "Product Viewed", 1)
    assert viewed["properties"]["product_id"] == "boots"
    assert viewed["properties"]["name"] == "Trail boots"
    assert viewed["properties"]["image_url"].endswith("/demo/static/products/boots.svg")


def test_two_products_added_share_one_cart(stack: StackClient, context: BrowserContext):
    """Adding two products stores two Product Added with the same cart_id, each with what
    the abandoned-cart email lists."""
    # given
    visitor = _visitor(_visit(context, stack, "/demo"))

    # when
    _add(context, stack, "mug")
    _add(context, stack, "boots")

    # then
    added = _events_named(stack, visitor, "Product Added", 2)
    assert {event["properties"]["product_id"] for event in added} == {"mug", "boots"}
    assert len({event["properties"]["cart_id"] for event in added}) == 1
    assert all(event["properties"].keys() >= CART_FIELDS for event in added), added


def test_the_panel_shows_the_profile_the_decisions_and_the_arm(
    stack: StackClient, context: BrowserContext
):
    """After adding to the cart, the side panel shows the stored profile, the pending
    abandoned-cart decision and the visitor's experiment arm, with the button to press."""
    # given
    _as_visitor_in(context, "h48")
    _visit(context, stack, "/demo")

    # when
    _add(context, stack, "lamp")
    page = _visit(context, stack, "/demo/cart")

    # then
    page.wait_for_selector("#decisions .decision[data-trigger='abandoned_cart'].pending")
    page.wait_for_selector("#profile:has-text('eventCounts')")
    page.wait_for_selector("#arm-note:has-text('arm h48')")
    assert "+2 days" in page.inner_text("#arm-note")
    assert "Desk lamp" in page.inner_text("main")


def test_a_visitor_in_the_holdout_is_told_why_no_email_comes(
    stack: StackClient, context: BrowserContext
):
    """A visitor the experiment holds out sees so in the panel, with a way to start over."""
    # given
    visitor = _as_visitor_in(context, "holdout")
    _visit(context, stack, "/demo")

    # when
    _add(context, stack, "boots")
    page = _visit(context, stack, "/demo")

    # then
    page.wait_for_selector("#arm-note:has-text('holdout')")
    assert "never sends it" in page.inner_text("#arm-note")
    with page.expect_navigation():
        page.click("#arm-note [data-start-over]")
    assert _visitor(page) != visitor


@pytest.fixture
def afternoon_tomorrow(browser: Browser, stack: StackClient) -> Iterator[BrowserContext]:
    """A browser whose zone puts a day from now at 13:00, outside quiet hours whatever CI's
    hour: the shop sends the browser's zone as the timezone trait when the visitor signs in."""
    zone = zone_where(stack.now() + timedelta(days=1), 13)
    opened = browser.new_context(timezone_id=zone)
    opened.set_default_timeout(20_000)
    yield opened
    opened.close()


def test_the_abandoned_cart_email_lists_both_products(
    stack: StackClient, afternoon_tomorrow: BrowserContext
):
    """Browse, add two products, sign in at checkout, leave, advance a day from the panel:
    the panel's outbox lists the abandoned-cart email, which names both products."""
    # given a visitor in the 24 h arm
    context = afternoon_tomorrow
    _as_visitor_in(context, "h24")
    email = f"demo-{uuid.uuid4().hex[:8]}@example.com"
    _visit(context, stack, "/demo")
    _add(context, stack, "mug")
    _add(context, stack, "scarf")
    _visit(context, stack, "/demo/cart").close()
    checkout = _visit(context, stack, "/demo/checkout")
    checkout.fill("#email", email)
    checkout.click("#identify")
    checkout.wait_for_selector("#signed:has-text('Signed in')")
    checkout.evaluate("() => nudge.flush()")
    home = _visit(context, stack, "/demo")
    home.wait_for_selector("#arm-note:has-text('arm h24')")

    # when
    home.click("button[data-advance='86400']")

    # then
    link = home.wait_for_selector("#outbox .email a", timeout=60_000)
    assert link is not None
    opened = _visit(context, stack, str(link.get_attribute("href")))
    assert "Ceramic mug" in opened.inner_text("body")
    assert "Wool scarf" in opened.inner_text("body")
    emails = [
        entry for entry in stack.get("/_local/outbox").json() if email in str(entry.get("to"))
    ]
    assert [entry["trigger"] for entry in emails] == ["abandoned_cart"]


def test_start_over_is_a_new_visitor(stack: StackClient, context: BrowserContext):
    """ "Start over" forgets the visitor: the shop comes back with a new anonymous id."""
    # given
    page = _visit(context, stack, "/demo")
    before = _visitor(page)

    # when
    with page.expect_navigation():
        page.click("#start-over")

    # then
    assert _visitor(page) != before
    assert page.inner_text("#cart-count") == "0"
    page.wait_for_selector(f"#identity:has-text('{_visitor(page)}')")


def test_staying_on_a_product_page_shows_the_offer(
    demo_stack: StackClient, context: BrowserContext
):
    """As `make run` serves it, 30 s of attention on a product page (the page's clock run
    with a mouse move now and then) brings the in-app offer onto that page."""
    # given
    page = context.new_page()
    page.clock.install()
    page.goto(demo_stack.base_url + "/demo/products/boots")

    # when
    for step in range(4):  # 40 s
        page.mouse.move(100 + step, 100)
        page.clock.run_for(10_000)
    page.evaluate("() => nudge.flush()")
    demo_stack.drain()

    # then
    page.wait_for_selector(MESSAGE, state="attached", timeout=20_000)
    text = page.evaluate(
        "() => document.querySelector('[data-nudge-message]').shadowRoot.textContent"
    )
    assert "Trail boots" in text
