"""The service files and the service managers' command sequences.

The systemd path runs as a subprocess test against the `systemctl` of this machine
(tests/integration/cli/test_cli_service.py); launchd exists only on macOS, so its command
sequence is checked here with a recording runner.
"""

from __future__ import annotations

import os
import plistlib
import subprocess
from pathlib import Path

import pytest

from gateway.cli.client import CliError
from gateway.cli.service import Manager, install, launchd, state, systemd, uninstall
from gateway.cli.service_files import LAUNCHD_LABEL, launchd_plist, systemd_unit

CHECKOUT = Path("/opt/opta lmx")


def test_systemd_unit_runs_scripts_serve_and_lets_supervisord_stop_its_programs() -> None:
    unit = systemd_unit(CHECKOUT, {"LMX_CONFIG": "/etc/lmx/100%.yaml"})
    lines = unit.splitlines()
    assert 'ExecStart="/opt/opta lmx/scripts/serve"' in lines
    assert "WorkingDirectory=/opt/opta lmx" in lines
    assert 'Environment="LMX_CONFIG=/etc/lmx/100%%.yaml"' in lines
    for line in ("Restart=on-failure", "KillMode=mixed", "WantedBy=default.target"):
        assert line in lines
    assert lines.index("[Service]") < lines.index("KillMode=mixed") < lines.index("[Install]")


def test_launchd_plist_runs_scripts_serve_at_login_and_after_failures() -> None:
    agent = plistlib.loads(launchd_plist(CHECKOUT, {}, Path("/Users/me/Library/Logs/x.log")))
    assert agent["Label"] == LAUNCHD_LABEL
    assert agent["ProgramArguments"] == ["/opt/opta lmx/scripts/serve"]
    assert agent["RunAtLoad"] is True
    assert agent["KeepAlive"] == {"SuccessfulExit": False}
    assert "/usr/bin" in agent["EnvironmentVariables"]["PATH"]
    assert agent["StandardErrorPath"] == "/Users/me/Library/Logs/x.log"


class Recorder:
    """Stands in for launchctl, which only macOS has: records argv, answers `codes`."""

    def __init__(self, codes: dict[str, int] | None = None) -> None:
        self.calls: list[list[str]] = []
        self.codes = codes or {}

    def __call__(self, argv: list[str]) -> subprocess.CompletedProcess[str]:
        self.calls.append(argv)
        code = self.codes.get(argv[1], 0)
        out = "\tstate = running\n" if argv[1] == "print" and code == 0 else ""
        return subprocess.CompletedProcess(argv, code, out, "" if code == 0 else "Boot-out failed")


def test_launchd_install_replaces_a_loaded_agent_then_uninstall_boots_it_out(
    tmp_path: Path,
) -> None:
    runner = Recorder(codes={"bootout": 3})  # not loaded yet: tolerated
    manager = launchd(tmp_path, CHECKOUT, {}, run=runner)
    install(manager)
    assert manager.path == tmp_path / "Library" / "LaunchAgents" / f"{LAUNCHD_LABEL}.plist"
    assert plistlib.loads(manager.path.read_bytes())["Label"] == LAUNCHD_LABEL
    domain = f"gui/{os.getuid()}"
    assert runner.calls == [
        ["launchctl", "bootout", f"{domain}/{LAUNCHD_LABEL}"],
        ["launchctl", "bootstrap", domain, str(manager.path)],
    ]
    assert state(manager)["agent"] == "loaded, running"

    assert uninstall(manager) is True
    assert not manager.path.exists()
    assert uninstall(manager) is False  # nothing left to remove


def test_launchd_bootstrap_failure_says_what_was_written(tmp_path: Path) -> None:
    manager = launchd(tmp_path, CHECKOUT, {}, run=Recorder(codes={"bootstrap": 5}))
    with pytest.raises(CliError, match=r"^wrote .*local\.opta-lmx\.plist, but could not start"):
        install(manager)
    assert manager.path.exists()


def test_systemd_manager_writes_under_xdg_config_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    manager: Manager = systemd(tmp_path, CHECKOUT, {}, run=Recorder())
    assert manager.path == tmp_path / "xdg" / "systemd" / "user" / "opta-lmx.service"
