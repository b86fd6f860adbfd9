"""Segment-compatible browser libraries from npm, unchanged, in headless Chromium, pointed
at the local stack: what they send is stored (docs/sdk.md, "Compatibility")."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from tests.e2e.browser import launch_chromium
from tests.e2e.conftest import StackClient
from tests.e2e.test_browser_sdk import NODE_MODULES, serve_site, stored

pytestmark = pytest.mark.e2e

ANALYTICS_NEXT = "@segment/analytics-next/dist/umd/index.js"  # UMD: window.AnalyticsNext
RUDDERSTACK = "@rudderstack/analytics-js/dist/npm/modern/bundled/umd/index.js"


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    yield from serve_site()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    yield from launch_chromium()


@pytest.fixture
def page(browser: Browser, site: str) -> Iterator[Page]:
    context = browser.new_context()
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    opened.goto(site + "/next.html")
    yield opened
    context.close()


def _library(name: str) -> str:
    if not (NODE_MODULES / name).is_file():
        pytest.fail(f"no {name} in {NODE_MODULES}: `make test` runs npm ci in tests/e2e/npm")
    return "/npm/" + name


def _kinds(events: list[dict[str, Any]]) -> list[str]:
    return sorted(str(event.get("event") or event["type"]) for event in events)


def test_analytics_next_page_identify_and_track_are_stored(
    stack: StackClient, site: str, page: Page
):
    """@segment/analytics-next (its UMD bundle) with cdnSettings pointing Segment.io at
    the stack delivers page, identify and track calls that are stored under the user."""
    # given
    user = f"ajs-{uuid.uuid4().hex[:10]}"
    host = stack.base_url.removeprefix("http://") + "/v1"
    page.add_script_tag(url=site + _library(ANALYTICS_NEXT))
    settings = {
        "integrations": {
            "Segment.io": {"apiKey": stack.write_key, "apiHost": host, "protocol": "http"}
        },
        "metrics": {"host": host, "sampleRate": 0},
    }

    # when
    page.evaluate(
        """async ([writeKey, settings, user]) => {
            const [analytics] = await AnalyticsNext.AnalyticsBrowser.load(
                {writeKey, cdnSettings: settings});
            await analytics.identify(user, {email: user + "@example.com"});
            await analytics.page("Home");
            await analytics.track("Product Viewed", {product_id: "p-1", price: 3});
        }""",
        [stack.write_key, settings, user],
    )

    # then
    events = stored(stack, user, 3)
    assert _kinds(events) == ["Product Viewed", "identify", "page"]
    assert {e["context"]["library"]["name"] for e in events} == {"analytics.js"}


def test_rudderstack_page_identify_and_track_are_stored(stack: StackClient, site: str, page: Page):
    """@rudderstack/analytics-js (its bundled UMD build) with a local source configuration
    (getSourceConfig) and the stack as data plane delivers page, identify and track calls."""
    # given
    user = f"rs-{uuid.uuid4().hex[:10]}"
    page.add_script_tag(url=site + _library(RUDDERSTACK))
    source = {
        "source": {
            "id": "nudge-local",
            "name": "Nudge local",
            "writeKey": stack.write_key,
            "enabled": True,
            "workspaceId": "local",
            "updatedAt": "2026-01-01T00:00:00.000Z",
            "config": {},
            "destinations": [],
        }
    }

    # when
    page.evaluate(
        """([writeKey, dataPlane, source, user]) => new Promise((resolve, reject) => {
            const analytics = new rudderanalytics.RudderAnalytics();
            analytics.load(writeKey, dataPlane, {
                getSourceConfig: () => source,
                onLoaded: () => {
                    analytics.identify(user, {email: user + "@example.com"});
                    analytics.page("Home");
                    analytics.track("Product Viewed", {product_id: "p-1", price: 3}, resolve);
                },
            });
            setTimeout(() => reject(new Error("rudderstack never loaded")), 10000);
        })""",
        [stack.write_key, stack.base_url, source, user],
    )

    # then
    events = stored(stack, user, 3)
    assert _kinds(events) == ["Product Viewed", "identify", "page"]
    assert json.dumps(events).count('"RudderLabs JavaScript SDK"') >= 1
