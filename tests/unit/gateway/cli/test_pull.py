"""lmx pull's reading of the gateway's progress events (a real pull needs a model hub)."""

from __future__ import annotations

import pytest

from gateway.cli.client import CliError
from gateway.cli.pull import _follow

PROGRESS = [
    {"status": "downloading", "file": "m.gguf", "bytes": 10, "total": 100, "rate_bytes_s": 5.0},
    {"status": "downloading", "file": "m.gguf", "bytes": 100, "total": 100, "rate_bytes_s": 9.0},
    {"status": "downloading", "file": "README.md", "bytes": 3, "total": None, "rate_bytes_s": None},
]


def test_success_event_is_the_result() -> None:
    final = {"status": "success", "repo": "o/r", "path": "/m/o/r", "bytes": 103, "id": "r"}
    assert _follow(iter([*PROGRESS, final]), "o/r") == final


def test_error_event_becomes_the_error() -> None:
    failed = {"status": "error", "error": {"message": "repository not found", "code": "x"}}
    with pytest.raises(CliError, match=r"^pull failed: repository not found$"):
        _follow(iter([*PROGRESS, failed]), "o/r")


def test_stream_that_ends_without_a_result_is_an_error() -> None:
    with pytest.raises(CliError, match="without saying whether it succeeded"):
        _follow(iter(PROGRESS), "o/r")
