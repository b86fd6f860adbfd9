"""The local stack's one HTTP server (WSGI), made of three parts, asked in turn:
the pages beside the API (local/assets.py), the /_local control API (local/control.py),
and API Gateway itself, the template's routes (local/api_gateway.py). Their paths do
not overlap, so the order only decides who answers first."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from werkzeug.wrappers import Request, Response

from local.api_gateway import ApiGateway
from local.assets import Assets
from local.control import ControlApi
from local.responses import json_response
from local.stack import LocalStack

__all__ = ["Gateway"]


class Gateway:
    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.assets = Assets(stack)
        self.control = ControlApi(stack)
        self.api = ApiGateway(stack)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        try:
            response = self._dispatch(request)
        except Exception as error:  # the gateway keeps serving whatever one request did
            failure = {"message": "Internal Server Error", "detail": str(error)}
            response = json_response(500, failure)
        return response(environ, start_response)

    def _dispatch(self, request: Request) -> Response:
        for part in (self.assets, self.control):
            response = part.answer(request)
            if response is not None:
                return response
        return self.api.answer(request)
