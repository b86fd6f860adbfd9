"""The beacon API's OpenAPI document stays valid and in step with the code that validates."""

from __future__ import annotations

import json
from typing import Any

import pytest
from nudge import __version__
from nudge.domain.intake import ROUTE_TYPES, Limits
from nudge.domain.segment import MESSAGE_TYPES
from nudge.entrypoints.openapi import openapi_document
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

EXAMPLES: dict[str, dict[str, Any]] = {
    "track": {"type": "track", "userId": "user-1", "event": "Signed Up", "properties": {"a": 1}},
    "identify": {"type": "identify", "userId": "user-1", "traits": {"plan": "pro"}},
    "page": {"type": "page", "anonymousId": "anon-1", "name": "Home"},
    "screen": {"type": "screen", "anonymousId": "anon-1", "name": "Settings"},
    "group": {"type": "group", "userId": "user-1", "groupId": "acme"},
    "alias": {"type": "alias", "userId": "user-1", "previousId": "anon-1"},
}


def validator_for(document: dict[str, Any], schema_name: str) -> OAS31Validator:
    """A JSON Schema validator for one component, with the document's $refs resolvable."""
    root = {"$ref": f"#/components/schemas/{schema_name}", "components": document["components"]}
    return OAS31Validator(root)


def test_the_document_is_valid_openapi_3_1() -> None:
    """The generated document passes the OpenAPI 3.1 specification validator."""
    # given
    document = openapi_document()

    # when
    validate(document)

    # then
    assert document["openapi"] == "3.1.0"


def test_the_document_is_plain_json() -> None:
    """The document serialises to JSON and back unchanged, so it can be served as is."""
    # given
    document = openapi_document()

    # when
    round_tripped = json.loads(json.dumps(document))

    # then
    assert round_tripped == document


def test_the_document_carries_the_package_version() -> None:
    """info.version is the nudge package's version."""
    # given
    document = openapi_document()

    # when
    version = document["info"]["version"]

    # then
    assert version == __version__


def test_every_route_is_documented() -> None:
    """Each route parse_request accepts, and the metrics route, has a POST operation."""
    # given
    document = openapi_document()

    # when
    paths = set(document["paths"])

    # then
    assert paths == {f"/v1/{route}" for route in ROUTE_TYPES} | {"/v1/m"}
    assert all("post" in operation for operation in document["paths"].values())


@pytest.mark.parametrize(("route", "kind"), sorted(ROUTE_TYPES.items()))
def test_each_route_takes_the_schema_of_its_type(route: str, kind: str) -> None:
    """A route's request body refers to the schema of the message type it accepts."""
    # given
    document = openapi_document()
    expected = "Batch" if kind == "batch" else kind.capitalize()

    # when
    content = document["paths"][f"/v1/{route}"]["post"]["requestBody"]["content"]

    # then
    assert set(content) == {"application/json", "text/plain"}
    assert all(
        media["schema"] == {"$ref": f"#/components/schemas/{expected}"}
        for media in content.values()
    )


def test_operation_ids_are_unique() -> None:
    """No two operations share an operationId, so client generators do not collide."""
    # given
    document = openapi_document()

    # when
    ids = [
        op["post"]["operationId"]
        for op in document["paths"].values()
        if "operationId" in op["post"]
    ]

    # then
    assert len(ids) == len(set(ids)) == len(ROUTE_TYPES)


def test_there_is_a_schema_per_message_type() -> None:
    """Every Segment message type has a component schema, plus Batch and Error."""
    # given
    document = openapi_document()

    # when
    names = set(document["components"]["schemas"])

    # then
    assert names == {kind.capitalize() for kind in MESSAGE_TYPES} | {"Batch", "Error"}


def test_the_batch_item_limit_matches_the_enforced_limit() -> None:
    """The documented maxItems of a batch is the limit intake enforces."""
    # given
    document = openapi_document()

    # when
    max_items = document["components"]["schemas"]["Batch"]["properties"]["batch"]["maxItems"]

    # then
    assert max_items == Limits().max_batch_items


@pytest.mark.parametrize(
    ("schema_name", "required"),
    [("Track", {"event"}), ("Group", {"groupId"}), ("Alias", {"previousId", "userId"})],
)
def test_required_fields_follow_the_models(schema_name: str, required: set[str]) -> None:
    """The fields the models require are required in the schemas."""
    # given
    document = openapi_document()

    # when
    schema = document["components"]["schemas"][schema_name]

    # then
    assert set(schema["required"]) == required


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_a_valid_message_validates_against_its_schema(kind: str) -> None:
    """A message that intake accepts also validates against the documented schema."""
    # given
    validator = validator_for(openapi_document(), kind.capitalize())

    # when
    errors = list(validator.iter_errors(EXAMPLES[kind]))

    # then
    assert errors == []


def test_a_track_without_event_fails_its_schema() -> None:
    """The Track schema rejects what intake rejects: a track with no event."""
    # given
    validator = validator_for(openapi_document(), "Track")

    # when
    errors = list(validator.iter_errors({"type": "track", "userId": "user-1"}))

    # then
    assert [error.validator for error in errors] == ["required"]


def test_a_mixed_batch_validates_against_the_batch_schema() -> None:
    """A batch holding one of each message type validates, each item matching one schema."""
    # given
    validator = validator_for(openapi_document(), "Batch")
    batch = {"batch": list(EXAMPLES.values()), "sentAt": "2026-11-28T12:00:00Z", "writeKey": "k"}

    # when
    errors = list(validator.iter_errors(batch))

    # then
    assert errors == []


@pytest.mark.parametrize("status", ["400", "401", "413", "503"])
def test_error_responses_use_the_error_schema(status: str) -> None:
    """Every documented failure status returns the shared Error body."""
    # given
    document = openapi_document()

    # when
    response = document["paths"]["/v1/track"]["post"]["responses"][status]

    # then
    assert response["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }
