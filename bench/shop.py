"""A simulated shop's traffic: shoppers, their sessions and what the SDK sends for them.

Seeded and pure (no clock, no I/O): ``simulate(...)`` returns every call a browser (or a
server) would send, with its time, as Segment messages shaped like analytics.js's (page,
identify and track with the full ``context``: about 700-1,000 bytes of JSON each) or, for
a server-side source, like analytics-python's (no browser context).

Shoppers come back at their own rate; a session is a few pages, each page a ``page`` call
and ``Page Engaged`` beacons at 30/120/300 s of active time (as sdk/nudge.js sends them);
product pages add ``Product Viewed``, some add to the cart, some of those check out and
order. Some shoppers log in (``identify`` with an email), some are VIPs, some are marked
inactive in the CRM, and some stop coming, so every shipped trigger has work to do.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

__all__ = ["Call", "ShopMix", "simulate"]

CATALOGUE = [
    ("sku-100", "Walnut desk organiser", 39.0, "Office"),
    ("sku-101", "Linen table runner", 24.5, "Home"),
    ("sku-102", "Ceramic pour-over set", 48.0, "Kitchen"),
    ("sku-103", "Merino travel blanket", 89.0, "Travel"),
    ("sku-104", "Brass desk lamp", 129.0, "Office"),
    ("sku-105", "Oak chopping board", 35.0, "Kitchen"),
    ("sku-106", "Wool slippers", 59.0, "Home"),
    ("sku-107", "Canvas weekender bag", 145.0, "Travel"),
]
USER_AGENT = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)
# Active time on a page: most pages are glanced at, a few are read (15 % reach 2 minutes).
ACTIVE_SECONDS = (10, 45, 90, 150, 400)
ACTIVE_WEIGHTS = (40, 30, 15, 10, 5)
ENGAGED_AT = (30, 120, 300)  # the SDK's Page Engaged beacons, in seconds of active time
SHOP = "https://shop.example.com"


@dataclass(frozen=True)
class ShopMix:
    """What the traffic looks like. The defaults are a browser shop's: analytics.js payloads
    sent in batches of up to 10, shoppers who come back."""

    shoppers: int = 50
    days: int = 10
    batch_size: int = 10  # 1: every call its own request (/v1/track, /v1/page ...)
    browser: bool = True  # False: a server-side source (analytics-python: no page context)
    returning: bool = True  # False: every session a new visitor (new anonymousId)
    seed: int = 20261205


@dataclass(frozen=True)
class Call:
    """One request the source sends: its messages (one unless batched) and when."""

    at: datetime
    messages: list[dict[str, Any]]


@dataclass
class _Shopper:
    index: int
    anonymous_id: str
    user_id: str | None
    email: str
    sessions_per_day: float
    leaves_on_day: int
    vip: bool
    crm_inactive: bool
    logged_in: bool = False
    cart: list[tuple[str, str, float]] = field(default_factory=list)
    cart_id: str = ""


def simulate(mix: ShopMix, start: datetime) -> list[Call]:
    """Every request of the simulated traffic, in time order."""
    chooser = random.Random(mix.seed)
    calls: list[Call] = []
    for index in range(mix.shoppers):
        shopper = _new_shopper(chooser, index, mix)
        for day in range(min(mix.days, shopper.leaves_on_day)):
            for _ in range(_sessions_today(chooser, shopper.sessions_per_day)):
                if not mix.returning:
                    shopper = _new_shopper(chooser, index, mix, visit=len(calls))
                moment = start + timedelta(
                    days=day, hours=chooser.choice(range(7, 23)), minutes=chooser.randint(0, 59)
                )
                messages = list(_session(chooser, shopper, moment, mix))
                calls.extend(_batched(messages, mix.batch_size))
    calls.sort(key=lambda call: call.at)
    return calls


def _new_shopper(chooser: random.Random, index: int, mix: ShopMix, visit: int = 0) -> _Shopper:
    tag = f"{index}-{visit}" if visit else str(index)
    return _Shopper(
        index=index,
        anonymous_id=str(uuid.UUID(int=chooser.getrandbits(128))),
        user_id=f"shopper-{tag}" if chooser.random() < 0.6 else None,
        email=f"shopper-{tag}@example.com",
        sessions_per_day=chooser.choice((0.15, 0.3, 0.5, 0.8, 1.2)),
        leaves_on_day=chooser.randint(2, mix.days * 2),
        vip=chooser.random() < 0.1,
        crm_inactive=chooser.random() < 0.3,
    )


def _sessions_today(chooser: random.Random, rate: float) -> int:
    return int(rate) + (1 if chooser.random() < rate - int(rate) else 0)


def _session(
    chooser: random.Random, shopper: _Shopper, moment: datetime, mix: ShopMix
) -> Iterator[dict[str, Any]]:
    if shopper.user_id and not shopper.logged_in and chooser.random() < 0.5:
        shopper.logged_in = True
        yield _identify(shopper, moment, mix)
    shopper.cart, shopper.cart_id = [], f"cart-{uuid.UUID(int=chooser.getrandbits(128)).hex[:12]}"
    for _ in range(chooser.randint(1, 6)):
        product = chooser.choice(CATALOGUE)
        on_product = chooser.random() < 0.7
        path = f"/products/{product[0]}" if on_product else chooser.choice(("/", "/sale", "/about"))
        yield _page(shopper, moment, path, mix)
        if on_product:
            yield _track(shopper, moment, "Product Viewed", _product(product), path, mix)
        active = chooser.choices(ACTIVE_SECONDS, weights=ACTIVE_WEIGHTS)[0]
        for mark in ENGAGED_AT:
            if active >= mark:
                properties: dict[str, Any] = {
                    "active_seconds": mark,
                    "scroll_depth": min(100, mark // 3),
                }
                if on_product:
                    properties["product_id"] = product[0]
                yield _track(
                    shopper, moment + timedelta(seconds=mark), "Page Engaged", properties, path, mix
                )
        moment += timedelta(seconds=active + chooser.randint(5, 40))
        if on_product and chooser.random() < 0.25:
            shopper.cart.append((product[0], product[1], product[2]))
            yield _track(
                shopper,
                moment,
                "Product Added",
                {**_product(product), "cart_id": shopper.cart_id, "quantity": 1},
                path,
                mix,
            )
    yield from _checkout(chooser, shopper, moment, mix)


def _checkout(
    chooser: random.Random, shopper: _Shopper, moment: datetime, mix: ShopMix
) -> Iterator[dict[str, Any]]:
    if not shopper.cart or chooser.random() > 0.5:
        return
    if shopper.user_id and not shopper.logged_in:
        shopper.logged_in = True
        yield _identify(shopper, moment, mix)
    total = round(sum(price for _, _, price in shopper.cart), 2)
    cart = {"cart_id": shopper.cart_id, "value": total, "currency": "EUR"}
    yield _track(shopper, moment, "Checkout Started", cart, "/checkout", mix)
    if chooser.random() < 0.7:
        order = {**cart, "order_id": f"order-{shopper.cart_id[5:]}", "revenue": total}
        yield _track(
            shopper, moment + timedelta(minutes=3), "Order Completed", order, "/checkout", mix
        )


def _product(product: tuple[str, str, float, str]) -> dict[str, Any]:
    sku, name, price, category = product
    return {
        "product_id": sku,
        "sku": sku,
        "name": name,
        "price": price,
        "category": category,
        "currency": "EUR",
        "url": f"{SHOP}/products/{sku}",
        "image_url": f"{SHOP}/img/{sku}.jpg",
    }


def _common(
    shopper: _Shopper, moment: datetime, path: str, mix: ShopMix, salt: str = ""
) -> dict[str, Any]:
    """What every call carries; ``salt`` tells apart the ids of calls made on one page at
    one moment (a page and its track calls)."""
    when = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    message: dict[str, Any] = {
        "anonymousId": shopper.anonymous_id,
        "messageId": f"ajs-next-{_message_id(shopper.anonymous_id + when + path + salt)}",
        "timestamp": when,
        "sentAt": when,
    }
    if shopper.logged_in and shopper.user_id:
        message["userId"] = shopper.user_id
    if mix.browser:
        message["context"] = {
            "library": {"name": "analytics.js", "version": "next-1.72.0"},
            "page": {
                "path": path,
                "url": f"{SHOP}{path}",
                "title": "Example Shop",
                "referrer": "https://www.google.com/",
                "search": "",
            },
            "userAgent": USER_AGENT,
            "locale": "de-DE",
            "timezone": "Europe/Berlin",
            "screen": {"width": 1512, "height": 982, "density": 2},
        }
    else:
        message["context"] = {"library": {"name": "analytics-python", "version": "2.3.3"}}
    return message


def _message_id(seed: str) -> str:
    """Deterministic, so two runs of the same mix send the same ids."""
    return uuid.uuid5(uuid.NAMESPACE_URL, seed).hex


def _page(shopper: _Shopper, moment: datetime, path: str, mix: ShopMix) -> dict[str, Any]:
    return {
        **_common(shopper, moment, path, mix),
        "type": "page",
        "properties": {"path": path, "url": f"{SHOP}{path}", "title": "Example Shop"},
    }


def _track(
    shopper: _Shopper,
    moment: datetime,
    event: str,
    properties: dict[str, Any],
    path: str,
    mix: ShopMix,
) -> dict[str, Any]:
    common = _common(shopper, moment, path, mix, salt=event)
    return {**common, "type": "track", "event": event, "properties": properties}


def _identify(shopper: _Shopper, moment: datetime, mix: ShopMix) -> dict[str, Any]:
    traits: dict[str, Any] = {"email": shopper.email, "timezone": "Europe/Berlin"}
    if shopper.vip:
        traits["tier"] = "vip"
    if shopper.crm_inactive:
        traits["crm_status"] = "inactive"
    return {**_common(shopper, moment, "/login", mix), "type": "identify", "traits": traits}


def _batched(messages: list[dict[str, Any]], size: int) -> Iterator[Call]:
    """A session's calls as the source flushes them: up to ``size`` at a time, each flush at
    its last message's time."""
    for first in range(0, len(messages), size):
        chunk = messages[first : first + size]
        yield Call(at=_at(chunk[-1]), messages=chunk)


def _at(message: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(message["timestamp"]).replace("Z", "+00:00"))
