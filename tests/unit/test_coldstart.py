"""A handler's cold start runs with the garbage collector paused, and every handler module
pauses it first and starts it again last."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

FUNCTIONS = sorted((REPO / "functions").glob("*/app.py"))


def _in_fresh_interpreter(code: str) -> str:
    """What ``code`` prints, run where no collector setting of this test process leaks in."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "layers" / "nudge")}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def test_importing_coldstart_pauses_the_collector_and_ready_freezes_and_resumes_it() -> None:
    """Import pauses the collector; ready() freezes what the cold start built and resumes."""
    # GIVEN a fresh interpreter that imports the module, as a handler does first
    code = (
        "import gc\n"
        "from nudge import coldstart\n"
        "paused = not gc.isenabled()\n"
        "coldstart.ready()\n"
        "print(paused, gc.isenabled(), gc.get_freeze_count() > 0)"
    )
    # WHEN the handler is built
    printed = _in_fresh_interpreter(code)
    # THEN the collector was off while it was built, and is on again with its objects frozen
    assert printed == "True True True"


def test_ready_leaves_a_collector_it_did_not_pause_alone() -> None:
    """A process that runs without the collector keeps it off, and nothing is frozen."""
    # GIVEN a process that turned the collector off before any handler was imported
    code = (
        "import gc\n"
        "gc.disable()\n"
        "from nudge import coldstart\n"
        "coldstart.ready()\n"
        "print(gc.isenabled(), gc.get_freeze_count())"
    )
    # WHEN a handler is built in it
    printed = _in_fresh_interpreter(code)
    # THEN the collector stays off and nothing was frozen
    assert printed == "False 0"


def _statements(path: Path) -> list[ast.stmt]:
    body = ast.parse(path.read_text()).body
    # the docstring and `from __future__ import annotations` come before anything
    return [
        node
        for node in body
        if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))
        and not (isinstance(node, ast.ImportFrom) and node.module == "__future__")
    ]


def test_every_handler_pauses_the_collector_before_any_other_import() -> None:
    """The first statement of each functions/*/app.py imports nudge.coldstart."""
    # GIVEN every function's handler module
    firsts = {path.parent.name: _statements(path)[0] for path in FUNCTIONS}
    # WHEN the first statement is read
    late = [
        name
        for name, first in firsts.items()
        if not (
            isinstance(first, ast.ImportFrom)
            and first.module == "nudge"
            and [alias.name for alias in first.names] == ["coldstart"]
        )
    ]
    # THEN it is the coldstart import in all of them
    assert FUNCTIONS
    assert late == []


def test_every_handler_resumes_the_collector_as_its_last_statement() -> None:
    """The last statement of each functions/*/app.py is coldstart.ready()."""
    # GIVEN every function's handler module
    lasts = {path.parent.name: ast.unparse(_statements(path)[-1]) for path in FUNCTIONS}
    # WHEN the last statement is read
    other = {name: last for name, last in lasts.items() if last != "coldstart.ready()"}
    # THEN it is ready() in all of them
    assert FUNCTIONS
    assert other == {}
