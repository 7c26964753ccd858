"""Loading, ready, failed: what /health and the process say."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.workers.conftest import REPO, StartScripted


def test_health_says_loading_then_ready(start_scripted: StartScripted) -> None:
    worker = start_scripted({"load_delay_s": 0.5, "default": "hi"}, wait=False)
    loading = httpx.get(worker.base_url + "/health")
    assert loading.status_code == 503
    assert loading.json()["status"] == "loading"
    refused = httpx.post(
        worker.base_url + "/v1/chat/completions",
        json={"messages": [{"role": "user", "content": "x"}]},
    )
    assert refused.status_code == 503
    worker.wait_ready()
    ready = worker.health()
    assert ready["model"] == "scripted-model"
    assert ready["backend"] == "scripted"
    assert ready["load_seconds"] >= 0.5
    assert ready["rss_bytes"] > 0
    assert ready["port"] == worker.server.settings.port


def test_health_counts_requests_and_tokens(start_scripted: StartScripted) -> None:
    worker = start_scripted({"default": "one two six"})  # three tokens of up to 3 characters
    before = time.time()
    worker.client().chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    health = worker.health()
    assert health["requests_total"] == 1
    assert health["tokens_generated"] == 3
    assert health["last_request_at"] >= before


def test_failed_load_exits_non_zero_with_the_reason_on_stderr(tmp_path: Path) -> None:
    script = tmp_path / "broken.json"
    script.write_text(json.dumps({"fail_load": "weights are corrupt"}))
    args = ["--model-id", "broken", "--backend", "scripted", "--path", str(script), "--port", "0"]
    finished = subprocess.run(
        [sys.executable, "-m", "workers", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert finished.returncode != 0
    assert "weights are corrupt" in finished.stderr.strip().splitlines()[-1]


def test_failed_load_shows_in_health_before_exit(start_scripted: StartScripted) -> None:
    worker = start_scripted({"fail_load": "no such weights"}, wait=False, failed_exit_delay_s=2.0)
    deadline = time.monotonic() + 5
    while worker.health()["status"] == "loading" and time.monotonic() < deadline:
        time.sleep(0.01)
    health = worker.health()
    assert health["status"] == "failed"
    assert health["error"] == "no such weights"
    worker.thread.join(timeout=10)
    assert worker.server.exit_code == 1


def test_sigterm_lets_the_answer_in_flight_finish_then_exits(tmp_path: Path) -> None:
    script = tmp_path / "slow.json"
    script.write_text(json.dumps({"default": "one two six ten " * 5, "token_delay_s": 0.05}))
    port = _free_port()
    args = ["--model-id", "m", "--backend", "scripted", "--path", str(script), "--port", str(port)]
    worker = subprocess.Popen(
        [sys.executable, "-m", "workers", *args], cwd=REPO, stderr=subprocess.DEVNULL
    )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_ready(base)
        body = {"messages": [{"role": "user", "content": "x"}], "stream": True}
        with httpx.stream("POST", base + "/v1/chat/completions", json=body, timeout=30) as answer:
            lines = answer.iter_lines()
            next(lines)
            worker.send_signal(signal.SIGTERM)
            rest = [line for line in lines if line]
        assert rest[-1] == "data: [DONE]"
        assert len(rest) > 10  # the whole answer, not a cut
        worker.wait(timeout=15)  # exits by SIGTERM: uvicorn re-raises it after draining
        with pytest.raises(httpx.ConnectError):
            httpx.get(base + "/health")
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_ready(base: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/health").status_code == 200:
                return
        except httpx.ConnectError:
            pass
        time.sleep(0.05)
    raise AssertionError("worker not ready")


def test_out_of_range_default_stops_the_worker_naming_the_key(tmp_path: Path) -> None:
    script = tmp_path / "m.json"
    script.write_text(json.dumps({"default": "hi"}))
    args = ["--model-id", "m", "--backend", "scripted", "--path", str(script), "--port", "0"]
    finished = subprocess.run(
        [sys.executable, "-m", "workers", *args, "--default", "temperature=5"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert finished.returncode == 2
    last = finished.stderr.strip().splitlines()[-1]
    assert "defaults.temperature" in last and "temperature" in last
