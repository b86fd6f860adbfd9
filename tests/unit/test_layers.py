"""The rings hold: botocore's errors stay in the adapters, nothing raises a bare
RuntimeError, and the core never names an HTTP status."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

PACKAGE = REPO / "layers" / "nudge" / "nudge"
# Only the translator knows botocore's errors; bootstrap builds clients (botocore.config).
BOTOCORE_ALLOWED = {"adapters/aws_errors.py", "bootstrap.py"}


def _modules(under: Path) -> list[Path]:
    return sorted(under.rglob("*.py"))


def _name(path: Path) -> str:
    return path.relative_to(PACKAGE).as_posix()


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def test_only_the_translator_imports_botocores_errors() -> None:
    """No module but adapters/aws_errors.py imports botocore.exceptions."""
    # given / when
    importers = {
        _name(path)
        for path in _modules(PACKAGE)
        if any(name.startswith("botocore.exceptions") for name in _imports(path))
    }

    # then
    assert importers <= BOTOCORE_ALLOWED


def test_the_core_and_services_do_not_import_botocore() -> None:
    """domain/ and service/ never import botocore or boto3."""
    # given / when
    importers = {
        _name(path)
        for ring in ("domain", "service")
        for path in _modules(PACKAGE / ring)
        if any(name.split(".")[0] in ("botocore", "boto3") for name in _imports(path))
    }

    # then
    assert importers == set()


def test_nothing_raises_a_bare_runtime_error() -> None:
    """Every raise names what went wrong with a type of its own, not RuntimeError."""
    # given / when
    raisers = {
        _name(path)
        for path in _modules(PACKAGE)
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Raise)
        and node.exc is not None
        and "RuntimeError" in ast.unparse(node.exc)
    }

    # then
    assert raisers == set()


def test_domain_errors_carry_no_http_status() -> None:
    """No class in domain/ or service/ has a ``status`` or ``code`` of its own: the
    entrypoint picks the response."""
    # given / when
    with_status = {
        f"{_name(path)}:{node.name}"
        for ring in ("domain", "service")
        for path in _modules(PACKAGE / ring)
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ClassDef)
        and any(
            isinstance(statement, ast.Assign)
            and any(
                isinstance(target, ast.Name) and target.id in ("status", "code")
                for target in statement.targets
            )
            for statement in node.body
        )
    }

    # then
    assert with_status == set()
