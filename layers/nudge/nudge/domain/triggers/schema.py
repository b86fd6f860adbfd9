"""The JSON Schema of a trigger file, for editor completion (yaml-language-server)."""

from __future__ import annotations

from typing import Any

from nudge.domain.triggers.model import Trigger

__all__ = ["trigger_schema"]


def trigger_schema() -> dict[str, Any]:
    schema = Trigger.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Nudge trigger"
    # One message or a journey: exactly one of the two (the model's own check says so too).
    schema["oneOf"] = [{"required": ["send"]}, {"required": ["steps"]}]
    return schema
