"""The built Lambda layer's size, against Lambda's limit and a layer without pydantic.

Runs the layer's own Makefile target (what ``sam build`` runs): manylinux aarch64 wheels
for Python 3.13 from PyPI, into a temporary ARTIFACTS_DIR. The baseline is the same
Makefile on a copy of the layer whose requirements leave pydantic out (Powertools, jinja2
and PyYAML stay). Nothing is cached in the repository.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections import defaultdict
from pathlib import Path

from rich.console import Console

from bench.common import REPO, Figures, side_by_side

__all__ = ["run"]

LAYER = REPO / "layers" / "nudge"
TARGET = "build-NudgeLayer"
LIMIT_UNZIPPED = 250 * 1024 * 1024  # function code plus all layers, unzipped
LIMIT_ZIPPED_UPLOAD = 50 * 1024 * 1024  # direct upload; larger zips must go through S3
BUILD_TIMEOUT = 600.0
MB = 1024 * 1024


def _build(layer_dir: Path, artifacts: Path) -> None:
    result = subprocess.run(
        [
            "make",
            "-C",
            str(layer_dir),
            TARGET,
            f"ARTIFACTS_DIR={artifacts}",
            f"PYTHON={sys.executable}",
        ],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"make {TARGET} failed in {layer_dir}:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
        )


def _measure(artifacts: Path, scratch: Path) -> dict[str, object]:
    files = [path for path in artifacts.rglob("*") if path.is_file()]
    unzipped = sum(path.stat().st_size for path in files)
    by_package: dict[str, int] = defaultdict(int)
    root = artifacts / "python"
    for path in files:
        parts = path.relative_to(root).parts
        name = parts[0] if len(parts) > 1 else "(top-level files)"
        by_package[name.split("-")[0] if name.endswith(".dist-info") else name] += (
            path.stat().st_size
        )
    archive = scratch / "layer.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as bundle:
        for path in sorted(files):
            bundle.write(path, path.relative_to(artifacts).as_posix())
    zipped = archive.stat().st_size
    archive.unlink()
    largest = sorted(by_package.items(), key=lambda pair: -pair[1])[:6]
    return {
        "unzipped_bytes": unzipped,
        "zipped_bytes": zipped,
        "files": len(files),
        "share_of_unzipped_limit": unzipped / LIMIT_UNZIPPED,
        "largest_packages_bytes": dict(largest),
    }


def _baseline_layer(scratch: Path) -> Path:
    """A copy of the layer directory whose requirements leave pydantic out."""
    copy = scratch / "layer-without-pydantic"
    shutil.copytree(LAYER, copy, ignore=shutil.ignore_patterns("*.egg-info", "__pycache__"))
    requirements = (LAYER / "requirements.txt").read_text().splitlines()
    kept = [line for line in requirements if not line.strip().lower().startswith("pydantic")]
    (copy / "requirements.txt").write_text("\n".join(kept) + "\n")
    return copy


def _mb(size: object) -> str:
    return f"{float(str(size)) / MB:.1f}"


def run(console: Console) -> Figures:
    with tempfile.TemporaryDirectory(prefix="nudge-bench-layer-") as temp:
        scratch = Path(temp)
        ours_dir, base_dir = scratch / "nudge-artifacts", scratch / "baseline-artifacts"
        _build(LAYER, ours_dir)
        ours = _measure(ours_dir, scratch)
        _build(_baseline_layer(scratch), base_dir)
        base = _measure(base_dir, scratch)
    rows = [
        [
            "unzipped (MB)",
            _mb(ours["unzipped_bytes"]),
            _mb(base["unzipped_bytes"]),
            _mb(LIMIT_UNZIPPED),
        ],
        [
            "zipped (MB)",
            _mb(ours["zipped_bytes"]),
            _mb(base["zipped_bytes"]),
            _mb(LIMIT_ZIPPED_UPLOAD),
        ],
        [
            "share of 250 MB limit",
            f"{float(str(ours['share_of_unzipped_limit'])):.1%}",
            f"{float(str(base['share_of_unzipped_limit'])):.1%}",
            "100%",
        ],
        ["files", str(ours["files"]), str(base["files"]), ""],
    ]
    console.print(
        side_by_side(
            f"Lambda layer ({TARGET}: manylinux aarch64, Python 3.13)",
            ["", "Nudge layer", "baseline: without pydantic", "Lambda limit"],
            rows,
        )
    )
    largest = ours["largest_packages_bytes"]
    if isinstance(largest, dict):
        console.print(
            "  largest in the Nudge layer (MB): "
            + ", ".join(f"{n} {_mb(b)}" for n, b in largest.items())
        )
    return {
        "nudge": ours,
        "baseline_without_pydantic": base,
        "limit_unzipped_bytes": LIMIT_UNZIPPED,
        "limit_zipped_direct_upload_bytes": LIMIT_ZIPPED_UPLOAD,
    }
