"""The beacon API's OpenAPI document, generated from the same pydantic models that validate."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from nudge import __version__
from nudge.domain.intake import ROUTE_TYPES
from nudge.domain.segment import MESSAGE_TYPES

__all__ = ["openapi_document"]

_ERROR = {
    "type": "object",
    "required": ["code", "message"],
    "properties": {
        "code": {"type": "string", "examples": ["invalid_request"]},
        "message": {"type": "string", "examples": ["batch[3].event: is required for track"]},
        "field": {"type": "string", "examples": ["batch[3].event"]},
    },
}


def openapi_document() -> dict[str, Any]:
    schemas: dict[str, Any] = {"Error": _ERROR}
    for name, model in MESSAGE_TYPES.items():
        schema = TypeAdapter(model).json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[name.capitalize()] = schema
    schemas["Batch"] = _batch_schema()
    paths = {f"/v1/{route}": _beacon_path(route, kind) for route, kind in ROUTE_TYPES.items()}
    paths["/v1/m"] = {
        "post": {
            "summary": "analytics.js client metrics: accepted and dropped",
            "responses": _responses(),
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Nudge beacon API",
            "version": __version__,
            "description": "Segment's HTTP Tracking API. JSON bodies are parsed whatever the "
            "Content-Type (text/plain from sendBeacon, application/json from servers); "
            "gzip bodies are accepted with Content-Encoding: gzip.",
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {"writeKey": {"type": "http", "scheme": "basic"}},
        },
        "security": [{"writeKey": []}],
        "paths": paths,
    }


def _batch_schema() -> dict[str, Any]:
    refs = [{"$ref": f"#/components/schemas/{name.capitalize()}"} for name in MESSAGE_TYPES]
    return {
        "type": "object",
        "required": ["batch"],
        "properties": {
            "batch": {"type": "array", "maxItems": 2500, "items": {"oneOf": refs}},
            "context": {"type": "object"},
            "integrations": {"type": "object"},
            "sentAt": {"type": "string", "format": "date-time"},
            "writeKey": {"type": "string"},
        },
    }


def _beacon_path(route: str, kind: str) -> dict[str, Any]:
    schema_name = "Batch" if kind == "batch" else kind.capitalize()
    content = {"schema": {"$ref": f"#/components/schemas/{schema_name}"}}
    return {
        "post": {
            "summary": f"{kind} ({'alias of /v1/' + kind if route != kind else 'Segment route'})",
            "operationId": f"post_{route}",
            "requestBody": {
                "required": True,
                "content": {"application/json": content, "text/plain": content},
            },
            "responses": _responses(),
        }
    }


def _responses() -> dict[str, Any]:
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    return {
        "200": {
            "description": "accepted",
            "content": {
                "application/json": {
                    "schema": {"type": "object", "properties": {"success": {"type": "boolean"}}}
                }
            },
        },
        "400": {"description": "invalid message; the message names the field", "content": error},
        "401": {"description": "missing or wrong write key", "content": error},
        "413": {"description": "message, batch or decompressed body too large", "content": error},
        "503": {"description": "storage briefly unavailable; retry", "content": error},
    }
