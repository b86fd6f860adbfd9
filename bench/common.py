"""What the benchmarks share: paths, the payloads they send, and table helpers."""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from nudge.adapters import keys
from rich.table import Table

__all__ = [
    "REPO",
    "Figures",
    "event_item",
    "percentile",
    "side_by_side",
    "track_message",
]

REPO = Path(__file__).resolve().parent.parent

# One benchmark's numbers, as --json prints them.
Figures = dict[str, Any]


def track_message(user: str, index: int, tag: str, now: datetime | None = None) -> dict[str, Any]:
    """A track call the way analytics.js sends it (about 700 bytes of JSON)."""
    when = (now or datetime.now(UTC)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    product = 1000 + index % 97
    return {
        "type": "track",
        "event": "Product Viewed",
        "userId": user,
        "anonymousId": f"anon-{user}",
        "messageId": f"{tag}-{user}-{index:06d}",
        "timestamp": when,
        "sentAt": when,
        "properties": {
            "product_id": str(product),
            "sku": f"SKU-{product}",
            "name": f"Board game #{product}",
            "category": "Games",
            "price": 19.99 + index % 7,
            "currency": "USD",
        },
        "context": {
            "library": {"name": "analytics.js", "version": "next-1.72.0"},
            "page": {
                "path": f"/products/{product}",
                "url": f"https://shop.example.com/products/{product}",
                "title": f"Board game #{product} | Example Shop",
                "referrer": "https://www.google.com/",
            },
            "userAgent": (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
                "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
            ),
            "locale": "en-US",
            "timezone": "Europe/Berlin",
        },
    }


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else 0.0


def side_by_side(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> Table:
    table = Table(title=title, title_justify="left", show_lines=False)
    for index, name in enumerate(columns):
        table.add_column(name, justify="left" if index == 0 else "right")
    for row in rows:
        table.add_row(*row)
    return table


def event_item(
    message: dict[str, Any], retention: timedelta = timedelta(days=90)
) -> dict[str, Any]:
    """A track message as an item of the template's table (DynamoDB JSON), the plain way."""
    received = datetime.now(UTC)
    person = keys.person_of(message.get("userId"), message.get("anonymousId"))
    body = {**message, "receivedAt": received.isoformat()}
    return {
        **{
            name: {"S": value}
            for name, value in keys.event_key(person, message["messageId"]).items()
        },
        "kind": {"S": keys.EVENT_KIND},
        "type": {"S": message["type"]},
        "ts": {"S": message["timestamp"]},
        "body": {"S": json.dumps(body, ensure_ascii=False, separators=(",", ":"))},
        "expires_at": {"N": str(int((received + retention).timestamp()))},
    }
