"""./scripts/serve's first step: processes an earlier run of this checkout left behind are
found by their command lines and stopped; those of another checkout are not touched."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway import leftovers


def lookalike(checkout: Path, program: str) -> subprocess.Popen[bytes]:
    """A process whose command line reads like one of `checkout`'s programs."""
    args = ["-c", "import time; time.sleep(60)", "-m", program, str(checkout / "run" / "x")]
    return subprocess.Popen([sys.executable, *args])


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    try:
        yield started
    finally:
        for process in started:
            process.kill()
            process.wait(timeout=10)


def test_leftovers_of_this_checkout_are_stopped_and_others_kept(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    mine, other = tmp_path / "lmx", tmp_path / "lmx-other"
    processes += [lookalike(mine, "gateway"), lookalike(mine, "workers")]
    processes.append(lookalike(other, "workers"))
    found = leftovers.find(mine)
    assert sorted(p.pid for p in found) == sorted(p.pid for p in processes[:2])
    assert leftovers.main(mine) == 0
    for process in processes[:2]:
        assert process.wait(timeout=15) is not None
    assert processes[2].poll() is None


def test_a_running_supervisord_of_this_checkout_refuses_the_start(
    tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    conf = tmp_path / "supervisor.conf"
    args = ["-c", "import time; time.sleep(60)", "supervisord", "-c", str(conf)]
    processes.append(subprocess.Popen([sys.executable, *args]))
    assert leftovers.main(tmp_path) == 1
    assert processes[0].poll() is None
