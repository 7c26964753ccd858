"""HTTP load at a fixed number of clients, for a fixed time: wrk when it is installed
(C, so the load generator is not what is measured), else a Python asyncio generator."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from scripts.benchmarks import pygen

_LUA = 'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
_LUA += 'wrk.body = os.getenv("LMX_BENCH_BODY")\n'
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}


@dataclass(frozen=True)
class Load:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def generator() -> str:
    return "wrk" if shutil.which("wrk") else "python-asyncio"


def run_load(url: str, body: bytes, clients: int, seconds: float) -> Load:
    if generator() == "wrk":
        return _wrk(url, body, clients, seconds)
    result = pygen.run(url, body, clients, seconds)
    return Load(result.requests, result.seconds, result.p50_ms, result.p99_ms, result.errors)


def stream_rate(url: str, body: bytes, clients: int, seconds: float) -> float:
    """SSE events per second (always the Python client: wrk counts whole answers only)."""
    events, elapsed = pygen.stream_events(url, body, clients, seconds)
    return events / elapsed


def _wrk(url: str, body: bytes, clients: int, seconds: float) -> Load:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_LUA)
    try:
        command = ["wrk", "-t1", f"-c{clients}", f"-d{max(1, round(seconds))}s", "--timeout", "60s"]
        command += ["--latency", "-s", script.name, url]
        env = {**os.environ, "LMX_BENCH_BODY": body.decode()}
        out = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=seconds + 90, check=True
        ).stdout
    finally:
        Path(script.name).unlink()
    return _parse_wrk(out)


def _parse_wrk(out: str) -> Load:
    done = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    if done is None:
        raise RuntimeError(f"cannot read wrk's output:\n{out}")
    seconds = float(done.group(2)) * _UNITS[done.group(3)] / 1e3
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    socket = re.search(r"connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors += sum(int(n) for n in socket.groups()) if socket else 0
    return Load(
        int(done.group(1)), seconds, _percentile(out, "50%"), _percentile(out, "99%"), errors
    )


def _percentile(out: str, label: str) -> float:
    found = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s|m)\s*$", out, re.MULTILINE)
    return float(found.group(1)) * _UNITS[found.group(2)] if found else float("nan")
