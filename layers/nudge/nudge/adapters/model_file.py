"""A prediction model artefact read from a file: the model, or why there is none."""

from __future__ import annotations

from pathlib import Path

from nudge.domain.predictions.score import ModelProblem, ScoreModel, parse_model

__all__ = ["load_model"]


def load_model(path: Path) -> ScoreModel | ModelProblem:
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return ModelProblem(f"no model artefact at {path}: run nudge train first")
    except OSError as error:
        return ModelProblem(f"the model artefact at {path} cannot be read: {error.strerror}")
    found = parse_model(text)
    return ModelProblem(f"{path}: {found}") if isinstance(found, ModelProblem) else found
