"""`nudge preview`: a trigger's message rendered to files, with nothing sent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from nudge.entrypoints.cli import main
from nudge.entrypoints.preview import PREVIEW_URL

TRIGGERS = Path(__file__).resolve().parents[2] / "triggers"

ADA = {"userId": "user-42", "traits": {"first_name": "Ada", "email": "ada@example.com"}}


def _product_added(name: str, product_id: str, minute: int, cart: str = "cart-1") -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Product Added",
        "userId": "user-42",
        "timestamp": f"2026-11-28T12:{minute:02d}:00Z",
        "properties": {
            "cart_id": cart,
            "product_id": product_id,
            "name": name,
            "price": 20.0,
            "quantity": 1,
            "url": f"https://shop.example/p/{product_id}",
        },
    }


def _preview(*arguments: str) -> int:
    return main(["preview", *arguments])


def _write(folder: Path, name: str, document: object) -> Path:
    path = folder / name
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_preview_writes_the_three_email_parts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An email trigger's preview writes subject, HTML and text files and prints their paths."""
    # given
    profile = _write(tmp_path, "profile.json", ADA)
    event = _write(tmp_path, "event.json", _product_added("Trail Runner", "p-1", 0))
    out = tmp_path / "out"

    # when
    status = _preview(
        "abandoned_cart",
        "--user",
        str(profile),
        "--event",
        str(event),
        "--out",
        str(out),
        "--triggers",
        str(TRIGGERS),
    )

    # then
    written = [out / f"abandoned_cart.{suffix}" for suffix in ("subject.txt", "html", "txt")]
    printed = capsys.readouterr().out
    assert status == 0
    assert all(path.is_file() for path in written)
    assert [str(path) for path in written] == printed.splitlines()[1:]
    assert written[0].read_text(encoding="utf-8") == "You left something in your cart\n"


def test_preview_says_its_links_use_a_placeholder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The preview's links point at the placeholder base URL, and the output says so."""
    # given
    profile = _write(tmp_path, "profile.json", ADA)
    out = tmp_path / "out"

    # when
    _preview(
        "abandoned_cart", "--user", str(profile), "--out", str(out), "--triggers", str(TRIGGERS)
    )

    # then
    printed = capsys.readouterr().out
    assert PREVIEW_URL in printed.splitlines()[0]
    assert "preview signing key" in printed.splitlines()[0]
    assert f"Unsubscribe: {PREVIEW_URL}/u/" in (out / "abandoned_cart.txt").read_text()


def test_preview_collects_items_from_a_list_of_events(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With a list of events, the cart items are collected from all of them, per cart."""
    # given
    profile = _write(tmp_path, "profile.json", ADA)
    events = [
        _product_added("Trail Runner", "p-1", 0),
        _product_added("Wool Socks", "p-2", 5),
        _product_added("Other Cart Hat", "p-3", 6, cart="cart-2"),
    ]
    event = _write(tmp_path, "events.json", events)
    out = tmp_path / "out"

    # when
    status = _preview(
        "abandoned_cart",
        "--user",
        str(profile),
        "--event",
        str(event),
        "--out",
        str(out),
        "--triggers",
        str(TRIGGERS),
    )

    # then
    text = (out / "abandoned_cart.txt").read_text(encoding="utf-8")
    assert status == 0
    assert "- Trail Runner x 1: 20.0 (https://shop.example/p/p-1)" in text
    assert "- Wool Socks x 1: 20.0 (https://shop.example/p/p-2)" in text
    assert "Other Cart Hat" not in text


def test_preview_writes_a_webhook_body_as_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A webhook trigger's preview writes the rendered body to <trigger>.json."""
    # given
    traits = {"name": "Ada", "email": "ada@example.com", "tier": "vip"}
    profile = _write(tmp_path, "profile.json", {"userId": "user-42", "traits": traits})
    checkout = {
        "type": "track",
        "event": "Checkout Started",
        "userId": "user-42",
        "timestamp": "2026-11-28T12:00:00Z",
    }
    event = _write(tmp_path, "event.json", checkout)
    out = tmp_path / "out"

    # when
    status = _preview(
        "vip_checkout_call",
        "--user",
        str(profile),
        "--event",
        str(event),
        "--out",
        str(out),
        "--triggers",
        str(TRIGGERS),
    )

    # then
    body = json.loads((out / "vip_checkout_call.json").read_text(encoding="utf-8"))
    assert status == 0
    assert str(out / "vip_checkout_call.json") in capsys.readouterr().out
    assert body["subject"] == "Call VIP Ada about an unfinished checkout"
    assert body["checkoutStartedAt"] == "2026-11-28T12:00:00.000Z"


def test_preview_writes_to_a_preview_folder_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --out, the files go to ./preview."""
    # given
    profile = _write(tmp_path, "profile.json", ADA)
    monkeypatch.chdir(tmp_path)

    # when
    status = _preview("re_engagement", "--user", str(profile), "--triggers", str(TRIGGERS))

    # then
    assert status == 0
    assert (tmp_path / "preview" / "re_engagement.subject.txt").is_file()


def test_preview_of_an_unknown_trigger_exits_2_naming_the_known_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown trigger id exits 2 and lists the triggers that exist."""
    # given
    profile = _write(tmp_path, "profile.json", ADA)

    # when
    status = _preview(
        "nope", "--user", str(profile), "--out", str(tmp_path / "out"), "--triggers", str(TRIGGERS)
    )

    # then
    error = capsys.readouterr().err
    assert status == 2
    assert "no trigger 'nope'" in error
    known = (
        "abandoned_cart, cart_recovery_series, churn_risk, product_interest, product_offer,"
        " re_engagement, re_engagement_best_hour, vip_checkout_call"
    )
    assert known in error
    assert not (tmp_path / "out").exists()


def test_preview_of_a_broken_template_exits_1_with_file_and_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A template that fails to render exits 1 and prints `file: reason`."""
    # given
    triggers = tmp_path / "triggers"
    (triggers / "templates").mkdir(parents=True)
    (triggers / "broken.yaml").write_text(
        "id: broken\nwhen:\n  event: Product Added\nsend:\n  channel: email\n  template: broken\n",
        encoding="utf-8",
    )
    (triggers / "templates" / "broken.subject.j2").write_text("Hello")
    (triggers / "templates" / "broken.html.j2").write_text("{{ traits.missing.deeper }}")
    (triggers / "templates" / "broken.txt.j2").write_text("Hello")
    profile = _write(tmp_path, "profile.json", ADA)

    # when
    status = _preview(
        "broken",
        "--user",
        str(profile),
        "--out",
        str(tmp_path / "out"),
        "--triggers",
        str(triggers),
    )

    # then
    error = capsys.readouterr().err
    assert status == 1
    assert error.startswith(f"{triggers / 'templates' / 'broken.html.j2'}: UndefinedError: ")
    assert "'missing'" in error
