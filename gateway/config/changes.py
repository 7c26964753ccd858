"""What a reload changes between two config files, and which keys it cannot change while
the gateway runs (they keep their running value until a restart)."""

from __future__ import annotations

import dataclasses
from typing import Any

from gateway.config.schema import ConfigFile

# Bound or built once at start-up: the listening socket, the upstream client's
# timeouts, and the folder supervisord's own config includes worker programs from.
RESTART_KEYS: tuple[tuple[str, ...], ...] = (
    ("gateway", "host"),
    ("gateway", "port"),
    ("gateway", "connect_timeout_s"),
    ("gateway", "read_timeout_s"),
    ("run_dir",),
)


def keep_running(running: ConfigFile, new: ConfigFile) -> tuple[ConfigFile, list[str]]:
    """`new` with the restart-only keys at their running values, and those that differ."""
    pending = [".".join(key) for key in RESTART_KEYS if _get(new, key) != _get(running, key)]
    gateway = dataclasses.replace(
        new.gateway,
        **{k[1]: _get(running, k) for k in RESTART_KEYS if len(k) == 2 and k[0] == "gateway"},
    )
    return dataclasses.replace(new, gateway=gateway, run_dir=running.run_dir), pending


def sections_changed(old: ConfigFile, new: ConfigFile) -> list[str]:
    """The top-level keys whose value differs."""
    return [
        f.name
        for f in dataclasses.fields(ConfigFile)
        if getattr(old, f.name) != getattr(new, f.name)
    ]


def _get(file: ConfigFile, key: tuple[str, ...]) -> Any:
    value: Any = file
    for part in key:
        value = getattr(value, part)
    return value
