"""local/ knows the template, not the package: from `nudge` it imports the composition
root only, and nothing in the package or the functions imports local/."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO


def _imported_modules(path: Path) -> set[str]:
    """Every module a file imports, type-checking-only imports included; for
    ``from package import name`` both the package and ``package.name``, since the name
    may be a module."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def _package_imports(path: Path) -> set[str]:
    """The ``nudge`` modules a file imports; ``nudge.bootstrap.person_views`` counts as
    ``nudge.bootstrap``."""
    modules = {name for name in _imported_modules(path) if name.split(".")[0] == "nudge"}
    return {".".join(name.split(".")[:2]) for name in modules if name != "nudge"}


def test_local_imports_nothing_from_the_package_but_bootstrap() -> None:
    """Each module under local/ reaches the package through nudge.bootstrap alone."""
    # given
    modules = sorted((REPO / "local").rglob("*.py"))
    # when
    reached = {
        path.relative_to(REPO).as_posix(): _package_imports(path)
        for path in modules
        if _package_imports(path)
    }
    # then
    assert reached, "local/ should reach the package through nudge.bootstrap"
    assert all(names == {"nudge.bootstrap"} for names in reached.values()), reached


def test_neither_the_package_nor_the_functions_import_local() -> None:
    """No module in layers/nudge/nudge or functions/ imports local/."""
    # given
    modules = [
        *(REPO / "layers" / "nudge" / "nudge").rglob("*.py"),
        *(REPO / "functions").rglob("*.py"),
    ]
    # when
    importers = [
        path.relative_to(REPO).as_posix()
        for path in modules
        if any(name.split(".")[0] == "local" for name in _imported_modules(path))
    ]
    # then
    assert importers == []
