"""The JSON Schema of a prediction file, for editor completion (yaml-language-server)."""

from __future__ import annotations

from typing import Any

from nudge.domain.predictions.model import Prediction

__all__ = ["prediction_schema"]


def prediction_schema() -> dict[str, Any]:
    schema = Prediction.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Nudge prediction"
    return schema
