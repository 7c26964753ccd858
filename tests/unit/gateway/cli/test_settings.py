"""Where lmx looks for the gateway and for scripts/serve."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway.cli import settings


def test_checkout_holds_the_serve_script_that_lmx_serve_runs() -> None:
    serve = settings.CHECKOUT / "scripts" / "serve"
    assert serve.is_file() and os.access(serve, os.X_OK)


def test_url_comes_from_the_config_files_port_when_lmx_url_is_unset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "lmx.yaml"
    config.write_text("gateway:\n  host: 0.0.0.0\n  port: 4321\n")
    monkeypatch.delenv("LMX_URL", raising=False)
    monkeypatch.setenv("LMX_CONFIG", str(config))
    assert settings.from_environment().url == "http://127.0.0.1:4321"

    config.write_text("gateway: [not, a, mapping")
    assert settings.from_environment().url == "http://127.0.0.1:1234"

    monkeypatch.setenv("LMX_URL", "http://127.0.0.1:9999/")
    assert settings.from_environment().url == "http://127.0.0.1:9999"


def test_one_key_serves_both_unless_an_admin_key_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LMX_API_KEY", "k")
    monkeypatch.delenv("LMX_ADMIN_KEY", raising=False)
    assert (settings.from_environment().api_key, settings.from_environment().admin_key) == (
        "k",
        "k",
    )
    monkeypatch.setenv("LMX_ADMIN_KEY", "admin")
    assert settings.from_environment().admin_key == "admin"
