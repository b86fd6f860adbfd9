"""The template sandbox under generated templates (hypothesis): any template renders or is
refused with a RenderError naming the file; none reaches Python's internals."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nudge.domain.render import Renderer, RenderError

BOUNDED = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
CONTEXT = {
    "traits": {"first_name": "Ada", "email": "ada@example.com"},
    "event": {"properties": {"items": [{"name": "Wool slippers", "price": 59.0}]}},
    "links": {"unsubscribe": "https://example.com/u"},
}
# Where a template escaping the sandbox would start: names in the context and Jinja's globals.
ROOTS = [
    "traits",
    "event",
    "links",
    "''",
    "[]",
    "{}",
    "range",
    "lipsum",
    "cycler",
    "joiner",
    "namespace",
    "self",
    "loop",
    "config",
    "request",
    "x",
]
# What it would reach for: Python's object model, the interpreter, string formatting.
ATTRIBUTES = [
    "__class__",
    "__mro__",
    "__subclasses__",
    "__globals__",
    "__init__",
    "__dict__",
    "__builtins__",
    "__import__",
    "__code__",
    "__closure__",
    "func_globals",
    "mro",
    "format",
    "format_map",
    "gi_frame",
    "f_back",
    "os",
    "popen",
    "system",
    "read",
    "first_name",
    "properties",
    "items",
    "name",
    "append",
    "pop",
    "update",
]
CALLS = ["", "()", "(1)", "('x')", "('{0.__class__}')", "(0)"]
FILTERS = [
    "",
    "|string",
    "|list",
    "|first",
    "|attr('__class__')",
    "|format('x')",
    "|tojson",
    "|safe",
    "|length",
    "|map(attribute='__class__')|list",
]
# What a rendered page would show had it got through.
LEAKS = ("<class", "<function", "<built-in", "<module", "__builtins__", "object at 0x")


@st.composite
def reaching_expressions(draw: st.DrawFn) -> str:
    expression = draw(st.sampled_from(ROOTS))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        attribute = draw(st.sampled_from(ATTRIBUTES))
        expression += draw(
            st.sampled_from([f".{attribute}", f"['{attribute}']", f"|attr('{attribute}')"])
        )
        expression += draw(st.sampled_from(CALLS))
    return "{{ " + expression + draw(st.sampled_from(FILTERS)) + " }}"


def _render(tmp_path: Path, template: str) -> str | None:
    (tmp_path / "fuzz.in_app.html.j2").write_text(template)
    try:
        return Renderer(tmp_path).in_app("fuzz", CONTEXT)
    except RenderError as error:
        refusal = str(error)
    assert "fuzz.in_app.html.j2" in refusal  # the refusal names the template
    return None


@BOUNDED
@given(st.text(max_size=200))
def test_any_template_text_renders_or_is_refused(tmp_path: Path, text: str) -> None:
    _render(tmp_path, text)


@BOUNDED
@given(reaching_expressions())
def test_reaching_for_pythons_internals_is_refused_or_shows_nothing_of_them(
    tmp_path: Path, template: str
) -> None:
    rendered = _render(tmp_path, template)
    assert rendered is None or not any(leak in rendered for leak in LEAKS), rendered
