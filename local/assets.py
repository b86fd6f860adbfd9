"""The pages and files the local stack serves beside the API: the demo shop, the browser
SDK it loads, and /docs, Swagger UI from the files Powertools ships (so it works offline).

The demo shop is plain static files under local/demo/: one page (index.html) for every
/demo path, which routes itself in the browser, with the local write key and WebSocket URL
filled in, and its script, style sheet and product pictures under /demo/static/."""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path

import aws_lambda_powertools.event_handler.openapi.swagger_ui as swagger_assets
from werkzeug.wrappers import Request, Response

from local.responses import json_response
from local.stack import REPO, LocalStack

__all__ = ["Assets"]

# URL name under /docs/ -> (the file Powertools ships, content type); its stylesheet is
# the .min.css.
DEMO = REPO / "local" / "demo"
DEMO_STATIC = DEMO / "static"
_STATIC_PREFIX = "/demo/static/"
# The kinds of file the demo serves from local/demo/static/, by suffix.
_STATIC_TYPES = {
    ".css": "text/css; charset=utf-8",
    ".js": "application/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}

_SWAGGER_FILES = {
    "swagger-ui.css": ("swagger-ui.min.css", "text/css"),
    "swagger-ui-bundle.min.js": ("swagger-ui-bundle.min.js", "application/javascript"),
}


class Assets:
    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.pages: dict[str, Callable[[], Response]] = {
            "/docs": self._docs,
            "/demo": self._demo,
            "/sdk/nudge.js": self._sdk,
        }

    def answer(self, request: Request) -> Response | None:
        """The page or file a GET asks for; None for any other request."""
        if request.method != "GET":
            return None
        if request.path in self.pages:
            return self.pages[request.path]()
        if request.path.startswith(_STATIC_PREFIX):
            return _demo_file(request.path.removeprefix(_STATIC_PREFIX))
        if request.path.startswith("/demo/"):
            return self._demo()  # one page for the shop's every path: it routes itself
        if request.path.startswith("/docs/"):
            return _swagger_file(request.path.removeprefix("/docs/"))
        return None

    def _demo(self) -> Response:
        page = (DEMO / "index.html").read_text(encoding="utf-8")
        page = page.replace("__WRITE_KEY__", html.escape(self.stack.config.write_key))
        socket_url = getattr(self.stack, "websocket_url", None) or ""
        page = page.replace("__SOCKET_URL__", html.escape(socket_url))
        response = Response(page, content_type="text/html; charset=utf-8")
        response.headers["Cache-Control"] = "no-store"
        return response

    def _sdk(self) -> Response:
        script = (REPO / "sdk" / "nudge.js").read_bytes()
        return Response(script, content_type="application/javascript; charset=utf-8")

    def _docs(self) -> Response:
        page = _DOCS_PAGE.replace("{spec_url}", "/openapi.json")
        return Response(page, content_type="text/html; charset=utf-8")


def _demo_file(name: str) -> Response:
    """A file under local/demo/static/ (a script, a style sheet, a picture); 404 for any
    other name, including one that climbs out of the folder."""
    root = DEMO_STATIC.resolve()
    path = (root / name).resolve()
    if not path.is_relative_to(root) or path.suffix not in _STATIC_TYPES or not path.is_file():
        return json_response(404, {"message": "Not Found"})
    response = Response(path.read_bytes(), content_type=_STATIC_TYPES[path.suffix])
    response.headers["Cache-Control"] = "no-cache"  # edits show on the next reload
    return response


def _swagger_file(name: str) -> Response:
    if name not in _SWAGGER_FILES:
        return json_response(404, {"message": "Not Found"})
    file_name, content_type = _SWAGGER_FILES[name]
    folder = Path(swagger_assets.__file__).parent
    return Response((folder / file_name).read_bytes(), content_type=content_type)


_DOCS_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Nudge beacon API</title>
<link rel="stylesheet" href="/docs/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.min.js"></script>
<script>window.ui = SwaggerUIBundle({url: "{spec_url}", dom_id: "#swagger-ui"});</script>
</body></html>
"""
