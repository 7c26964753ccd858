"""What a reload reports: the sections it changed, and the keys whose new value waits for
a gateway restart (kept at their running value meanwhile)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gateway.config.changes import keep_running, sections_changed
from gateway.config.loader import ConfigError, read_config_file
from gateway.config.schema import ConfigFile


def read(tmp_path: Path, **keys: object) -> ConfigFile:
    path = tmp_path / "lmx.yaml"
    path.write_text(yaml.safe_dump({"models": [], **keys}))
    return read_config_file(path)


def test_restart_only_keys_keep_their_running_value_and_are_named(tmp_path: Path) -> None:
    running = read(tmp_path)
    new = read(tmp_path, gateway={"port": 4321, "max_body_bytes": 1000}, run_dir="elsewhere")
    kept, pending = keep_running(running, new)
    assert pending == ["gateway.port", "run_dir"]
    assert kept.gateway.port == 1234 and kept.run_dir == "../run"
    assert kept.gateway.max_body_bytes == 1000  # applies at once
    assert sections_changed(running, kept) == ["gateway"]


def test_sections_changed_names_top_level_keys(tmp_path: Path) -> None:
    running = read(tmp_path)
    new = read(tmp_path, routing={"aliases": {}}, security={"api_keys": ["k"]}, auto_load=[])
    assert sections_changed(running, new) == ["security"]


@pytest.mark.parametrize(
    ("message", "key"),
    [
        ("models[1].port: 10001 is already used by models[0]", "models[1].port"),
        ("routing.aliases.chat[0]: unknown model 'x'", "routing.aliases.chat[0]"),
        ("/srv/lmx.yaml: not valid YAML: ...", None),
    ],
)
def test_a_config_error_knows_the_key_it_names(message: str, key: str | None) -> None:
    assert ConfigError(message).key == key
