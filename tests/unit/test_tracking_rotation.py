"""Rotating the key that signs email links: the new key signs, the retired one still
verifies the links already sent, until it is dropped from the tracking secret parameter."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from nudge.config import ConfigError, Settings
from nudge.delivery_config import TrackingSettings
from nudge.domain.errors import TokenRefused
from nudge.domain.person import PersonId
from nudge.domain.tokens import ClickClaims, UnsubscribeClaims, sign_link
from nudge.service.track import TrackService

from tests.fakes import InMemoryPeople, InMemorySuppressionList

NOW = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
NEW, OLD = "a-new-tracking-secret", "the-old-tracking-secret"
ADA = PersonId.user("ada")
SHOP = "https://shop.example/cart"


def _service(secret: str) -> TrackService:
    tracking = TrackingSettings.of(secret)
    return TrackService(
        events=InMemoryPeople(),
        suppressions=InMemorySuppressionList(),
        settings=Settings.from_env({"NUDGE_TABLE_NAME": "t", "NUDGE_WRITE_KEY": "k"}),
        secret=tracking.secret,
        retired=tracking.retired,
    )


def _click(key: str) -> str:
    return sign_link(ClickClaims("fire-1", ADA, "abandoned_cart", url=SHOP), key.encode())


def test_the_first_key_signs_and_the_rest_are_retired():
    """ "new,old": new is the key links are signed with from now on; old only verifies."""
    # when
    tracking = TrackingSettings.of(f"{NEW}, {OLD}")

    # then
    assert (tracking.secret, tracking.retired) == (NEW.encode(), (OLD.encode(),))


def test_no_key_at_all_is_a_configuration_error():
    """An empty or comma-only value stops the function at cold start."""
    # when / then
    with pytest.raises(ConfigError):
        TrackingSettings.of(" , ")


def test_a_link_sent_before_the_rotation_still_works():
    """A click link signed with the old key redirects after the key was rotated."""
    # given
    service = _service(f"{NEW},{OLD}")

    # when
    click = service.click(_click(OLD), NOW)

    # then
    assert click.url == SHOP


def test_a_link_signed_with_a_dropped_key_is_refused():
    """Once the old key is dropped, its links no longer verify."""
    # given
    service = _service(NEW)

    # when / then
    with pytest.raises(TokenRefused, match="signature does not match"):
        service.click(_click(OLD), NOW)


def test_a_refusal_names_what_the_signing_key_found():
    """A click token at the unsubscribe page is refused for its kind, not its signature,
    whichever key signed it."""
    # given
    service = _service(f"{NEW},{OLD}")

    # when / then
    with pytest.raises(TokenRefused) as refused:
        service.unsubscribe_page(_click(OLD))
    assert "signature" not in refused.value.message


def test_unsubscribing_through_an_old_link_suppresses_the_address():
    """One-click unsubscribe from an email sent before the rotation still suppresses."""
    # given
    service = _service(f"{NEW},{OLD}")
    claims = UnsubscribeClaims("fire-1", ADA, "abandoned_cart", email="ada@example.com")

    # when
    done = service.unsubscribe(sign_link(claims, OLD.encode()), NOW)

    # then
    assert done.newly_suppressed is True
