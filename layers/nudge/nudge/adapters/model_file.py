"""A prediction model artefact read from a file: the model, or why there is none."""

from __future__ import annotations

from pathlib import Path

from nudge.domain.predictions.live import LivePrediction, Scoring
from nudge.domain.predictions.loader import load_predictions
from nudge.domain.predictions.score import ModelProblem, ScoreModel, parse_model

__all__ = ["load_model", "load_scoring"]


def load_model(path: Path) -> ScoreModel | ModelProblem:
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return ModelProblem(f"no model artefact at {path}: run nudge train first")
    except OSError as error:
        return ModelProblem(f"the model artefact at {path} cannot be read: {error.strerror}")
    found = parse_model(text)
    return ModelProblem(f"{path}: {found}") if isinstance(found, ModelProblem) else found


def load_scoring(predictions_dir: Path, models_dir: Path) -> tuple[Scoring, list[str]]:
    """Every prediction in the folder with its model (``models_dir/<id>.json``) or why it
    has none, and the problems to report: none at all when there is no such folder."""
    if not predictions_dir.is_dir():
        return Scoring(), []
    loaded = load_predictions(predictions_dir)
    scoring = Scoring(
        tuple(
            LivePrediction.of(prediction, load_model(models_dir / f"{prediction.id}.json"))
            for prediction in loaded.predictions
        )
    )
    return scoring, [*map(str, loaded.problems), *scoring.problems]
