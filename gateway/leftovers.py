"""Processes an earlier run of this checkout left behind, found and stopped before a
start (`./scripts/serve`), so the new gateway and workers can bind their ports.

A leftover is a gateway, memwatch or worker whose command line names this checkout and
whose supervisord is gone. A live supervisord of this checkout is not a leftover: it is
Opta-LMX already running, and the start refuses instead.
"""

from __future__ import annotations

import sys
from pathlib import Path

import psutil

_PROGRAMS = (" -m gateway", " -m workers")
STOP_WAIT_S = 10.0


def running_supervisord(checkout: Path) -> psutil.Process | None:
    conf = str(checkout / "supervisor.conf")
    for process in _processes():
        cmd = _command(process)
        if "supervisord" in cmd and conf in cmd:
            return process
    return None


def find(checkout: Path) -> list[psutil.Process]:
    marker = str(checkout) + "/"
    return [
        process
        for process in _processes()
        if marker in (cmd := _command(process)) and any(p in cmd for p in _PROGRAMS)
    ]


def stop(processes: list[psutil.Process]) -> None:
    for process in processes:
        try:
            process.terminate()
        except psutil.NoSuchProcess:
            continue
    _, alive = psutil.wait_procs(processes, timeout=STOP_WAIT_S)
    for process in alive:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            continue
    psutil.wait_procs(alive, timeout=STOP_WAIT_S)


def _processes() -> list[psutil.Process]:
    return [p for p in psutil.process_iter(["pid", "cmdline"]) if p.pid != psutil.Process().pid]


def _command(process: psutil.Process) -> str:
    return " ".join(process.info.get("cmdline") or [])


def main(checkout: Path) -> int:
    """For ./scripts/serve: 1 when this checkout is already running, else 0."""
    supervisord = running_supervisord(checkout)
    if supervisord is not None:
        print(
            f"Opta-LMX is already running from this checkout (supervisord pid "
            f"{supervisord.pid}); stop it first (Ctrl-C, or kill -TERM {supervisord.pid})",
            file=sys.stderr,
        )
        return 1
    leftovers = find(checkout)
    if leftovers:
        pids = ", ".join(str(p.pid) for p in leftovers)
        print(f"Stopping processes an earlier run left behind: {pids}")
        stop(leftovers)
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else Path.cwd()))
