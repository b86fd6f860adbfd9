"""Prediction files: the shipped ones load, bad ones are refused at their line, and
`nudge validate` checks them beside the triggers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from nudge.domain.predictions.loader import load_predictions, parse_prediction
from nudge.domain.predictions.model import DEFAULT_FEATURES, EventLabel, InactiveLabel
from nudge.entrypoints.cli import main

ROOT = Path(__file__).resolve().parents[2]
CHURN = """\
id: churn
label:
  inactive: 14d
audience:
  path: profile.sessions
  gte: 2
features: default
"""


def _triggers_beside(tmp_path: Path, prediction: str) -> Path:
    """A project folder with no triggers and one prediction file; the triggers' folder."""
    (tmp_path / "triggers").mkdir()
    (tmp_path / "predictions").mkdir()
    (tmp_path / "predictions" / "p.yaml").write_text(prediction, encoding="utf-8")
    return tmp_path / "triggers"


def test_the_shipped_predictions_load() -> None:
    """predictions/churn.yaml and purchase.yaml are valid, with the labels they describe."""
    # when
    loaded = load_predictions(ROOT / "predictions")

    # then
    assert loaded.problems == []
    churn, purchase = loaded.get("churn"), loaded.get("purchase")
    assert churn is not None
    assert isinstance(churn.label, InactiveLabel)
    assert churn.feature_list == DEFAULT_FEATURES
    assert purchase is not None
    assert isinstance(purchase.label, EventLabel)
    assert purchase.label.event == "Order Completed"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            CHURN.replace("inactive: 14d", "inactive: 0d"),
            "f.yaml:3: label.inactive: 0s is out of range (1h to 90d)",
        ),
        (
            CHURN.replace("inactive: 14d", "inactive: 91d"),
            "f.yaml:3: label.inactive: 91d is out of range (1h to 90d)",
        ),
        (
            CHURN.replace("inactive: 14d", "within: 14d"),
            "f.yaml:2: label: event is required",
        ),
        (
            CHURN.replace("inactive: 14d", "event: ''\n  within: 14d"),
            "f.yaml:3: label.event: String should have at least 1 character",
        ),
        (
            CHURN.replace("features: default", "features:\n  - count: page\n    within: 0d"),
            "f.yaml:9: features.0.within: 0s is out of range (1m to 90d)",
        ),
    ],
    ids=["horizon-0", "horizon-over-90d", "label-names-no-event", "empty-event", "window-0"],
)
def test_a_bad_label_or_window_is_refused_at_its_line(text: str, expected: str) -> None:
    """Horizons of 0 or over 90 days and labels naming no event are refused, with file:line."""
    # when
    prediction, problems = parse_prediction(text, "f.yaml")

    # then
    assert prediction is None
    assert [str(problem) for problem in problems] == [expected]


def test_an_unknown_feature_path_is_refused_at_its_line() -> None:
    """A feature naming no profile fact is refused on its own line, with the choices."""
    # given
    text = CHURN.replace(
        "features: default", "features:\n  - profile.sessions\n  - profile.favourite_colour"
    )

    # when
    _, problems = parse_prediction(text, "f.yaml")

    # then
    assert len(problems) == 1
    assert problems[0].line == 9
    assert "'profile.favourite_colour' is not a feature" in problems[0].message


def test_validate_checks_the_predictions_beside_the_triggers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad prediction beside the triggers makes validate exit 1 and print file:line."""
    # given
    triggers = _triggers_beside(tmp_path, CHURN.replace("inactive: 14d", "inactive: 0d"))

    # when
    status = main(["validate", str(triggers)])

    # then
    printed = capsys.readouterr()
    assert status == 1
    bad = tmp_path / "predictions" / "p.yaml"
    assert printed.out.splitlines() == [f"{bad}:3: label.inactive: 0s is out of range (1h to 90d)"]
    assert "0 prediction(s) valid, 1 problem(s)" in printed.err


def test_validate_reads_a_predictions_folder_given_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--predictions DIR is validated wherever it is; good files exit 0."""
    # given
    triggers = _triggers_beside(tmp_path, CHURN)
    elsewhere = tmp_path / "predictions"

    # when
    status = main(["validate", str(triggers), "--predictions", str(elsewhere)])

    # then
    printed = capsys.readouterr()
    assert status == 0
    assert printed.out == ""
    assert "1 prediction(s) valid, 0 problem(s)" in printed.err


def test_schema_prints_the_prediction_files_json_schema(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`nudge schema prediction` prints a JSON Schema naming the file's fields."""
    # when
    status = main(["schema", "prediction"])

    # then
    schema = json.loads(capsys.readouterr().out)
    assert status == 0
    assert schema["title"] == "Nudge prediction"
    assert set(schema["properties"]) == {"id", "description", "label", "audience", "features"}
    assert schema["required"] == ["id", "label"]
