"""The model lifecycle on real supervisord with real worker processes (scripted backend):
on-demand loads, single-flight, operator commands, crashes, failed loads, fallback."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.integration.stack import Stack, base_config, running_stack, stop_stack, wait_until

pytestmark = pytest.mark.slow

SCRIPTS: dict[str, dict[str, Any]] = {
    "hello": {"default": "Hello from the scripted model.", "token_delay_s": 0.0},
    "slow-load": {"default": "Loaded at last.", "load_delay_s": 1.5},
    "stream": {"default": "tick " * 400, "token_delay_s": 0.02},
    "broken": {"fail_load": "weights file is corrupt (test)"},
    "spare": {"default": "The spare answers."},
    "operator": {"default": "Operated."},
    "admin": {"default": "Admin."},
}


def write_scripts(models_dir: Path) -> None:
    models_dir.mkdir(parents=True, exist_ok=True)
    for name, script in SCRIPTS.items():
        (models_dir / f"{name}.json").write_text(json.dumps(script))


def model(name: str, **extra: Any) -> dict[str, Any]:
    return {"id": name, "path": f"{name}.json", "backend": "scripted", **extra}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("lifecycle")
    write_scripts(tmp / "models")
    models = [model(name) for name in SCRIPTS]
    config = base_config(
        models,
        tmp / "models",
        routing={"aliases": {"sturdy": ["broken", "spare"]}},
        security={"admin_key": "sesame"},
    )
    with running_stack(tmp, config) as running:
        yield running


def admin(stack: Stack) -> httpx.Client:
    return httpx.Client(base_url=stack.url, headers={"Authorization": "Bearer sesame"}, timeout=60)


def sdk(stack: Stack) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack.url + "/v1", api_key="unused", max_retries=0)


def ask(stack: Stack, model_id: str) -> str:
    reply = sdk(stack).chat.completions.create(
        model=model_id, messages=[{"role": "user", "content": "hi"}], max_tokens=50
    )
    return reply.choices[0].message.content or ""


def spawn_count(stack: Stack, model_id: str) -> int:
    return stack.log("supervisord").count(f"spawned: 'worker-{model_id}'")


def test_request_for_unloaded_model_loads_it_and_answers(stack: Stack) -> None:
    assert stack.status("hello")["status"] == "unloaded"
    assert ask(stack, "hello") == "Hello from the scripted model."
    status = stack.status("hello")
    assert status["status"] == "ready"
    assert status["pid"] in stack.worker_pids()
    # supervisord says RUNNING only once the process has lived `startsecs`; ready can come first.
    wait_until(lambda: "RUNNING" in stack.ctl("status", "worker-hello"), 5, what="RUNNING")
    assert f"pid {status['pid']}" in stack.ctl("status", "worker-hello")


def test_twenty_concurrent_requests_start_exactly_one_worker(stack: Stack) -> None:
    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(lambda _: ask(stack, "slow-load"), range(20)))
    assert answers == ["Loaded at last."] * 20
    assert spawn_count(stack, "slow-load") == 1


def test_supervisorctl_stop_is_seen_as_unloaded_then_reloaded(stack: Stack) -> None:
    ask(stack, "operator")
    first_pid = stack.status("operator")["pid"]
    stack.ctl("stop", "worker-operator")
    wait_until(lambda: stack.status("operator")["status"] == "unloaded", 5, what="unloaded")
    assert ask(stack, "operator") == "Operated."
    assert stack.status("operator")["pid"] not in (None, first_pid)


def test_supervisorctl_start_is_adopted_as_ready(stack: Stack) -> None:
    ask(stack, "operator")
    stack.ctl("stop", "worker-operator")
    wait_until(lambda: stack.status("operator")["status"] == "unloaded", 5, what="unloaded")
    stack.ctl("start", "worker-operator")
    wait_until(lambda: stack.status("operator")["status"] == "ready", 10, what="adopted")


def test_kill_9_mid_stream_ends_with_error_chunk_and_done(stack: Stack) -> None:
    ask(stack, "stream")
    pid = stack.status("stream")["pid"]
    lines: list[str] = []
    with stack.stream_chat("stream") as response:
        started = None
        for line in response.iter_lines():
            lines.append(line)
            if len(lines) == 20:
                os.kill(pid, signal.SIGKILL)
                started = time.monotonic()
        assert started is not None
        assert time.monotonic() - started < 3
    errors = [json.loads(x[6:]) for x in lines if x.startswith("data: {") and '"error"' in x]
    assert errors and "stream" in errors[-1]["error"]["message"]
    assert lines[-1] == "data: [DONE]" or lines[-2] == "data: [DONE]"
    # The gateway stayed up and the next request succeeds on a fresh worker.
    assert ask(stack, "stream").startswith("tick")
    assert stack.status("stream")["pid"] != pid


def test_failed_load_is_503_with_the_workers_own_error_line(stack: Stack) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        ask(stack, "broken")
    assert info.value.status_code == 503
    assert "weights file is corrupt (test)" in info.value.message
    assert stack.status("broken")["status"] == "failed"
    # The next request tries again (no sticky FATAL): a second spawn happens.
    with pytest.raises(openai.APIStatusError):
        ask(stack, "broken")
    assert spawn_count(stack, "broken") == 2


def test_alias_falls_back_to_next_model_and_says_which_answered(stack: Stack) -> None:
    with stack.client() as c:
        response = c.post(
            "/v1/chat/completions",
            json={"model": "sturdy", "messages": [{"role": "user", "content": "x"}]},
        )
    assert response.status_code == 200
    assert response.headers["x-lmx-model"] == "spare"
    assert response.json()["model"] == "spare"
    assert response.json()["choices"][0]["message"]["content"] == "The spare answers."


def test_streaming_request_waiting_for_a_load_gets_loading_comments(
    tmp_path: Path,
) -> None:
    write_scripts(tmp_path / "models")
    (tmp_path / "models" / "sleepy.json").write_text(
        json.dumps({"default": "Awake.", "load_delay_s": 2.5})
    )
    config = base_config(
        [model("sleepy")], tmp_path / "models", gateway={"loading_keepalive_s": 0.5}
    )
    with running_stack(tmp_path, config) as stk, stk.stream_chat("sleepy") as response:
        lines = [line for line in response.iter_lines() if line]
    assert response.status_code == 200
    assert any(line.startswith(": loading sleepy") for line in lines)
    text = "".join(
        json.loads(line[6:])["choices"][0]["delta"].get("content") or ""
        for line in lines
        if line.startswith("data: {") and json.loads(line[6:])["choices"]
    )
    assert text == "Awake."
    assert lines[-1] == "data: [DONE]"


def test_admin_routes_need_the_key(stack: Stack) -> None:
    with stack.client() as c:
        response = c.get("/admin/status")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_admin_key"


def test_admin_load_returns_when_ready_and_unload_stops_the_worker(stack: Stack) -> None:
    with admin(stack) as c:
        loaded = c.post("/admin/models/load", json={"model": "admin"}).json()
        assert loaded["status"] == "ready" and loaded["load_seconds"] > 0
        pid = loaded["pid"]
        assert pid in stack.worker_pids()
        unloaded = c.post("/admin/models/unload", json={"model": "admin"}).json()
    assert unloaded["status"] == "unloaded"
    assert pid not in stack.worker_pids()
    assert "worker-admin" not in stack.ctl("status")


def test_bad_json_is_400_and_unknown_model_404_from_the_gateway(stack: Stack) -> None:
    with stack.client() as c:
        bad = c.post(
            "/v1/chat/completions", content=b"{nope", headers={"content-type": "application/json"}
        )
        unknown = c.post("/v1/chat/completions", json={"model": "gpt-9", "messages": []})
    assert bad.status_code == 400
    assert bad.json()["error"]["type"] == "invalid_request_error"
    assert bad.headers["x-lmx-error-origin"] == "gateway"
    assert unknown.status_code == 404
    assert "hello" in unknown.json()["error"]["message"]


@pytest.mark.parametrize(
    ("path", "envelope"), [("/v1/chat/completions", "error"), ("/v1/messages", "type")]
)
def test_json_nested_too_deeply_is_400_in_the_envelope(
    stack: Stack, path: str, envelope: str
) -> None:
    deep = b'{"model": "hello", "messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with stack.client() as c:
        response = c.post(path, content=deep, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert envelope in response.json()
    assert "nested too deeply" in response.json()["error"]["message"]


def test_models_list_shows_status_and_port_of_loaded(stack: Stack) -> None:
    ask(stack, "hello")
    models = {m.id: m for m in sdk(stack).models.list().data}
    hello = models["hello"].model_dump()
    assert hello["status"] == "ready" and hello["port"] == stack.status("hello")["port"]
    assert models["broken"].model_dump()["status"] in ("failed", "unloaded")


def test_stopping_supervisord_leaves_no_process_behind(tmp_path: Path) -> None:
    write_scripts(tmp_path / "models")
    config = base_config([model("hello"), model("spare")], tmp_path / "models")
    with running_stack(tmp_path, config) as stk:
        ask(stk, "hello")
        ask(stk, "spare")
        assert len(stk.worker_pids()) == 2
        leftovers = stop_stack(stk)
    assert leftovers == []


def test_client_killed_mid_stream_stops_generation_on_the_worker(stack: Stack) -> None:
    full = sdk(stack).chat.completions.create(
        model="stream", messages=[{"role": "user", "content": "go"}]
    )
    assert full.usage is not None
    port = stack.status("stream")["port"]

    def health() -> dict[str, Any]:
        return httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).json()

    before = health()["tokens_generated"]
    client = subprocess.Popen(
        [sys.executable, "-c", _STREAM_CLIENT, stack.url],
        stdout=subprocess.PIPE,
    )
    try:
        assert client.stdout is not None
        client.stdout.readline()  # the first token arrived
    finally:
        client.kill()
        client.wait(10)
    wait_until(lambda: health()["in_flight"] == 0, 5, what="generation to stop")
    generated = health()["tokens_generated"]
    time.sleep(0.5)
    assert health()["tokens_generated"] == generated
    assert generated - before < full.usage.completion_tokens / 2


_STREAM_CLIENT = """
import sys, httpx
body = {"model": "stream", "stream": True, "messages": [{"role": "user", "content": "go"}]}
with httpx.stream("POST", sys.argv[1] + "/v1/chat/completions", json=body, timeout=60) as r:
    for line in r.iter_lines():
        if line.startswith("data: {"):
            print("token", flush=True)
"""


def test_unload_drains_in_flight_stream_and_later_requests_wait_for_reload(stack: Stack) -> None:
    ask(stack, "stream")
    first_pid = stack.status("stream")["pid"]
    received: list[str] = []

    def stream_all() -> None:
        with stack.stream_chat("stream", max_tokens=60) as response:
            received.extend(response.iter_lines())

    with ThreadPoolExecutor(3) as pool:
        streaming = pool.submit(stream_all)
        wait_until(lambda: len(received) > 3, 10, what="the stream to start")
        unloading = pool.submit(
            lambda: admin(stack).post("/admin/models/unload", json={"model": "stream"})
        )
        wait_until(lambda: stack.status("stream")["status"] == "draining", 5, what="draining")
        later = pool.submit(ask, stack, "stream")
        streaming.result(30)
        assert unloading.result(30).json()["status"] == "unloaded"
        assert later.result(60).startswith("tick")
    assert received[-1] == "data: [DONE]" or received[-2] == "data: [DONE]"
    assert not any('"error"' in line for line in received)
    assert stack.status("stream")["pid"] not in (None, first_pid)


def test_hung_worker_is_restarted_after_health_timeout(tmp_path: Path) -> None:
    write_scripts(tmp_path / "models")
    config = base_config(
        [model("hello")],
        tmp_path / "models",
        workers={"health_timeout_s": 2, "health_interval_s": 0.5, "stop_timeout_s": 1},
    )
    with running_stack(tmp_path, config) as stk:
        ask(stk, "hello")
        pid = stk.status("hello")["pid"]
        os.kill(pid, signal.SIGSTOP)  # a real hang: the process exists but answers nothing
        try:
            wait_until(lambda: stk.status("hello")["pid"] not in (None, pid), 30, what="restart")
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        assert "restart_hung" in stk.log("gateway")
        assert ask(stk, "hello") == "Hello from the scripted model."
        assert pid not in stk.worker_pids()
