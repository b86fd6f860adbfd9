"""Loading trigger files, and reporting each problem as file:line: message."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from nudge.domain.triggers.loader import Problem, load_triggers, parse_trigger
from nudge.domain.triggers.model import Trigger
from nudge.domain.triggers.schema import trigger_schema

TRIGGERS = Path(__file__).resolve().parents[2] / "triggers"
SHIPPED = sorted(TRIGGERS.glob("*.yaml"))

# Lines 1 to 6; tests append from line 7 on.
BASE = """\
id: test_trigger
when:
  event: Product Added
send:
  channel: email
  template: test
"""


def problems_in(text: str, templates: Path | None = None) -> list[Problem]:
    trigger, problems = parse_trigger(text, "triggers/test.yaml", templates)
    assert trigger is None, "a file with problems must not load"
    return problems


def only(problems: list[Problem]) -> Problem:
    assert len(problems) == 1, problems
    return problems[0]


# ---- a good file -------------------------------------------------------------------------


def test_a_valid_file_loads_without_problems() -> None:
    """A well-formed trigger loads and reports nothing."""
    # given
    text = BASE

    # when
    trigger, problems = parse_trigger(text, "triggers/test.yaml")

    # then
    assert problems == []
    assert trigger is not None
    assert trigger.id == "test_trigger"


def test_a_problem_reads_file_line_message() -> None:
    """A problem prints as file:line: message, the form editors and CI understand."""
    # given
    problem = Problem("triggers/a.yaml", 7, "trigger: unknown field 'colour'")

    # when
    printed = str(problem)

    # then
    assert printed == "triggers/a.yaml:7: trigger: unknown field 'colour'"


# ---- YAML-level problems -----------------------------------------------------------------


def test_a_yaml_error_reports_its_line() -> None:
    """Broken YAML is reported at the line the parser stopped on."""
    # given
    text = "id: test_trigger\nwhen:\n  event: [Product Added\nsend: x\n"

    # when
    problem = only(problems_in(text))

    # then
    assert problem.file == "triggers/test.yaml"
    assert problem.line == 4
    assert problem.message.startswith("YAML error:")


def test_a_tab_indentation_error_reports_its_line() -> None:
    """A tab used for indentation is a YAML error on that line."""
    # given
    text = BASE + "audience:\n\tpath: traits.tier\n"

    # when
    problem = only(problems_in(text))

    # then
    assert problem.line == 8
    assert "YAML error" in problem.message


def test_a_character_yaml_forbids_is_reported_not_raised() -> None:
    """A control character in the file is a YAML error with its line, not a crash."""
    # given
    text = BASE + "name: bell\x07\n"

    # when
    problem = only(problems_in(text))

    # then
    assert problem.line == 7
    assert problem.message.startswith("YAML error:")


def test_a_complex_key_is_reported_not_raised() -> None:
    """A list used as a mapping key is a YAML error with its line, not a crash."""
    # given
    text = BASE + "? [a, b]\n: 1\n"

    # when
    problem = only(problems_in(text))

    # then
    assert problem.line == 7
    assert problem.message.startswith("YAML error:")


def test_two_documents_in_one_file_are_refused() -> None:
    """A trigger file holds a single YAML document."""
    # given
    text = BASE + "---\n" + BASE

    # when
    problem = only(problems_in(text))

    # then
    assert problem.line == 7
    assert "YAML error" in problem.message


def test_an_alias_that_contains_itself_is_a_cycle() -> None:
    """A YAML alias inside its own anchor is reported at the anchor's line."""
    # given
    text = BASE + "audience: &c\n  all:\n    - *c\n"

    # when
    problem = only(problems_in(text))

    # then
    assert problem.line == 7
    assert problem.message == "a YAML alias refers to itself (a cycle)"


def test_an_alias_reused_without_a_cycle_is_fine() -> None:
    """An anchor used twice side by side is not a cycle."""
    # given
    text = BASE + (
        "audience:\n"
        "  any:\n"
        "    - &vip\n"
        "      path: traits.tier\n"
        "      eq: vip\n"
        "    - not:\n"
        "        not: *vip\n"
    )

    # when
    trigger, problems = parse_trigger(text, "triggers/test.yaml")

    # then
    assert problems == []
    assert trigger is not None


def test_an_empty_file_is_reported_on_line_one() -> None:
    """An empty file (or one with only comments) names what a trigger needs."""
    # given
    text = "# nothing yet\n\n"

    # when
    problem = only(problems_in(text))

    # then
    assert problem.line == 1
    assert problem.message == "empty file: a trigger needs at least id, when and send"


@pytest.mark.parametrize(
    ("text", "line"),
    [("- id: a\n- id: b\n", 1), ("# a comment\n\njust words\n", 3), ("# c\n42\n", 2)],
)
def test_a_document_that_is_not_a_mapping_is_refused(text: str, line: int) -> None:
    """A list or a scalar is not a trigger; the problem points at where it starts."""
    # given
    document = text

    # when
    problem = only(problems_in(document))

    # then
    assert problem.line == line
    assert problem.message == "a trigger file holds one mapping (id, when, send, ...)"


# ---- model problems, traced back to their line -----------------------------------------


def test_an_unknown_top_level_field_is_reported_at_its_line() -> None:
    """An unknown field is named, at the line where it is written."""
    # given
    text = BASE + "name: Test\ncolour: red\n"

    # when
    problem = only(problems_in(text))

    # then
    assert problem.line == 8
    assert problem.message == "trigger: unknown field 'colour'"


def test_an_unknown_field_inside_where_is_reported_at_its_line() -> None:
    """An unknown field in a where condition points at that field's line."""
    # given
    text = (
        "id: test_trigger\n"
        "when:\n"
        "  event: Product Added\n"
        "  where:\n"
        "    - path: properties.price\n"
        "      gt: 0\n"
        "      colour: red\n"
        "send:\n"
        "  channel: email\n"
        "  template: test\n"
    )

    # when
    problem = only(problems_in(text))

    # then
    assert problem.line == 7
    assert problem.message == "when.where.0: unknown field 'colour'"


def test_an_unknown_field_inside_audience_is_reported_at_its_line() -> None:
    """An unknown field deep in an audience points at that field's line."""
    # given
    text = BASE + (
        "audience:\n"
        "  all:\n"
        "    - path: traits.tier\n"
        "      eq: vip\n"
        "    - any:\n"
        "        - path: traits.age\n"
        "          gt: 30\n"
        "          note: grown-ups\n"
    )

    # when
    problem = only(problems_in(text))

    # then
    assert problem.line == 14
    assert problem.message == "audience.all.1.any.0: unknown field 'note'"


def test_an_unknown_operator_is_reported_at_its_line() -> None:
    """An operator outside the list is an unknown field on its line."""
    # given
    text = BASE + "audience:\n  path: traits.tier\n  equals: vip\n"

    # when
    problem = only(problems_in(text))

    # then
    assert problem.line == 9
    assert problem.message == "audience: unknown field 'equals'"


def test_a_missing_operator_is_reported_at_the_condition() -> None:
    """A predicate without an operator is reported where the condition starts."""
    # given
    text = BASE + "audience:\n  path: traits.tier\n"

    # when
    problem = only(problems_in(text))

    # then
    assert problem.line == 7
    assert "audience: needs exactly one operator" in problem.message


def test_a_bad_duration_is_reported_at_its_line() -> None:
    """A duration not in words is reported on its own line."""
    # given
    text = BASE + "unless:\n  event: Order Completed\n  within: 3 days\n"

    # when
    problem = only(problems_in(text))

    # then
    assert problem.line == 9
    assert problem.message == "unless.within: '3 days' is not a duration such as 30m, 24h or 7d"


def test_a_duration_out_of_range_is_reported_at_its_line() -> None:
    """A delay beyond 30 days is reported on the delay line."""
    # given
    text = BASE + "delay: 31d\n"

    # when
    problem = only(problems_in(text))

    # then
    assert problem.line == 7
    assert problem.message == "delay: 31d is out of range (0s to 30d)"


def test_a_bad_reentry_is_reported_at_its_line() -> None:
    """Unknown reentry words are reported on the reentry line."""
    # given
    text = BASE + "reentry: twice\n"

    # when
    problem = only(problems_in(text))

    # then
    assert problem.line == 7
    assert problem.message.startswith("reentry: must be 'once', 'every_time' or 'once_per")


def test_an_empty_all_is_reported_at_its_line() -> None:
    """all: [] is reported on the all line."""
    # given
    text = BASE + "audience:\n  all: []\n"

    # when
    problem = only(problems_in(text))

    # then
    assert problem.line == 8
    assert problem.message.startswith("audience.all:")


def test_a_missing_required_field_is_named() -> None:
    """A trigger without send (or steps) says send is required."""
    # given
    text = "id: test_trigger\nwhen:\n  event: Product Added\n"

    # when
    problem = only(problems_in(text))

    # then
    assert problem.line == 1
    assert problem.message == "trigger: send is required (one message), or steps (a journey)"


def test_every_problem_in_a_file_is_reported() -> None:
    """Several mistakes in one file are all reported, each at its own line."""
    # given
    text = BASE + "delay: forever\ncolour: red\n"

    # when
    problems = problems_in(text)

    # then
    assert sorted((problem.line, problem.message) for problem in problems) == [
        (7, "delay: 'forever' is not a duration such as 30m, 24h or 7d"),
        (8, "trigger: unknown field 'colour'"),
    ]


# ---- unreachable conditions --------------------------------------------------------------


def test_above_five_and_below_three_is_unreachable() -> None:
    """gt 5 and lt 3 on the same path can never hold together."""
    # given
    text = (
        "id: test_trigger\n"
        "when:\n"
        "  event: Product Viewed\n"
        "  where:\n"
        "    - path: properties.price\n"
        "      gt: 5\n"
        "    - path: properties.price\n"
        "      lt: 3\n"
        "send:\n"
        "  channel: email\n"
        "  template: test\n"
    )

    # when
    problem = only(problems_in(text))

    # then
    assert problem.line == 4
    assert problem.message == "unreachable: properties.price cannot be above 5 and below 3 at once"


def test_two_different_equalities_are_unreachable() -> None:
    """eq a and eq b on the same path can never hold together."""
    # given
    text = BASE + (
        "audience:\n"
        "  all:\n"
        "    - path: traits.tier\n"
        "      eq: a\n"
        "    - all:\n"
        "        - path: traits.tier\n"
        "          eq: b\n"
    )

    # when
    problem = only(problems_in(text))

    # then
    assert problem.line == 7
    assert problem.message == "unreachable: traits.tier cannot equal 'a' and 'b' at once"


def test_absent_and_compared_is_unreachable() -> None:
    """exists false and a comparison on the same path can never hold together."""
    # given
    text = BASE + (
        "audience:\n"
        "  all:\n"
        "    - path: traits.email\n"
        "      exists: false\n"
        "    - path: traits.email\n"
        "      contains: '@'\n"
    )

    # when
    problem = only(problems_in(text))

    # then
    assert problem.line == 7
    assert problem.message == "unreachable: traits.email is required to be absent and also compared"


@pytest.mark.parametrize(
    "operators",
    [
        [("gte", 5), ("lte", 5)],
        [("gte", 5), ("lte", 5), ("gt", 1)],
        [("eq", 1), ("eq", 1.0)],
        [("exists", False), ("ne", "x")],
        [("gt", 3), ("lt", 5)],
    ],
)
def test_satisfiable_combinations_are_not_flagged(operators: list[tuple[str, Any]]) -> None:
    """Bounds that meet inclusively, equal numbers and absent-or-different are all reachable."""
    # given
    lines = "".join(
        f"    - path: traits.score\n      {operator}: {json.dumps(operand)}\n"
        for operator, operand in operators
    )
    text = BASE + "audience:\n  all:\n" + lines

    # when
    trigger, problems = parse_trigger(text, "triggers/test.yaml")

    # then
    assert problems == []
    assert trigger is not None


def test_any_branches_are_not_treated_as_a_conjunction() -> None:
    """Different equalities under any are alternatives, not a contradiction."""
    # given
    text = BASE + (
        "audience:\n"
        "  any:\n"
        "    - path: traits.tier\n"
        "      eq: a\n"
        "    - path: traits.tier\n"
        "      eq: b\n"
    )

    # when
    trigger, problems = parse_trigger(text, "triggers/test.yaml")

    # then
    assert problems == []
    assert trigger is not None


def test_gt_and_lte_at_the_same_bound_is_unreachable() -> None:
    """gt 5 and lte 5 leave no value in between."""
    # given
    text = BASE + (
        "audience:\n"
        "  all:\n"
        "    - path: traits.score\n"
        "      gt: 5\n"
        "    - path: traits.score\n"
        "      lte: 5\n"
    )

    # when
    problem = only(problems_in(text))

    # then
    assert problem.message == "unreachable: traits.score cannot be above 5 and below 5 at once"


# ---- templates ---------------------------------------------------------------------------


def test_a_template_that_does_not_exist_is_reported_at_its_line(tmp_path: Path) -> None:
    """send.template must name a file in the templates folder."""
    # given
    (tmp_path / "other.txt.j2").write_text("hello")

    # when
    problem = only(problems_in(BASE, tmp_path))

    # then
    assert problem.line == 6
    assert problem.message == f"send.template: no template named 'test' in {tmp_path}"


def test_a_missing_templates_folder_reports_the_template(tmp_path: Path) -> None:
    """Without a templates folder, no template can be found."""
    # given
    templates = tmp_path / "nowhere"

    # when
    problem = only(problems_in(BASE, templates))

    # then
    assert problem.line == 6
    assert "no template named 'test'" in problem.message


def test_a_webhook_needs_only_its_json_body_template(tmp_path: Path) -> None:
    """A webhook trigger's template is one file, test.json.j2."""
    # given
    (tmp_path / "test.json.j2").write_text("{}")
    webhook = BASE.replace("channel: email", "channel: webhook")

    # when
    trigger, problems = parse_trigger(webhook, "triggers/test.yaml", tmp_path)

    # then
    assert problems == []
    assert trigger is not None


# ---- folders -----------------------------------------------------------------------------


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def test_duplicate_ids_across_files_are_reported_on_the_later_file(tmp_path: Path) -> None:
    """Two files with one id: the second (in name order) is reported and not loaded."""
    # given
    (tmp_path / "templates").mkdir()
    for part in ("subject", "html", "txt"):
        (tmp_path / "templates" / f"test.{part}.j2").write_text("hi")
    write(tmp_path, "a.yaml", BASE)
    second = write(tmp_path, "b.yml", BASE)

    # when
    loaded = load_triggers(tmp_path)

    # then
    assert [trigger.id for trigger in loaded.triggers] == ["test_trigger"]
    assert loaded.problems == [
        Problem(str(second), 1, f"id 'test_trigger' is already used by {tmp_path / 'a.yaml'}")
    ]
    assert not loaded.ok


def test_a_folder_reports_problems_per_file_and_keeps_the_good_ones(tmp_path: Path) -> None:
    """Each bad file is reported with its own path; good files still load."""
    # given
    templates = tmp_path / "templates"
    templates.mkdir()
    for part in ("subject", "html", "txt"):
        (templates / f"test.{part}.j2").write_text("hi")
    write(tmp_path, "good.yaml", BASE)
    bad = write(tmp_path, "bad.yaml", BASE.replace("test_trigger", "other") + "colour: red\n")

    # when
    loaded = load_triggers(tmp_path)

    # then
    assert [str(problem) for problem in loaded.problems] == [
        f"{bad}:7: trigger: unknown field 'colour'"
    ]
    assert loaded.sources == {"test_trigger": str(tmp_path / "good.yaml")}


def test_an_explicit_templates_folder_replaces_the_default(tmp_path: Path) -> None:
    """load_triggers looks for templates where it is told to."""
    # given
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for part in ("subject", "html", "txt"):
        (elsewhere / f"test.{part}.j2").write_text("hi")
    write(tmp_path, "t.yaml", BASE)

    # when
    loaded = load_triggers(tmp_path, elsewhere)

    # then
    assert loaded.ok
    assert [trigger.id for trigger in loaded.triggers] == ["test_trigger"]


# ---- the shipped triggers and their schema -----------------------------------------------


def test_the_shipped_triggers_load_without_problems() -> None:
    """triggers/ loads cleanly, with its templates, and holds the example triggers."""
    # given
    folder = TRIGGERS

    # when
    loaded = load_triggers(folder)

    # then
    assert loaded.problems == []
    assert sorted(trigger.id for trigger in loaded.triggers) == [
        "abandoned_cart",
        "cart_recovery_series",
        "churn_risk",
        "product_interest",
        "product_offer",
        "re_engagement",
        "re_engagement_best_hour",
        "vip_checkout_call",
    ]


def test_the_committed_schema_is_up_to_date() -> None:
    """triggers/trigger.schema.json is exactly what the model generates today."""
    # given
    committed = json.loads((TRIGGERS / "trigger.schema.json").read_text(encoding="utf-8"))

    # when
    generated = trigger_schema()

    # then
    assert committed == generated, (
        "triggers/trigger.schema.json is stale: run `nudge schema > triggers/trigger.schema.json`"
    )


def test_the_schema_names_its_draft_and_title() -> None:
    """The schema declares draft 2020-12 and a title editors can show."""
    # given / when
    schema = trigger_schema()

    # then
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "Nudge trigger"
    assert {"id", "when"} <= set(schema["required"])
    assert schema["oneOf"] == [{"required": ["send"]}, {"required": ["steps"]}]


@pytest.mark.parametrize("path", SHIPPED, ids=[path.name for path in SHIPPED])
def test_each_shipped_trigger_validates_against_the_schema(path: Path) -> None:
    """Every shipped trigger is valid for the schema editors use."""
    # given
    jsonschema = pytest.importorskip("jsonschema")
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(trigger_schema())

    # when
    errors = [error.message for error in validator.iter_errors(document)]

    # then
    assert errors == []


def test_the_schema_refuses_an_unknown_field() -> None:
    """The schema, like the loader, refuses fields it does not know."""
    # given
    jsonschema = pytest.importorskip("jsonschema")
    document: dict[str, Any] = {**yaml.safe_load(BASE), "colour": "red"}
    validator = jsonschema.Draft202012Validator(trigger_schema())

    # when
    valid = validator.is_valid(document)

    # then
    assert valid is False


def test_the_shipped_triggers_are_exactly_the_four_examples() -> None:
    """The shipped folder holds the four example files, each loading to its own id."""
    # given
    names = [path.stem for path in SHIPPED]

    # when
    ids = [Trigger.model_validate(yaml.safe_load(path.read_text())).id for path in SHIPPED]

    # then
    assert ids == names


def test_a_key_given_twice_is_reported_on_its_second_line() -> None:
    """YAML would silently keep the last of two equal keys; the loader names the repeat instead."""
    # given
    text = "id: first\nid: second\nwhen:\n  event: A\nsend:\n  channel: email\n  template: t\n"

    # when
    trigger, problems = parse_trigger(text, "twice.yaml")

    # then
    assert trigger is None
    assert [str(problem) for problem in problems] == ["twice.yaml:2: 'id' is given twice"]


def _email_template(folder: Path, **parts: str) -> None:
    for part in ("subject", "html", "txt"):
        (folder / f"test.{part}.j2").write_text(parts.get(part, "hi"))


def test_a_missing_email_part_is_reported(tmp_path: Path) -> None:
    """An email template needs a subject, an HTML and a text part; a missing one is named."""
    # given
    _email_template(tmp_path)
    (tmp_path / "test.txt.j2").unlink()

    # when
    problem = only(problems_in(BASE, tmp_path))

    # then
    assert problem.message == "template test.txt.j2 is missing"


def test_a_template_syntax_error_is_reported(tmp_path: Path) -> None:
    """A template that does not parse is refused at validate time, not at send time."""
    # given
    _email_template(tmp_path, html="{{ unclosed ")

    # when
    problem = only(problems_in(BASE, tmp_path))

    # then
    assert problem.message.startswith("test.html.j2: unexpected end of template")


def test_a_sandbox_escape_attempt_is_reported(tmp_path: Path) -> None:
    """Reaching for Python internals ({{ ''.__class__ }}) is refused before deployment."""
    # given
    _email_template(tmp_path, subject="{{ ''.__class__ }}")

    # when
    problem = only(problems_in(BASE, tmp_path))

    # then
    assert problem.message == "test.subject.j2:1: '__class__' is refused by the sandbox"
