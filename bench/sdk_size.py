"""The browser SDK's size: sdk/nudge.js raw, minified and gzipped, next to the Segment-
compatible browser libraries a shop would otherwise load.

Each file is measured raw, minified two ways and gzipped (level 9): rjsmin (whitespace and
comments only, what the size test uses) and terser (``-c -m``, what a site's build or a
CDN serves). The baselines come from ``tests/e2e/npm/node_modules`` (``npm ci`` there,
which ``make test`` runs): @segment/analytics-next's UMD bundle (``dist/umd/index.js``,
the entry that loads first; its lazily loaded chunks are left out, so this is a lower
bound) and @rudderstack/analytics-js's modern UMD build (plugins loaded from its CDN) and
its bundled one (plugins inside). Nothing is downloaded.
"""

from __future__ import annotations

import gzip
import json
import subprocess
from pathlib import Path

import rjsmin  # type: ignore[import-untyped]
from rich.console import Console

from bench.common import REPO, Figures, side_by_side

__all__ = ["run"]

BUDGET = 6144  # bytes: nudge.js minified and gzipped (tests/e2e/test_browser_sdk.py)
NPM = REPO / "tests" / "e2e" / "npm"
NODE_MODULES = NPM / "node_modules"
TERSER = NODE_MODULES / ".bin" / "terser"
TERSER_TIMEOUT = 300.0
LIBRARIES = {
    "nudge.js": REPO / "sdk" / "nudge.js",
    "analytics-next (umd entry)": NODE_MODULES / "@segment/analytics-next/dist/umd/index.js",
    "rudderstack (modern umd)": NODE_MODULES
    / "@rudderstack/analytics-js/dist/npm/modern/umd/index.js",
    "rudderstack (modern bundled umd)": NODE_MODULES
    / "@rudderstack/analytics-js/dist/npm/modern/bundled/umd/index.js",
}


def _version(package: str) -> str:
    manifest = NODE_MODULES / package / "package.json"
    return str(json.loads(manifest.read_text())["version"])


def _terser(path: Path) -> bytes:
    result = subprocess.run(
        [str(TERSER), str(path), "-c", "-m"],
        capture_output=True,
        timeout=TERSER_TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"terser failed on {path}:\n{result.stderr.decode()[-2000:]}")
    return result.stdout


def _gz(data: bytes) -> int:
    return len(gzip.compress(data, compresslevel=9))


def _measure(path: Path) -> dict[str, int]:
    raw = path.read_bytes()
    light = rjsmin.jsmin(raw.decode()).encode()
    full = _terser(path)
    return {
        "raw_bytes": len(raw),
        "raw_gzip_bytes": _gz(raw),
        "rjsmin_bytes": len(light),
        "rjsmin_gzip_bytes": _gz(light),
        "terser_bytes": len(full),
        "terser_gzip_bytes": _gz(full),
    }


def _kb(size: int) -> str:
    return f"{size / 1024:.1f}"


def run(console: Console) -> Figures:
    if not TERSER.exists():
        raise RuntimeError(f"no {TERSER}: run `npm ci` in {NPM} (make test does)")
    sizes = {name: _measure(path) for name, path in LIBRARIES.items()}
    rows = [
        [
            name,
            _kb(figures["raw_bytes"]),
            _kb(figures["raw_gzip_bytes"]),
            _kb(figures["rjsmin_gzip_bytes"]),
            _kb(figures["terser_bytes"]),
            _kb(figures["terser_gzip_bytes"]),
        ]
        for name, figures in sizes.items()
    ]
    versions = (
        f"analytics-next {_version('@segment/analytics-next')}, "
        f"rudderstack {_version('@rudderstack/analytics-js')}"
    )
    console.print(
        side_by_side(
            f"Browser SDK size (KB; {versions})",
            ["", "raw", "raw+gz", "rjsmin+gz", "terser", "terser+gz"],
            rows,
        )
    )
    ours = sizes["nudge.js"]["rjsmin_gzip_bytes"]
    console.print(f"  nudge.js rjsmin+gz: {ours} bytes of the {BUDGET}-byte budget")
    return {"libraries": sizes, "budget_bytes": BUDGET, "within_budget": ours <= BUDGET}
