"""What the functions log carries no personal data: a whole journey (traits, an email sent,
an in-app message, a refused request) through a stack of its own, then its log read back."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from tests.arms import shopper_in
from tests.e2e.conftest import StackClient, _run_stack
from tests.e2e.shop import add_to_cart, advance, emails_to, identify, track, zone_where

pytestmark = pytest.mark.e2e

DAY = 86_400
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
SECRET_NAME = "Quillon-Zephyrine"  # a first name no log line could hold by chance
PHONE = "+44 20 7946 0958"


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[StackClient, Path]]:
    folder = tmp_path_factory.mktemp("logged-stack")
    for stack in _run_stack(None, folder):
        yield stack, folder


def _journey(stack: StackClient) -> str:
    """A shopper with traits abandons a cart and gets the email; a product page look fires
    the in-app offer; a malformed beacon carrying an email is refused."""
    user = shopper_in(f"logs-{id(stack)}")
    email = f"{user}@example.com"
    zone = zone_where(stack.now() + timedelta(days=1), 13)
    identify(stack, user, email=email, first_name=SECRET_NAME, phone=PHONE, timezone=zone)
    add_to_cart(stack, user, "cart-logs", "sku-1", 12.5)
    track(stack, user, "Page Engaged", {"product_id": "sku-1", "active_seconds": 130})
    refused = stack.post("/v1/track", {"userId": user, "traits": {"email": email}})
    assert refused.status_code == 400
    advance(stack, DAY + 60)
    assert emails_to(stack, user), "the journey should have sent the abandoned-cart email"
    return email


def test_no_email_address_or_trait_reaches_the_logs(logged: tuple[StackClient, Path]):
    """After a journey that stored, rendered and sent personal data, the functions' log
    lines hold no email address, no trait value."""
    # given
    stack, folder = logged
    email = _journey(stack)
    stack.drain()

    # when
    text = "\n".join(path.read_text(errors="replace") for path in folder.glob("stack-*.log"))

    # then
    assert '"Sends"' in text, "the log should hold the functions' own lines (Send's metrics)"
    assert email not in text
    assert EMAIL.findall(text) == [], "an email address in the log"
    assert SECRET_NAME not in text
    assert PHONE not in text
