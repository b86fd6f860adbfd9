"""The `nudge` command line. Later issues add validate, explain and backtest here."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from nudge import __version__
from nudge.entrypoints.openapi import openapi_document

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nudge", description="Behavioral triggers in your own AWS account."
    )
    parser.add_argument("--version", action="version", version=f"nudge {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    openapi = commands.add_parser("openapi", help="print the beacon API's OpenAPI document")
    openapi.add_argument("--indent", type=int, default=2, help="JSON indentation (0 for one line)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    if arguments.command == "openapi":
        indent = arguments.indent or None
        sys.stdout.write(json.dumps(openapi_document(), indent=indent, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
