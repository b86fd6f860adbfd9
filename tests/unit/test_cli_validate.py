"""`nudge validate` and `nudge schema` on the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from nudge.domain.triggers.schema import trigger_schema
from nudge.entrypoints.cli import main

TRIGGERS = Path(__file__).resolve().parents[2] / "triggers"

GOOD = """\
id: test_trigger
when:
  event: Product Added
send:
  channel: email
  template: test
"""


def test_validate_accepts_the_shipped_folder(capsys: pytest.CaptureFixture[str]) -> None:
    """The shipped triggers validate: exit 0, nothing on stdout, a summary on stderr."""
    # given
    folder = str(TRIGGERS)

    # when
    status = main(["validate", folder])

    # then
    printed = capsys.readouterr()
    assert status == 0
    assert printed.out == ""
    assert "8 trigger(s) valid, 0 problem(s)" in printed.err


def test_validate_prints_path_line_message_and_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad file makes validate exit 1 and print path:line: message on stdout."""
    # given
    (tmp_path / "templates").mkdir()
    for part in ("subject", "html", "txt"):
        (tmp_path / "templates" / f"test.{part}.j2").write_text("hi")
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD + "delay: 31d\ncolour: red\n", encoding="utf-8")

    # when
    status = main(["validate", str(tmp_path)])

    # then
    printed = capsys.readouterr()
    assert status == 1
    assert sorted(printed.out.splitlines()) == [
        f"{bad}:7: delay: 31d is out of range (0s to 30d)",
        f"{bad}:8: trigger: unknown field 'colour'",
    ]
    assert "0 trigger(s) valid, 2 problem(s)" in printed.err


@pytest.mark.parametrize("clock", ["25:00", "9:30", "09:60", "noon"])
def test_a_send_at_that_is_no_time_of_day_is_refused_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], clock: str
) -> None:
    # given
    (tmp_path / "templates").mkdir()
    for part in ("subject", "html", "txt"):
        (tmp_path / "templates" / f"test.{part}.j2").write_text("hi")
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD + f'  at: "{clock}"\n', encoding="utf-8")

    # when
    status = main(["validate", str(tmp_path)])

    # then
    printed = capsys.readouterr()
    assert status == 1
    assert printed.out.splitlines() == [
        f"{bad}:7: send.at: {clock!r} is neither a time of day (HH:MM, from 00:00 to 23:59)"
        " nor best"
    ]


def test_a_send_at_time_of_day_is_valid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # given
    (tmp_path / "templates").mkdir()
    for part in ("subject", "html", "txt"):
        (tmp_path / "templates" / f"test.{part}.j2").write_text("hi")
    (tmp_path / "good.yaml").write_text(GOOD + '  at: "09:30"\n', encoding="utf-8")

    # when
    status = main(["validate", str(tmp_path)])

    # then
    assert (status, capsys.readouterr().out) == (0, "")


@pytest.mark.parametrize(
    ("lines", "line", "message"),
    [
        ("  within: 24h\n", 4, "send: within apply to at: best only"),
        ("  at: best\n  within: 30m\n", 8, "send.within: 30m is out of range (1h to 7d)"),
        ("  at: best\n  within: 8d\n", 8, "send.within: 8d is out of range (1h to 7d)"),
        (
            '  at: best\n  fallback: "25:00"\n',
            8,
            "send.fallback: '25:00' is not a time of day: HH:MM, from 00:00 to 23:59",
        ),
    ],
)
def test_best_hour_settings_out_of_place_or_range_are_refused_with_their_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], lines: str, line: int, message: str
) -> None:
    # given
    (tmp_path / "templates").mkdir()
    for part in ("subject", "html", "txt"):
        (tmp_path / "templates" / f"test.{part}.j2").write_text("hi")
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD + lines, encoding="utf-8")

    # when
    status = main(["validate", str(tmp_path)])

    # then
    assert status == 1
    assert capsys.readouterr().out.splitlines() == [f"{bad}:{line}: {message}"]


def test_validate_uses_the_templates_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--templates points validate at another templates folder."""
    # given
    (tmp_path / "t.yaml").write_text(GOOD, encoding="utf-8")
    shared = tmp_path / "shared"
    shared.mkdir()
    for part in ("subject", "html", "txt"):
        (shared / f"test.{part}.j2").write_text("hi")

    # when
    without = main(["validate", str(tmp_path)])
    with_option = main(["validate", str(tmp_path), "--templates", str(shared)])

    # then
    assert (without, with_option) == (1, 0)
    assert "no template named 'test'" in capsys.readouterr().out


def test_validate_on_a_missing_folder_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A folder that does not exist is a usage error, reported on stderr."""
    # given
    missing = tmp_path / "nowhere"

    # when
    status = main(["validate", str(missing)])

    # then
    printed = capsys.readouterr()
    assert status == 2
    assert f"{missing}: no such folder" in printed.err
    assert printed.out == ""


def test_schema_prints_the_trigger_schema(capsys: pytest.CaptureFixture[str]) -> None:
    """`nudge schema` prints the JSON Schema the committed file must equal."""
    # given / when
    status = main(["schema"])

    # then
    assert status == 0
    assert json.loads(capsys.readouterr().out) == trigger_schema()


# ---- templates reading what the conditions do not guarantee ------------------------------

REQUIRES_URL = """\
id: test_trigger
when:
  event: Product Viewed
  where:
    - path: properties.url
      exists: true
send:
  channel: email
  template: test
"""


def _folder_with(tmp_path: Path, trigger: str, html: str) -> Path:
    (tmp_path / "t.yaml").write_text(trigger, encoding="utf-8")
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "test.subject.j2").write_text("Still looking?")
    (templates / "test.txt.j2").write_text("Hello")
    (templates / "test.html.j2").write_text(html)
    return tmp_path


def test_a_template_reading_a_property_no_condition_guarantees_is_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a trigger on any Product Viewed whose email links properties.url
    folder = _folder_with(tmp_path, GOOD, '<p>x</p>\n<a href="{{ event.properties.url }}">look</a>')
    # when
    status = main(["validate", str(folder)])
    # then the trigger is valid, and the line that would fail to render is named
    printed = capsys.readouterr()
    assert status == 0
    assert "test.html.j2:2: warning: test_trigger" in printed.out
    assert "do not guarantee event.properties.url" in printed.out
    assert "1 warning(s)" in printed.err


def test_a_read_with_a_default_is_not_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _folder_with(tmp_path, GOOD, '{{ event.properties.url | default("/") }}')
    main(["validate", str(folder)])
    assert "0 warning(s)" in capsys.readouterr().err


def test_a_read_tested_in_an_if_is_not_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    html = "{% if event.properties.url is defined %}{{ event.properties.url }}{% endif %}"
    main(["validate", str(_folder_with(tmp_path, GOOD, html))])
    assert "0 warning(s)" in capsys.readouterr().err


def test_a_read_the_conditions_require_is_not_warned_about(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _folder_with(tmp_path, REQUIRES_URL, "{{ event.properties.url }}")
    main(["validate", str(folder)])
    assert "0 warning(s)" in capsys.readouterr().err


def test_strict_fails_on_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # given a trigger whose template reads a property nothing guarantees
    folder = _folder_with(tmp_path, GOOD, "{{ event.properties.url }}")
    # when
    status = main(["validate", str(folder), "--strict"])
    # then
    assert status == 1
    assert "1 warning(s)" in capsys.readouterr().err


def test_a_score_naming_no_prediction_is_refused_with_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With a predictions folder beside the triggers, score: chrun (a typo) is an error at
    the line that names it."""
    # given
    triggers = tmp_path / "triggers"
    (triggers / "templates").mkdir(parents=True)
    for part in ("subject", "html", "txt"):
        (triggers / "templates" / f"risk.{part}.j2").write_text("hi")
    risk = triggers / "risk.yaml"
    risk.write_text(
        "id: risk\nwhen:\n  score: chrun\n  crosses: 70\n"
        "send:\n  channel: email\n  template: risk\n",
        encoding="utf-8",
    )
    (tmp_path / "predictions").mkdir()
    churn = (TRIGGERS.parent / "predictions" / "churn.yaml").read_text(encoding="utf-8")
    (tmp_path / "predictions" / "churn.yaml").write_text(churn, encoding="utf-8")

    # when
    status = main(["validate", str(triggers)])

    # then
    printed = capsys.readouterr()
    assert status == 1
    assert printed.out.splitlines() == [
        f"{risk}:3: trigger 'risk' reads the score of 'chrun', which no prediction defines"
        " (known: churn)"
    ]
