"""The demo shop at /demo, in headless Chromium against the local stack: what a visitor of
`make run` does in under a minute, end to end."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from tests.arms import arm_of
from tests.e2e.conftest import StackClient
from tests.e2e.shop import zone_where
from tests.e2e.test_browser_sdk import launch_chromium, wait_until

pytestmark = pytest.mark.e2e

PRODUCTS = 4
MESSAGE = "[data-nudge-message]"


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


def _email_in_arm(arm: str) -> str:
    """An email (the demo's userId) the shipped abandoned-cart experiment puts in ``arm``."""
    prefix = f"demo-{uuid.uuid4().hex[:8]}"
    return next(
        email
        for email in (f"{prefix}-{n}@example.com" for n in range(1, 500))
        if arm_of(email) == arm
    )


def test_the_catalogue_lists_the_products_with_pictures(
    stack: StackClient, context: BrowserContext
):
    """/demo shows every product, each with its picture and a link to its page."""
    # given
    page = _visit(context, stack, "/demo")

    # when
    products = page.locator(".product")

    # then
    assert products.count() == PRODUCTS
    assert page.locator(".product svg").count() == PRODUCTS
    assert page.locator(".product a[href^='/demo/products/']").count() == PRODUCTS


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


def test_two_products_added_share_one_cart(stack: StackClient, context: BrowserContext):
    """Adding two products stores two Product Added with the same cart_id."""
    # given
    visitor = _visitor(_visit(context, stack, "/demo"))

    # when
    _add(context, stack, "mug")
    _add(context, stack, "boots")

    # then
    added = _events_named(stack, visitor, "Product Added", 2)
    assert {event["properties"]["product_id"] for event in added} == {"mug", "boots"}
    assert len({event["properties"]["cart_id"] for event in added}) == 1


def test_the_panel_shows_the_profile_and_the_decisions(stack: StackClient, context: BrowserContext):
    """After adding to the cart, the side panel shows the stored profile and the pending
    abandoned-cart decision with the visitor's arm."""
    # given
    _visit(context, stack, "/demo")

    # when
    _add(context, stack, "lamp")
    page = _visit(context, stack, "/demo/cart")

    # then
    page.wait_for_selector("#decisions .decision:has-text('abandoned_cart')")
    page.wait_for_selector("#profile:has-text('eventCounts')")
    assert "Desk lamp" in page.inner_text("main")


def test_the_abandoned_cart_email_lists_both_products(stack: StackClient, context: BrowserContext):
    """Sign in, add two products, leave, advance a day from the panel: the panel's outbox
    lists the abandoned-cart email, which names both products."""
    # given
    email = _email_in_arm("h24")
    checkout = _visit(context, stack, "/demo/checkout")
    checkout.fill("#email", email)
    checkout.click("#identify")
    # a zone where the email falls due at 13:00, outside quiet hours, whatever CI's hour
    zone = zone_where(stack.now() + timedelta(days=1), 13)
    checkout.evaluate("([e, z]) => nudge.identify(e, {timezone: z})", [email, zone])
    checkout.evaluate("() => nudge.flush()")
    _add(context, stack, "mug")
    _add(context, stack, "scarf")
    home = _visit(context, stack, "/demo")

    # when
    home.click("button[data-advance='86400']")

    # then
    home.wait_for_selector("#outbox .email", timeout=60_000)
    emails = [
        entry for entry in stack.get("/_local/outbox").json() if email in str(entry.get("to"))
    ]
    assert [entry["trigger"] for entry in emails] == ["abandoned_cart"]
    assert "Ceramic mug" in emails[0]["html"]
    assert "Wool scarf" in emails[0]["html"]


def test_start_over_is_a_new_visitor(stack: StackClient, context: BrowserContext):
    """ "Start over" forgets the visitor: the shop comes back with a new anonymous id."""
    # given
    page = _visit(context, stack, "/demo")
    before = _visitor(page)

    # when
    page.click("#start-over")
    page.wait_for_load_state()

    # then
    assert _visitor(page) != before
    assert page.inner_text("#cart-count") == "0"


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
