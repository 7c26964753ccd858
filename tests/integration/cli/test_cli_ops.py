"""`lmx logs`, `bench`, `requests`, `cancel`, `pull` and `rm` against a real stack.

These call endpoints built on other branches (/admin/logs, /admin/logs/stream,
/admin/benchmark, /admin/requests, /admin/models/pull, DELETE /admin/models/{id}); they
pass once those are merged. A successful pull needs a model hub, which tests here cannot
reach: its progress display is covered in tests/unit/gateway/cli/test_pull.py.
"""

from __future__ import annotations

import json
import os
import select
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.cli.runner import ADMIN_KEY, error_line, lmx, popen_lmx
from tests.integration.stack import Stack, base_config, running_stack, scripted_models, wait_until

pytestmark = pytest.mark.slow

SCRIPTS = {
    "alpha": {"default": "Hello from alpha, a scripted model answering."},
    "slow": {"default": "tick " * 300, "token_delay_s": 0.05},
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("cli-ops")
    models = scripted_models(tmp / "models", SCRIPTS)
    config = base_config(models, tmp / "models", security={"admin_key": ADMIN_KEY})
    with running_stack(tmp, config) as running:
        yield running


# ---- logs --------------------------------------------------------------------------------


def test_logs_prints_the_gateways_recent_lines(stack: Stack) -> None:
    assert lmx(stack, "load", "alpha").returncode == 0
    result = lmx(stack, "logs", "-n", "20")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert 0 < len(lines) <= 20
    assert any('"event": "ready", "model": "alpha"' in line for line in lines)

    report = json.loads(lmx(stack, "logs", "--json", "-n", "3").stdout)
    assert report["program"] == "gateway" and len(report["lines"]) == 3


def test_logs_of_a_model_are_its_workers(stack: Stack) -> None:
    assert lmx(stack, "load", "alpha").returncode == 0
    result = lmx(stack, "logs", "alpha")
    assert result.returncode == 0, result.stderr
    assert "worker alpha (scripted) listening on" in result.stdout


def test_logs_of_an_unknown_model_is_an_error(stack: Stack) -> None:
    result = lmx(stack, "logs", "alpah")
    assert result.returncode == 1
    assert "alpah" in error_line(result)


def test_logs_follow_prints_new_lines_until_ctrl_c(stack: Stack) -> None:
    lmx(stack, "unload", "--all")
    process = popen_lmx(stack, "logs", "-f", "-n", "0")
    try:
        assert process.stdout is not None
        time.sleep(1.0)  # connected before the line it waits for is written
        assert lmx(stack, "load", "alpha").returncode == 0
        seen = b""
        deadline = time.monotonic() + 20
        while b'"event": "load_start"' not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([process.stdout], [], [], 1)
            if ready:
                seen += os.read(process.stdout.fileno(), 4096)
        assert b'"event": "load_start", "model": "alpha"' in seen
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    finally:
        process.kill()
        process.wait()


# ---- bench -------------------------------------------------------------------------------


def test_bench_shows_each_run_and_a_summary(stack: Stack) -> None:
    result = lmx(stack, "bench", "alpha", "--runs", "2", "--max-tokens", "8")
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()]
    assert rows[0][:3] == ["RUN", "TTFT", "TOKENS"]
    assert [r[0] for r in rows if r and r[0].isdigit()] == ["1", "2"]
    assert result.stdout.splitlines()[-1].startswith("alpha: first token ")

    report = json.loads(
        lmx(stack, "bench", "alpha", "--runs", "2", "--max-tokens", "8", "--json").stdout
    )
    assert report["model"] == "alpha" and len(report["runs"]) == 2
    assert all(run["tokens"] == 8 for run in report["runs"])
    assert {"ttft_ms_p50", "ttft_ms_max", "tokens_per_s_mean", "total_tokens_per_s"} <= set(
        report["summary"]
    )


def test_bench_of_an_unknown_model_names_the_close_ones(stack: Stack) -> None:
    result = lmx(stack, "bench", "alpah")
    assert result.returncode == 1
    assert error_line(result).startswith("lmx: unknown model 'alpah' (did you mean alpha")


# ---- requests and cancel -----------------------------------------------------------------


def test_requests_lists_a_stream_in_flight_and_cancel_ends_it(stack: Stack) -> None:
    ended = threading.Event()

    def listen() -> None:
        with stack.stream_chat("slow") as response:
            for _ in response.iter_lines():
                pass
        ended.set()

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    try:
        rows = wait_until(lambda: json.loads(lmx(stack, "requests", "--json").stdout), 60)
        (req,) = rows
        assert req["model"] == "slow" and req["stream"] is True
        assert "slow" in lmx(stack, "requests").stdout

        cancelled = lmx(stack, "cancel", str(req["id"]))
        assert cancelled.returncode == 0, cancelled.stderr
        assert ended.wait(10), "the stream went on after lmx cancel"
    finally:
        thread.join(30)
    assert lmx(stack, "requests").stdout.strip() == "No request in flight."


def test_cancel_of_an_unknown_request_is_an_error(stack: Stack) -> None:
    result = lmx(stack, "cancel", "no-such-request")
    assert result.returncode == 1
    error_line(result)


# ---- pull and rm -------------------------------------------------------------------------


def test_pull_with_a_bad_repo_name_is_one_line_and_exits_1(stack: Stack) -> None:
    result = lmx(stack, "pull", "not a repo name")
    assert result.returncode == 1
    error_line(result)


def test_rm_of_an_unknown_model_names_the_close_ones(stack: Stack) -> None:
    result = lmx(stack, "rm", "alpah", "--yes")
    assert result.returncode == 1
    assert error_line(result).startswith("lmx: unknown model 'alpah' (did you mean alpha")


def test_rm_deletes_a_model_from_the_library(stack: Stack) -> None:
    """A model the library found in models_dir (not one from the config file)."""
    models_dir = Path(stack.config["models_dir"])
    (models_dir / "extra").mkdir()
    (models_dir / "extra" / "model.gguf").write_bytes(b"GGUF" + b"\0" * 64)
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    with httpx.Client(base_url=stack.url, headers=headers, trust_env=False) as c:
        listed = wait_until(
            lambda: [
                m for m in c.get("/admin/status").json()["models"] if m.get("source") == "library"
            ],
            30,
            what="the library to list the new file",
        )
    (model,) = listed
    result = lmx(stack, "rm", model["id"], "-y")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"Deleted {model['id']}")
    assert not (models_dir / "extra" / "model.gguf").exists()
