"""The libraries' own OpenAI servers, for comparison: started, waited for, always stopped."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.integration.stack import GGUF, MLX_DIR, free_port

REPO = Path(__file__).resolve().parents[2]


class ServerFailed(RuntimeError):
    """The library's server did not come up; the message says why."""


def library_command(backend: str, port: int) -> list[str]:
    if backend == "llama_cpp":
        # Its own default threads (half the logical CPUs), as a user would run it: with
        # --n_threads 2 it measured slower here (16.9 against 39.4 tok/s), its Python
        # threads then competing with llama.cpp's for the 2 cores.
        args = ["-m", "scripts.benchmarks.llama_server", "--model", str(GGUF), "--n_ctx", "2048"]
        args += ["--host", "127.0.0.1", "--port", str(port)]
    else:
        args = ["-m", "mlx_lm", "server", "--model", str(MLX_DIR)]
        args += ["--host", "127.0.0.1", "--port", str(port)]
    return [sys.executable, *args]


@contextlib.contextmanager
def library_server(backend: str, timeout: float = 180) -> Iterator[str]:
    """Yields the server's base URL; its log goes to run/bench/<backend>-server.log."""
    port = free_port()
    log_path = REPO / "run" / "bench" / f"{backend}-server.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            library_command(backend, port),
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_up(process, url, timeout, log_path)
            yield url
        finally:
            _stop(process)


def _wait_up(process: subprocess.Popen[bytes], url: str, timeout: float, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-600:]
            raise ServerFailed(f"exited with {process.returncode}: {tail.strip()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url + "/v1/models", timeout=2, trust_env=False).status_code == 200:
                return
        time.sleep(0.3)
    raise ServerFailed(f"not answering after {timeout:.0f}s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
