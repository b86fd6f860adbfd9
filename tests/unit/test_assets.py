"""The demo shop's files as local/assets.py serves them: one page for every /demo path with
the stack's write key and WebSocket URL filled in, and the static files beside it."""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import cast

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request, Response

from local.assets import DEMO_STATIC, Assets
from local.stack import LocalStack

SOCKET = "ws://127.0.0.1:3001/live"


def _assets(websocket_url: str | None = SOCKET) -> Assets:
    stack = SimpleNamespace(config=SimpleNamespace(write_key="key-1"), websocket_url=websocket_url)
    return Assets(cast(LocalStack, stack))


def _get(assets: Assets, path: str, method: str = "GET") -> Response | None:
    return assets.answer(Request(EnvironBuilder(path=path, method=method).get_environ()))


@pytest.mark.parametrize(
    "path", ["/demo", "/demo/products/mug", "/demo/cart", "/demo/checkout", "/demo/checkout/pay"]
)
def test_every_demo_path_is_the_shop_page_with_the_key_and_socket(path: str) -> None:
    """The shop routes itself in the browser: each /demo path gets index.html, filled in."""
    # given
    assets = _assets()
    # when
    response = _get(assets, path)
    # then
    assert response is not None
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert 'data-write-key="key-1"' in page
    assert f'data-socket="{SOCKET}"' in page
    assert "__" not in page.split("<body", 1)[1].split(">", 1)[0]


def test_a_stack_without_a_websocket_leaves_the_socket_empty() -> None:
    """No WebSocket URL: the page gets an empty one (the SDK then opens no socket)."""
    # given
    assets = _assets(websocket_url=None)
    # when
    response = _get(assets, "/demo")
    # then
    assert response is not None
    assert 'data-socket=""' in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/demo/static/shop.js", "application/javascript"),
        ("/demo/static/panel.js", "application/javascript"),
        ("/demo/static/shop.css", "text/css"),
        ("/demo/static/products/mug.svg", "image/svg+xml"),
    ],
)
def test_the_static_files_are_served_with_their_type(path: str, content_type: str) -> None:
    """Scripts, the style sheet and the pictures come from local/demo/static/."""
    # given
    assets = _assets()
    # when
    response = _get(assets, path)
    # then
    assert response is not None
    assert response.status_code == 200
    assert response.mimetype == content_type
    assert response.get_data()


@pytest.mark.parametrize(
    "path",
    [
        "/demo/static/nope.js",
        "/demo/static/../../../sdk/nudge.js",
        "/demo/static/%2e%2e/%2e%2e/%2e%2e/sdk/nudge.js",
        "/demo/static/products",
        "/demo/static/",
    ],
    ids=["missing", "climbing out", "climbing out, encoded", "a folder", "the folder"],
)
def test_anything_else_under_static_is_not_found(path: str) -> None:
    """Only files inside local/demo/static/ of a known kind are served."""
    # given
    assets = _assets()
    # when
    response = _get(assets, path)
    # then
    assert response is not None
    assert response.status_code == 404


def test_every_product_in_the_shop_has_its_picture() -> None:
    """shop.js's catalogue names products whose pictures are products/<product_id>.svg."""
    # given
    script = (DEMO_STATIC / "shop.js").read_text(encoding="utf-8")
    # when
    products = re.findall(r'product_id: "([\w-]+)"', script)
    # then
    assert 4 <= len(products) <= 6
    assert all((DEMO_STATIC / "products" / f"{p}.svg").is_file() for p in products), products


def test_only_gets_are_answered() -> None:
    """A POST to a demo path is for someone else (None)."""
    # given
    assets = _assets()
    # when
    response = _get(assets, "/demo", method="POST")
    # then
    assert response is None
