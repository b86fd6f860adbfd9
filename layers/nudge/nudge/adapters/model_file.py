"""A prediction model artefact read from a file: the model, or why there is none."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from nudge.domain.predictions.live import LivePrediction, Scoring
from nudge.domain.predictions.loader import load_predictions
from nudge.domain.predictions.score import ModelProblem, ScoreModel, parse_model

__all__ = ["ModelReader", "load_model", "load_scoring"]


def load_model(path: Path) -> ScoreModel | ModelProblem:
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return ModelProblem(f"no model artefact at {path}: run nudge train first")
    except OSError as error:
        return ModelProblem(f"the model artefact at {path} cannot be read: {error.strerror}")
    found = parse_model(text)
    return ModelProblem(f"{path}: {found}") if isinstance(found, ModelProblem) else found


ModelReader = Callable[[str], ScoreModel | ModelProblem]


def load_scoring(predictions_dir: Path, models: Path | ModelReader) -> tuple[Scoring, list[str]]:
    """Every prediction in the folder with its model (``models/<id>.json`` in a folder, or
    what the reader finds: the models bucket) or why it has none, and the problems to
    report: none at all when there is no such folder."""
    if not predictions_dir.is_dir():
        return Scoring(), []
    loaded = load_predictions(predictions_dir)
    read = _in_folder(models) if isinstance(models, Path) else models
    scoring = Scoring(
        tuple(
            LivePrediction.of(prediction, read(prediction.id)) for prediction in loaded.predictions
        )
    )
    return scoring, [*map(str, loaded.problems), *scoring.problems]


def _in_folder(folder: Path) -> ModelReader:
    return lambda prediction: load_model(folder / f"{prediction}.json")
