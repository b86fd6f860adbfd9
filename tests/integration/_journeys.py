"""A triggers folder holding the shipped cart_recovery_series switched on (it ships off),
for the tests that drive journeys: the functions load it through NUDGE_TRIGGERS_DIR."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from tests.conftest import REPO

__all__ = ["SERIES", "journey_folder"]

SERIES = "cart_recovery_series"


def journey_folder(folder: Path, extra: Mapping[str, str] | None = None) -> Path:
    """``folder`` made a triggers folder: the series enabled, the shipped templates, and
    ``extra`` triggers (file name -> YAML) beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    shipped = (REPO / "triggers" / f"{SERIES}.yaml").read_text(encoding="utf-8")
    assert "\nenabled: false\n" in shipped, "the series ships off; this switches it on"
    enabled = shipped.replace("\nenabled: false\n", "\nenabled: true\n")
    (folder / f"{SERIES}.yaml").write_text(enabled, encoding="utf-8")
    (folder / "templates").symlink_to(REPO / "triggers" / "templates")
    for name, text in (extra or {}).items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder
