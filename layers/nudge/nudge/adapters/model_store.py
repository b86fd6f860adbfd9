"""Model artefacts in the models bucket (on AWS) or a folder (the CLI, tests): read at
Evaluate's cold start, written by the Train function when a new model is not worse.

Key ``models/<prediction>.json`` in the bucket, ``<prediction>.json`` in the folder. An S3
PUT replaces the object whole, so a reader sees the old artefact or the new, never part;
the bucket is versioned, so a replaced model can be brought back (docs/predictions.md)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from nudge.adapters.aws_errors import aws_call
from nudge.domain.predictions.score import ModelProblem, ScoreModel, parse_model
from nudge.service.ports import Missing, OutsideError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = ["MODELS_PREFIX", "FolderModels", "S3Models", "model_from", "model_key"]

MODELS_PREFIX = "models/"


def model_key(prediction: str) -> str:
    return f"{MODELS_PREFIX}{prediction}.json"


class S3Models:
    def __init__(self, client: S3Client, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def where(self, prediction: str) -> str:
        return f"s3://{self._bucket}/{model_key(prediction)}"

    def read(self, prediction: str) -> bytes | None:
        try:
            with aws_call(f"reading {self.where(prediction)}"):
                answer = self._client.get_object(Bucket=self._bucket, Key=model_key(prediction))
                return answer["Body"].read()
        except Missing:
            return None

    def write(self, prediction: str, artefact: bytes) -> None:
        with aws_call(f"writing {self.where(prediction)}"):
            self._client.put_object(
                Bucket=self._bucket,
                Key=model_key(prediction),
                Body=artefact,
                ContentType="application/json",
            )


class FolderModels:
    """``<folder>/<prediction>.json``, written all or nothing (a ``.partial`` file renamed
    over the old one): a half-written artefact would replace a good one."""

    def __init__(self, folder: Path) -> None:
        self._folder = folder

    def where(self, prediction: str) -> str:
        return str(self._folder / f"{prediction}.json")

    def read(self, prediction: str) -> bytes | None:
        try:
            return (self._folder / f"{prediction}.json").read_bytes()
        except FileNotFoundError:
            return None

    def write(self, prediction: str, artefact: bytes) -> None:
        out = self._folder / f"{prediction}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(out.name + ".partial")
        partial.write_bytes(artefact)
        os.replace(partial, out)


def model_from(models: S3Models | FolderModels, prediction: str) -> ScoreModel | ModelProblem:
    """The prediction's model, or why there is none: missing, unreadable or corrupt are
    all a ``ModelProblem`` (logged once at cold start; the prediction scores nothing)."""
    where = models.where(prediction)
    try:
        raw = models.read(prediction)
    except (OutsideError, OSError) as error:
        return ModelProblem(f"the model artefact at {where} cannot be read: {error}")
    if raw is None:
        return ModelProblem(f"no model artefact at {where}: run nudge train first")
    found = parse_model(raw)
    return ModelProblem(f"{where}: {found}") if isinstance(found, ModelProblem) else found
