"""The nudge command line."""

from __future__ import annotations

import json

import pytest
from nudge.entrypoints.cli import main


def test_openapi_prints_the_beacon_api_document(capsys: pytest.CaptureFixture[str]) -> None:
    """`nudge openapi` prints the OpenAPI document that lists every beacon route."""
    # given / when
    status = main(["openapi"])
    # then
    document = json.loads(capsys.readouterr().out)
    assert status == 0
    assert document["openapi"].startswith("3.1")
    assert {"/v1/track", "/v1/t", "/v1/batch", "/v1/import"} <= set(document["paths"])


def test_a_command_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    """Running `nudge` without a command is a usage error, not a silent success."""
    # given / when
    with pytest.raises(SystemExit) as exit_info:
        main([])
    # then
    assert exit_info.value.code == 2
    assert "usage: nudge" in capsys.readouterr().err
