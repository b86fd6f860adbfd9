"""The shipped templates render with a realistic context, built the way Send builds it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from nudge.domain.messages import FireMessage
from nudge.domain.person import PersonId
from nudge.domain.profile import Profile
from nudge.domain.render import Renderer, RenderError, render_context, template_problems
from nudge.domain.tokens import verify_token

TEMPLATES = Path(__file__).resolve().parents[2] / "triggers" / "templates"
PUBLIC_URL = "https://nudge.shop.example"
KEY = b"test-tracking-key"

ADA = Profile(
    person=PersonId.user("user-42"),
    user_id="user-42",
    traits={"first_name": "Ada", "name": "Ada Lovelace", "email": "ada@example.com"},
    sessions=3,
    events=12,
)
CART_ITEMS = [
    {
        "name": "Trail Runner 2",
        "price": 129.0,
        "quantity": 1,
        "image_url": "https://cdn.shop.example/trail-runner.jpg",
        "url": "https://shop.example/p/trail-runner-2",
    },
    {
        "name": "Wool Socks <3-pack>",
        "price": 18.5,
        "quantity": 2,
        "image_url": None,
        "url": "https://shop.example/p/wool-socks",
    },
]
CHECKOUT = {
    "type": "track",
    "event": "Checkout Started",
    "userId": "user-42",
    "timestamp": "2026-11-28T12:00:00.000Z",
    "properties": {"value": 1200, "currency": "EUR"},
}
PRODUCT_VIEWED = {
    "type": "track",
    "event": "Product Viewed",
    "userId": "user-42",
    "timestamp": "2026-11-28T11:00:00.000Z",
    "properties": {"name": "Trail Runner 2", "url": "https://shop.example/p/trail-runner-2"},
}


def _context(
    trigger: str,
    event: dict[str, Any],
    collected: dict[str, Any] | None = None,
    profile: Profile = ADA,
) -> dict[str, Any]:
    fire = FireMessage(
        fire_id="fire-1",
        trigger=trigger,
        person=profile.person,
        user_id=profile.user_id,
        fired_at="2026-12-04T12:00:00.000Z",
        channel="email",
        template=trigger,
        event=event,
        context=collected or {},
    )
    return render_context(fire, profile, "ada@example.com", PUBLIC_URL, KEY)


def _cart_email() -> Any:
    context = _context("abandoned_cart", {"event": "Product Added"}, {"items": CART_ITEMS})
    return Renderer(TEMPLATES).email("abandoned_cart", context)


@pytest.mark.parametrize(
    ("name", "channel"),
    [
        ("abandoned_cart", "email"),
        ("product_interest", "email"),
        ("re_engagement", "email"),
        ("vip_call", "webhook"),
        ("vip_call_hubspot", "webhook"),
        ("vip_call_salesforce", "webhook"),
    ],
)
def test_shipped_templates_have_no_problems(name: str, channel: str) -> None:
    """Every shipped template passes the checks `nudge validate` runs on templates."""
    # given / when
    problems = template_problems(TEMPLATES, name, channel)

    # then
    assert problems == []


def test_abandoned_cart_html_lists_the_cart_items() -> None:
    """The abandoned-cart HTML names each cart item with its quantity and price, escaped."""
    # given / when
    html = _cart_email().html

    # then
    assert "Hi Ada," in html
    assert "Trail Runner 2</a> \u00d7 1: 129.0" in html
    assert "Wool Socks &lt;3-pack&gt;</a> \u00d7 2: 18.5" in html
    assert '<img src="https://cdn.shop.example/trail-runner.jpg"' in html


def test_abandoned_cart_html_links_through_signed_click_tokens() -> None:
    """Item links in the abandoned-cart HTML are signed click links to the item's page."""
    # given / when
    html = _cart_email().html

    # then
    token = html.split(f'href="{PUBLIC_URL}/c/', 1)[1].split('"', 1)[0]
    claims = verify_token(token, KEY)
    assert claims["url"] == "https://shop.example/p/trail-runner-2"
    assert claims["k"] == "c"


def test_abandoned_cart_text_lists_items_and_unsubscribe_link() -> None:
    """The plain-text part lists each item with its URL and ends with the unsubscribe link."""
    # given / when
    text = _cart_email().text

    # then
    assert "- Trail Runner 2 x 1: 129.0 (https://shop.example/p/trail-runner-2)" in text
    assert "- Wool Socks <3-pack> x 2: 18.5" in text
    assert f"Unsubscribe: {PUBLIC_URL}/u/" in text


def test_abandoned_cart_unsubscribe_link_names_the_address() -> None:
    """The unsubscribe token signs the fire, the person and the address it was sent to."""
    # given
    text = _cart_email().text

    # when
    token = text.split(f"{PUBLIC_URL}/u/", 1)[1].split()[0]

    # then
    claims = verify_token(token, KEY)
    assert claims == {
        "f": "fire-1",
        "p": "u:user-42",
        "t": "abandoned_cart",
        "k": "u",
        "e": "ada@example.com",
    }


def test_product_interest_email_names_the_viewed_product() -> None:
    """The product-interest email names the product from the triggering event and links it."""
    # given
    context = _context("product_interest", PRODUCT_VIEWED)

    # when
    email = Renderer(TEMPLATES).email("product_interest", context)

    # then
    assert email.subject == "Still thinking about Trail Runner 2?"
    assert 'href="https://shop.example/p/trail-runner-2"' in email.html
    assert "Trail Runner 2 is still here" in email.text


def test_re_engagement_email_renders_without_an_event() -> None:
    """The re-engagement email, fired by inactivity, renders from an empty event."""
    # given
    context = _context("re_engagement", {})

    # when
    email = Renderer(TEMPLATES).email("re_engagement", context)

    # then
    assert email.subject == "We miss you"
    assert "It has been a while" in email.text


def test_generic_vip_call_renders_a_task_object() -> None:
    """The generic vip_call body is a JSON task with the person's email, id and checkout time."""
    # given
    context = _context("vip_checkout_call", CHECKOUT)

    # when
    body = Renderer(TEMPLATES).webhook("vip_call", context)

    # then
    assert body == {
        "type": "task",
        "subject": "Call VIP Ada Lovelace about an unfinished checkout",
        "email": "ada@example.com",
        "userId": "user-42",
        "checkoutStartedAt": "2026-11-28T12:00:00.000Z",
    }


@pytest.mark.parametrize("name", ["vip_call", "vip_call_hubspot", "vip_call_salesforce"])
def test_vip_call_bodies_stay_json_with_quotes_in_the_name(name: str) -> None:
    """A name with quotes and a backslash still renders valid JSON, not a dead letter."""
    # given
    name_with_quotes = 'Bob "B\\" <Tables>'
    traits = {"name": name_with_quotes, "email": "bob@example.com"}
    odd = Profile(person=PersonId.user("user-7"), user_id="user-7", traits=traits)
    context = _context("vip_checkout_call", CHECKOUT, profile=odd)

    # when
    body = Renderer(TEMPLATES).webhook(name, context)

    # then
    subject = body.get("subject") or body.get("Subject") or body["properties"]["hs_task_subject"]
    assert subject == f"Call VIP {name_with_quotes} about an unfinished checkout"


def test_hubspot_example_is_a_crm_v3_task_create_body() -> None:
    """The HubSpot example is {"properties": ...} with the task fields HubSpot's v3 API reads."""
    # given
    context = _context("vip_checkout_call", CHECKOUT)

    # when
    body = Renderer(TEMPLATES).webhook("vip_call_hubspot", context)

    # then
    properties = body["properties"]
    assert set(body) == {"properties"}
    assert properties["hs_task_subject"] == "Call VIP Ada Lovelace about an unfinished checkout"
    assert "ada@example.com" in properties["hs_task_body"]
    assert "user-42" in properties["hs_task_body"]
    assert properties["hs_timestamp"] == "2026-11-28T12:00:00.000Z"
    assert properties["hs_task_status"] == "NOT_STARTED"
    assert properties["hs_task_priority"] == "HIGH"
    assert properties["hs_task_type"] == "CALL"


def test_salesforce_example_is_a_task_sobject_create_body() -> None:
    """The Salesforce example has the Task sObject fields, with a date-only ActivityDate."""
    # given
    context = _context("vip_checkout_call", CHECKOUT)

    # when
    body = Renderer(TEMPLATES).webhook("vip_call_salesforce", context)

    # then
    assert body["Subject"] == "Call VIP Ada Lovelace about an unfinished checkout"
    assert "ada@example.com" in body["Description"]
    assert body["Priority"] == "High"
    assert body["Status"] == "Not Started"
    assert body["ActivityDate"] == "2026-11-28"
    assert body["TaskSubtype"] == "Call"


def test_click_refuses_a_url_that_is_not_http() -> None:
    """click() turns a javascript: or missing URL into '#', never a signed redirect."""
    # given
    context = _context("abandoned_cart", {})

    # when
    links = [context["click"]("javascript:alert(1)"), context["click"](None)]

    # then
    assert links == ["#", "#"]


def test_a_filter_given_a_missing_value_is_a_render_error(tmp_path: Path) -> None:
    """`{{ traits.email | tojson }}` for a person without an email is refused, not a crash."""
    # given
    (tmp_path / "hook.json.j2").write_text('{"email": {{ traits.email | tojson }}}')
    renderer = Renderer(tmp_path)

    # when / then
    with pytest.raises(RenderError, match=r"hook\.json\.j2"):
        renderer.webhook("hook", {"traits": {}})


def test_product_interest_email_renders_without_a_product_url() -> None:
    """A Product Viewed without properties.url (the trigger does not require one) still
    renders: the email names the product and links nothing, rather than dead-lettering."""
    # given
    viewed = {**PRODUCT_VIEWED, "properties": {"name": "Trail Runner 2", "dwell_seconds": 150}}
    context = _context("product_interest", viewed)

    # when
    email = Renderer(TEMPLATES).email("product_interest", context)

    # then
    assert "Trail Runner 2 is still here, waiting for you." in email.text
    assert "href" not in email.html.split("Unsubscribe")[0]


def test_product_interest_email_renders_from_an_event_without_a_name() -> None:
    """Neither name nor url: the email still renders, with the generic words."""
    # given
    context = _context("product_interest", {**PRODUCT_VIEWED, "properties": {"dwell_seconds": 150}})

    # when
    email = Renderer(TEMPLATES).email("product_interest", context)

    # then
    assert email.subject == "Still thinking about it?"
    assert "This product is still here" in email.text
