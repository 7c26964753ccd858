"""`lmx service install|uninstall|status`: start Opta-LMX at login, through the user's
own service manager (systemd --user on Linux, launchd on macOS).

Install writes the file, then asks the manager to load it; uninstall asks it to stop and
forget the service, then removes the file. Where the manager's tool is missing or fails
(a container without a user systemd), the command says what it wrote and exits non-zero.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

from gateway.cli import output
from gateway.cli.client import CliError
from gateway.cli.options import JsonFlag
from gateway.cli.service_files import LAUNCHD_LABEL, SYSTEMD_UNIT, launchd_plist, systemd_unit
from gateway.cli.settings import CHECKOUT

TOOL_TIMEOUT_S = 60.0
# What the service should see of the installing shell: the config it serves.
CARRIED_ENVIRONMENT = ("LMX_CONFIG",)


@dataclass(frozen=True)
class Step:
    argv: list[str]
    may_fail: bool = False  # e.g. unloading an agent that was not loaded


class ToolError(Exception):
    """The service manager's tool is missing, or one of its commands failed."""


Runner = Callable[[list[str]], "subprocess.CompletedProcess[str]"]


def run_tool(argv: list[str]) -> subprocess.CompletedProcess[str]:
    if shutil.which(argv[0]) is None:
        raise ToolError(f"{argv[0]} is not available here")
    return subprocess.run(argv, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S)


@dataclass
class Manager:
    """One service manager: where its file goes, what it holds, the commands that load,
    unload and inspect it. `run` is the seam for tests on machines without the manager."""

    name: str
    path: Path
    content: bytes
    load: list[Step]
    unload: list[Step]
    after_remove: list[Step]
    inspect: dict[str, list[str]]
    run: Runner = field(default=run_tool)
    # Turns an inspect command's result into a word; by default its first line of output.
    read: Callable[[subprocess.CompletedProcess[str]], str] = field(
        default=lambda r: _first_line(r)
    )

    def execute(self, steps: list[Step]) -> None:
        for step in steps:
            result = self.run(step.argv)
            if result.returncode != 0 and not step.may_fail:
                reason = (result.stderr or result.stdout).strip().splitlines()
                detail = reason[0] if reason else f"exit status {result.returncode}"
                raise ToolError(f"`{' '.join(step.argv)}` failed: {detail}")

    def query(self) -> dict[str, str]:
        """Each inspect command's first line of output (or why there is none)."""
        answers = {}
        for key, argv in self.inspect.items():
            try:
                result = self.run(argv)
            except ToolError as exc:
                answers[key] = f"unknown ({exc})"
                continue
            answers[key] = self.read(result)
        return answers


def _first_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = (result.stdout or result.stderr).strip().splitlines()
    return lines[0].strip() if lines else f"exit status {result.returncode}"


def _launchd_state(result: subprocess.CompletedProcess[str]) -> str:
    """`launchctl print` describes a loaded agent over many lines; its `state = ` line says
    whether it runs."""
    if result.returncode != 0:
        return "not loaded"
    for line in result.stdout.splitlines():
        if line.strip().startswith("state = "):
            return "loaded, " + line.split("=", 1)[1].strip()
    return "loaded"


def carried_environment() -> dict[str, str]:
    return {k: str(Path(os.environ[k]).resolve()) for k in CARRIED_ENVIRONMENT if k in os.environ}


def systemd(home: Path, checkout: Path, env: dict[str, str], run: Runner = run_tool) -> Manager:
    config_home = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
    user = ["systemctl", "--user"]
    return Manager(
        name="systemd",
        path=config_home / "systemd" / "user" / SYSTEMD_UNIT,
        content=systemd_unit(checkout, env).encode(),
        load=[Step([*user, "daemon-reload"]), Step([*user, "enable", "--now", SYSTEMD_UNIT])],
        unload=[Step([*user, "disable", "--now", SYSTEMD_UNIT])],
        after_remove=[Step([*user, "daemon-reload"])],
        inspect={
            "enabled": [*user, "is-enabled", SYSTEMD_UNIT],
            "active": [*user, "is-active", SYSTEMD_UNIT],
        },
        run=run,
    )


def launchd(home: Path, checkout: Path, env: dict[str, str], run: Runner = run_tool) -> Manager:
    path = home / "Library" / "LaunchAgents" / f"{LAUNCHD_LABEL}.plist"
    domain = f"gui/{os.getuid()}"
    log_path = home / "Library" / "Logs" / "opta-lmx.log"
    return Manager(
        name="launchd",
        path=path,
        content=launchd_plist(checkout, env, log_path),
        # An agent loaded from an older file is unloaded first, so the new one is read.
        load=[
            Step(["launchctl", "bootout", f"{domain}/{LAUNCHD_LABEL}"], may_fail=True),
            Step(["launchctl", "bootstrap", domain, str(path)]),
        ],
        unload=[Step(["launchctl", "bootout", f"{domain}/{LAUNCHD_LABEL}"], may_fail=True)],
        after_remove=[],
        inspect={"agent": ["launchctl", "print", f"{domain}/{LAUNCHD_LABEL}"]},
        run=run,
        read=_launchd_state,
    )


def this_machine() -> Manager:
    home, env = Path.home(), carried_environment()
    if sys.platform == "darwin":
        return launchd(home, CHECKOUT, env)
    if sys.platform.startswith("linux"):
        return systemd(home, CHECKOUT, env)
    raise CliError(f"lmx service supports Linux (systemd) and macOS (launchd), not {sys.platform}")


def install(manager: Manager) -> None:
    manager.path.parent.mkdir(parents=True, exist_ok=True)
    manager.path.write_bytes(manager.content)
    if manager.name == "launchd":
        (Path.home() / "Library" / "Logs").mkdir(parents=True, exist_ok=True)
    try:
        manager.execute(manager.load)
    except ToolError as exc:
        raise CliError(f"wrote {manager.path}, but could not start it: {exc}") from None


def uninstall(manager: Manager) -> bool:
    """Stop and remove the service; False when there was nothing installed."""
    if not manager.path.exists():
        return False
    try:
        manager.execute(manager.unload)
    except ToolError as exc:
        manager.path.unlink()
        raise CliError(f"removed {manager.path}, but could not stop the service: {exc}") from None
    manager.path.unlink()
    try:
        manager.execute(manager.after_remove)
    except ToolError as exc:
        raise CliError(f"removed {manager.path}, but {exc}") from None
    return True


def state(manager: Manager) -> dict[str, Any]:
    installed = manager.path.exists()
    return {
        "manager": manager.name,
        "file": str(manager.path),
        "installed": installed,
        **(manager.query() if installed else {}),
    }


# ---- commands ---------------------------------------------------------------------------

app = typer.Typer(help="Start Opta-LMX at login (systemd user unit or launchd agent).")


@app.command("install")
def install_command() -> None:
    """Write the service file and start the service now and at every login."""
    manager = this_machine()
    install(manager)
    output.say(f"Installed and started the {manager.name} service: {manager.path}")


@app.command("uninstall")
def uninstall_command() -> None:
    """Stop the service and remove its file."""
    manager = this_machine()
    if uninstall(manager):
        output.say(f"Stopped the {manager.name} service and removed {manager.path}")
    else:
        output.note(f"Not installed (no {manager.path})")


@app.command("status")
def status_command(json_: JsonFlag = False) -> None:
    """Whether the service is installed, and what the service manager says of it."""
    report = state(this_machine())
    if json_:
        output.print_json(report)
        return
    word = "installed" if report["installed"] else "not installed"
    output.say(f"{report['manager']} service: {word} ({report['file']})")
    for key, value in report.items():
        if key not in ("manager", "file", "installed"):
            output.say(f"  {key}: {value}")
