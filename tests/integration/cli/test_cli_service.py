"""`lmx service install|status|uninstall` on Linux, as a subprocess with HOME in a tmp folder.

This machine has no systemd user session (`systemctl --user` cannot reach a bus), so
the load step runs against a stand-in `systemctl` early on PATH that records its
arguments; that is the one thing faked here, because no real user systemd can run. The
file's content, the missing-tool path and the failing-tool path are checked for real.
"""

from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.cli.runner import error_line, lmx
from tests.integration.stack import REPO

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="systemd is Linux's")

NOWHERE = "http://127.0.0.1:9"  # service commands never call the gateway
UNIT = "opta-lmx.service"


def fake_systemctl(bin_dir: Path, log: Path, exit_code: int = 0, say: str = "") -> None:
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / "systemctl"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> "{log}"\n'
        'case "$2" in is-enabled) echo enabled;; is-active) echo active;; esac\n'
        + (f'echo "{say}" >&2\n' if say else "")
        + f"exit {exit_code}\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)


def service(tmp_path: Path, *args: str, path: str) -> subprocess.CompletedProcess[str]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return lmx(NOWHERE, "service", *args, HOME=str(home), PATH=path, XDG_CONFIG_HOME="")


def unit_path(tmp_path: Path) -> Path:
    return tmp_path / "home" / ".config" / "systemd" / "user" / UNIT


def test_install_writes_the_unit_and_enables_it_then_uninstall_removes_it(tmp_path: Path) -> None:
    log = tmp_path / "systemctl.log"
    fake_systemctl(tmp_path / "bin", log)
    path = str(tmp_path / "bin")

    installed = service(tmp_path, "install", path=path)
    assert installed.returncode == 0, installed.stderr
    unit = unit_path(tmp_path).read_text().splitlines()
    assert f"ExecStart={REPO / 'scripts' / 'serve'}" in unit
    assert f"WorkingDirectory={REPO}" in unit
    assert {"Restart=on-failure", "KillMode=mixed", "WantedBy=default.target"} <= set(unit)
    assert log.read_text().splitlines() == ["--user daemon-reload", f"--user enable --now {UNIT}"]

    status = service(tmp_path, "status", "--json", path=path)
    assert '"enabled": "enabled"' in status.stdout
    assert '"active": "active"' in status.stdout

    log.write_text("")
    removed = service(tmp_path, "uninstall", path=path)
    assert removed.returncode == 0, removed.stderr
    assert not unit_path(tmp_path).exists()
    assert log.read_text().splitlines() == [f"--user disable --now {UNIT}", "--user daemon-reload"]


def test_without_systemctl_install_says_what_it_wrote_and_fails(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = service(tmp_path, "install", path=str(tmp_path / "empty"))
    assert result.returncode == 1
    assert error_line(result) == (
        f"lmx: wrote {unit_path(tmp_path)}, but could not start it: systemctl is not available here"
    )
    assert unit_path(tmp_path).exists()

    status = service(tmp_path, "status", path=str(tmp_path / "empty"))
    assert "systemd service: installed" in status.stdout
    assert "systemctl is not available here" in status.stdout

    gone = service(tmp_path, "uninstall", path=str(tmp_path / "empty"))
    assert gone.returncode == 1 and not unit_path(tmp_path).exists()


def test_failing_systemctl_is_reported_in_one_line(tmp_path: Path) -> None:
    # What `systemctl --user` answers here, where no user systemd runs.
    fake_systemctl(
        tmp_path / "bin", tmp_path / "log", 1, "Failed to connect to bus: No medium found"
    )
    result = service(tmp_path, "install", path=str(tmp_path / "bin"))
    assert result.returncode == 1
    assert error_line(result).endswith(
        "but could not start it: `systemctl --user daemon-reload` failed: "
        "Failed to connect to bus: No medium found"
    )


def test_uninstall_when_nothing_is_installed_is_fine(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = service(tmp_path, "uninstall", path=str(tmp_path / "empty"))
    assert result.returncode == 0
    assert result.stdout.startswith("Not installed")
