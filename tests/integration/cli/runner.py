"""Running `lmx` as a user does: a subprocess (or a pseudo-terminal) with LMX_URL and the
keys in its environment, this checkout first on its path."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import Any

import pexpect

from tests.integration.stack import REPO, Stack

ADMIN_KEY = "sesame"
LMX = [sys.executable, "-m", "gateway.cli"]


def lmx_env(url: str, admin_key: str | None = ADMIN_KEY, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LMX_")}
    env.update(PYTHONPATH=str(REPO), LMX_URL=url, NO_COLOR="1", **extra)
    if admin_key is not None:
        env["LMX_ADMIN_KEY"] = admin_key
    return env


def lmx(
    stack: Stack | str, *args: str, input: str | None = None, timeout: float = 120, **env: Any
) -> subprocess.CompletedProcess[str]:
    """`lmx ARGS...` to the end; `stack` may be a URL (a gateway that is not there)."""
    url = stack if isinstance(stack, str) else stack.url
    return subprocess.run(
        [*LMX, *args],
        input=input if input is not None else "",
        capture_output=True,
        text=True,
        timeout=timeout,
        env=lmx_env(url, **env),
    )


def _as_at_a_keyboard() -> None:
    """Ctrl-C (SIGINT) as a terminal delivers it: a test run launched in the background
    by a non-interactive shell inherits SIGINT ignored, and Python then keeps it so."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def popen_lmx(stack: Stack, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*LMX, *args],
        preexec_fn=_as_at_a_keyboard,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=lmx_env(stack.url),
    )


def spawn_lmx(stack: Stack, *args: str, timeout: float = 60) -> pexpect.spawn:
    """`lmx` in a pseudo-terminal, as someone at a keyboard runs it."""
    return pexpect.spawn(
        LMX[0],
        [*LMX[1:], *args],
        env=lmx_env(stack.url),
        encoding="utf-8",
        timeout=timeout,
        dimensions=(40, 200),
        preexec_fn=_as_at_a_keyboard,
    )


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one line an error is: `lmx: ...` on stderr."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("lmx: "), result.stderr
    return lines[0]
