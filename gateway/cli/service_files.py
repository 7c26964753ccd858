"""The files that start Opta-LMX at login: a systemd user unit (Linux) and a launchd
agent's property list (macOS). Both run the checkout's scripts/serve, which sets up on
its first run and then execs supervisord in the foreground."""

from __future__ import annotations

import plistlib
from pathlib import Path

SYSTEMD_UNIT = "opta-lmx.service"
LAUNCHD_LABEL = "local.opta-lmx"
# supervisord stops its programs on SIGTERM (a worker drains for up to stop_timeout_s,
# 30 s by default); this leaves it time to, before anything is killed.
STOP_TIMEOUT_S = 90
# launchd starts agents with PATH=/usr/bin:/bin:/usr/sbin:/sbin, which misses a Homebrew
# python3 that scripts/serve's first run needs.
LAUNCHD_PATH = "/opt/homebrew/bin:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"
HEADER = "Written by `lmx service install`; `lmx service uninstall` removes it."


def _systemd_escape(value: str) -> str:
    # `%` starts a specifier in unit files; a path with spaces needs quotes in ExecStart.
    value = value.replace("%", "%%")
    return f'"{value}"' if " " in value else value


def systemd_unit(checkout: Path, environment: dict[str, str]) -> str:
    serve = checkout / "scripts" / "serve"
    env_lines = [f'Environment="{k}={v.replace("%", "%%")}"' for k, v in environment.items()]
    lines = [
        f"# {HEADER}",
        "[Unit]",
        "Description=Opta-LMX, a local OpenAI-compatible LLM server",
        "After=network.target",
        "",
        "[Service]",
        "Type=simple",
        f"ExecStart={_systemd_escape(str(serve))}",
        f"WorkingDirectory={str(checkout).replace('%', '%%')}",
        *env_lines,
        "Restart=on-failure",
        "RestartSec=5",
        # SIGTERM to supervisord alone (scripts/serve execs it): it stops its programs
        # in order; whatever is left once it has exited gets SIGKILL.
        "KillMode=mixed",
        f"TimeoutStopSec={STOP_TIMEOUT_S}",
        "",
        "[Install]",
        "WantedBy=default.target",
        "",
    ]
    return "\n".join(lines)


def launchd_plist(checkout: Path, environment: dict[str, str], log_path: Path) -> bytes:
    agent = {
        "Label": LAUNCHD_LABEL,
        "ProgramArguments": [str(checkout / "scripts" / "serve")],
        "WorkingDirectory": str(checkout),
        "EnvironmentVariables": {"PATH": LAUNCHD_PATH, **environment},
        "RunAtLoad": True,
        # Restarted when it fails, not when it was stopped cleanly.
        "KeepAlive": {"SuccessfulExit": False},
        "ExitTimeOut": STOP_TIMEOUT_S,
        "StandardOutPath": str(log_path),
        "StandardErrorPath": str(log_path),
    }
    return plistlib.dumps(agent)
