"""Load prediction files and report every problem as ``file:line: message``, the way the
trigger loader does (its YAML reading and error placing are shared)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pydantic_core import ValidationError

from nudge.domain.definition_files import Problem, read_mapping, validation_problems
from nudge.domain.predictions.model import Prediction

__all__ = ["PredictionSet", "load_predictions", "parse_prediction"]


@dataclass(frozen=True)
class PredictionSet:
    """The predictions of a folder, the problems found, and the file each came from."""

    predictions: list[Prediction] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)  # prediction id -> file

    @property
    def ok(self) -> bool:
        return not self.problems

    def get(self, prediction_id: str) -> Prediction | None:
        return next((p for p in self.predictions if p.id == prediction_id), None)


def load_predictions(directory: Path) -> PredictionSet:
    """Every ``*.yaml`` in the directory, each id once."""
    predictions: list[Prediction] = []
    problems: list[Problem] = []
    sources: dict[str, str] = {}
    for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
        prediction, found = parse_prediction(path.read_text(encoding="utf-8"), str(path))
        problems += found
        if prediction is None:
            continue
        if prediction.id in sources:
            message = f"id {prediction.id!r} is already used by {sources[prediction.id]}"
            problems.append(Problem(str(path), 1, message))
            continue
        sources[prediction.id] = str(path)
        predictions.append(prediction)
    return PredictionSet(predictions=predictions, problems=problems, sources=sources)


def parse_prediction(text: str, file: str) -> tuple[Prediction | None, list[Problem]]:
    document, line_of, problems = read_mapping(
        text,
        file,
        empty="empty file: a prediction needs at least id and label",
        not_mapping="a prediction file holds one mapping (id, label, audience, features)",
    )
    if document is None:
        return None, problems
    try:
        return Prediction.model_validate(document), []
    except ValidationError as error:
        return None, validation_problems(file, error, document, line_of, subject="prediction")
