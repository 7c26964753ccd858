"""GET /metrics and GET /admin/requests/recent after real traffic through real
supervisord, gateway and scripted workers, read with Prometheus's own parser and the
official SDKs: the counts are the ones the traffic made, and the scrape agrees with
/admin/status."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import psutil
import pytest

from gateway.memory.probe import GB
from tests.integration.metrics_scrape import Scrape, scrape, settled
from tests.integration.stack import (
    Stack,
    base_config,
    running_stack,
    scripted_models,
    wait_until,
    write_config,
)

pytestmark = pytest.mark.slow

KEY = "metrics-key"
ADMIN = {"Authorization": f"Bearer {KEY}"}
CHAT = "/v1/chat/completions"
SCRIPTS: dict[str, dict[str, Any]] = {
    "alpha": {"default": "One two three four five six seven.", "token_delay_s": 0.01},
    "beta": {"default": "Beta answers."},
    "broken": {"default": "tick " * 50, "fail_after_tokens": 5},
    "slow": {"default": "tick " * 400, "token_delay_s": 0.05},
}
GO = [{"role": "user", "content": "go"}]
HISTORY_FIELDS = {
    "id", "model", "requested", "route", "status", "stream", "client", "started",
    "ttft_ms", "duration_ms", "prompt_tokens", "completion_tokens", "tokens_per_s", "error",
}  # fmt: skip


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("metrics")
    models = scripted_models(tmp / "models", SCRIPTS)
    config = base_config(
        models,
        tmp / "models",
        security={"admin_key": KEY},
        routing={"aliases": {"fav": ["beta"]}},
    )
    with running_stack(tmp, config) as running:
        yield running


def sdk(stack: Stack) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack.url + "/v1", api_key="unused", max_retries=0)


def metrics(stack: Stack) -> Scrape:
    with stack.client() as c:
        response = c.get("/metrics", headers=ADMIN)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return scrape(response.text)


def recent(stack: Stack, limit: int) -> list[dict[str, Any]]:
    with stack.client() as c:
        response = c.get("/admin/requests/recent", params={"limit": limit}, headers=ADMIN)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def stream_text(stack: Stack, model_id: str, **fields: Any) -> str:
    chunks = sdk(stack).chat.completions.create(model=model_id, messages=GO, stream=True, **fields)
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


# ---- counts of real traffic -----------------------------------------------------------


def test_chat_traffic_is_counted_by_model_route_and_status(stack: Stack) -> None:
    before = metrics(stack)
    whole = [sdk(stack).chat.completions.create(model="alpha", messages=GO) for _ in range(3)]
    usage = whole[0].usage
    assert usage is not None and all(w.usage == usage for w in whole)
    assert stream_text(stack, "alpha") == SCRIPTS["alpha"]["default"]
    chunks = list(
        sdk(stack).chat.completions.create(
            model="alpha", messages=GO, stream=True, stream_options={"include_usage": True}
        )
    )
    streamed_usage = chunks[-1].usage
    assert streamed_usage is not None
    assert (streamed_usage.prompt_tokens, streamed_usage.completion_tokens) == (
        usage.prompt_tokens,
        usage.completion_tokens,
    )
    with pytest.raises(openai.NotFoundError):
        sdk(stack).chat.completions.create(model="no-such-model-xyz", messages=GO)
    after = settled(lambda: metrics(stack), before, 6)

    alpha = {"model": "alpha", "route": CHAT}
    assert after.delta(before, "lmx_requests_total", **alpha, status="200") == 5
    assert after.delta(before, "lmx_requests_total", model="", route=CHAT, status="404") == 1
    assert after.delta(before, "lmx_request_duration_seconds_count", **alpha) == 5
    assert after.delta(before, "lmx_time_to_first_token_seconds_count", **alpha) == 2
    assert after.delta(before, "lmx_inter_token_latency_seconds_count", **alpha) == 2
    assert after.delta(before, "lmx_prompt_tokens_total", **alpha) == 5 * usage.prompt_tokens
    assert after.delta(before, "lmx_completion_tokens_total", **alpha) == (
        5 * usage.completion_tokens
    )
    # One load for all of it, timed as /admin/status reports it.
    assert after.value("lmx_model_loads_total", model="alpha", outcome="ready") == 1
    assert after.value("lmx_model_load_duration_seconds_count", model="alpha") == 1
    load_seconds = stack.status("alpha")["load_seconds"]
    assert after.value("lmx_model_load_duration_seconds_sum", model="alpha") == pytest.approx(
        load_seconds, abs=1e-3
    )
    # Labels stay bounded: what the client wrote appears in none of them.
    assert not any("no-such-model-xyz" in v for v in after.label_values())


def test_history_lists_the_last_requests_newest_first(stack: Stack) -> None:
    before = metrics(stack)
    answer = sdk(stack).chat.completions.create(model="fav", messages=GO)  # an alias
    assert stream_text(stack, "beta") == "Beta answers."
    with pytest.raises(openai.NotFoundError):
        sdk(stack).chat.completions.create(model="nowhere", messages=GO)
    settled(lambda: metrics(stack), before, 3)
    missing, streamed, whole = recent(stack, 3)

    assert set(whole) == set(streamed) == set(missing) == HISTORY_FIELDS  # no body, no answer
    assert whole["id"].startswith("req_") and len({whole["id"], streamed["id"]}) == 2
    assert whole["model"] == "beta" and whole["requested"] == "fav"
    assert whole["route"] == CHAT and whole["status"] == 200 and whole["stream"] is False
    assert whole["ttft_ms"] is None and whole["error"] is None
    assert answer.usage is not None
    assert whole["prompt_tokens"] == answer.usage.prompt_tokens
    assert whole["completion_tokens"] == answer.usage.completion_tokens
    assert whole["tokens_per_s"] > 0 and whole["duration_ms"] > 0
    host, _, port = whole["client"].rpartition(":")
    assert host == "127.0.0.1" and port.isdigit()

    assert streamed["stream"] is True and streamed["requested"] == "beta"
    assert 0 < streamed["ttft_ms"] <= streamed["duration_ms"]
    assert streamed["completion_tokens"] == answer.usage.completion_tokens
    assert streamed["started"] >= whole["started"]

    assert missing["status"] == 404 and missing["model"] is None
    assert missing["requested"] == "nowhere" and "nowhere" in missing["error"]
    assert missing["prompt_tokens"] is None and missing["ttft_ms"] is None


def test_a_stream_that_fails_midway_is_counted_as_502_with_the_workers_message(
    stack: Stack,
) -> None:
    before = metrics(stack)
    with stack.stream_chat("broken") as response:
        assert response.status_code == 200
        lines = list(response.iter_lines())
    assert any('"error"' in line for line in lines)
    after = settled(lambda: metrics(stack), before, 1)
    entry = recent(stack, 1)[0]
    assert entry["model"] == "broken" and entry["status"] == 502
    assert entry["error"] and "data:" not in entry["error"]
    assert after.delta(before, "lmx_requests_total", model="broken", route=CHAT, status="502") == 1


def test_a_client_that_leaves_and_an_operators_cancel_are_499(stack: Stack) -> None:
    with stack.stream_chat("slow") as response:
        for i, _ in enumerate(response.iter_lines()):
            if i > 6:
                break  # leaving: the connection closes with the block
    left = wait_until(lambda: _latest(stack, "slow"), 10, what="the request to end")
    assert left["status"] == 499 and "client closed" in left["error"]

    ended = threading.Event()

    def read_to_end() -> None:
        with stack.stream_chat("slow") as response:
            for _ in response.iter_lines():
                pass
        ended.set()

    threading.Thread(target=read_to_end, daemon=True).start()
    with stack.client() as c:
        running = wait_until(
            lambda: [r for r in c.get("/admin/requests", headers=ADMIN).json()["data"]],
            10,
            what="the stream in flight",
        )
        assert c.delete(f"/admin/requests/{running[0]['id']}", headers=ADMIN).status_code == 200
    assert ended.wait(10)
    cancelled = wait_until(lambda: recent(stack, 1)[0]["id"] == running[0]["id"], 5)
    assert cancelled
    entry = recent(stack, 1)[0]
    assert entry["status"] == 499 and "cancelled by an operator" in entry["error"]
    assert metrics(stack).value("lmx_requests_total", model="slow", route=CHAT, status="499") == 2


def _latest(stack: Stack, model_id: str) -> dict[str, Any] | None:
    entries = [e for e in recent(stack, 5) if e["model"] == model_id]
    return entries[0] if entries else None


def test_translated_routes_count_exact_tokens(stack: Stack) -> None:
    before = metrics(stack)
    client = anthropic.Anthropic(base_url=stack.url, api_key="unused", max_retries=0)
    with client.messages.stream(model="beta", max_tokens=100, messages=GO) as events:
        message = events.get_final_message()
    settled(lambda: metrics(stack), before, 1)
    messages = recent(stack, 1)[0]
    assert messages["route"] == "/v1/messages" and messages["status"] == 200
    assert messages["completion_tokens"] == message.usage.output_tokens
    assert messages["prompt_tokens"] == message.usage.input_tokens
    assert messages["ttft_ms"] is not None

    with stack.client() as c:
        ollama = c.post("/api/chat", json={"model": "beta", "messages": GO, "stream": False})
    assert ollama.status_code == 200, ollama.text
    settled(lambda: metrics(stack), before, 2)
    entry = recent(stack, 1)[0]
    assert entry["route"] == "/api/chat" and entry["status"] == 200
    assert entry["completion_tokens"] == ollama.json()["eval_count"]
    assert entry["prompt_tokens"] == ollama.json()["prompt_eval_count"]
    assert entry["stream"] is False and entry["ttft_ms"] is not None  # gathered from a stream

    with stack.client() as c:
        lines = c.post("/api/chat", json={"model": "beta", "messages": GO}).text.splitlines()
    settled(lambda: metrics(stack), before, 3)
    entry = recent(stack, 1)[0]
    assert entry["stream"] is True and entry["status"] == 200
    assert entry["completion_tokens"] == json.loads(lines[-1])["eval_count"]


# ---- gauges read at scrape time --------------------------------------------------------


def test_gauges_agree_with_admin_status_and_memory(stack: Stack) -> None:
    done = threading.Event()

    def stream_slowly() -> None:
        with stack.stream_chat("slow", max_tokens=60) as response:
            for _ in response.iter_lines():
                pass
        done.set()

    threading.Thread(target=stream_slowly, daemon=True).start()
    wait_until(lambda: stack.status("slow")["in_flight"] == 1, 30, what="the stream to run")
    now = metrics(stack)
    assert now.value("lmx_requests_in_flight", model="slow") == 1
    assert now.value("lmx_model_state", model="slow", state="ready") == 1
    assert now.value("lmx_requests_queued", model="slow") == stack.status("slow")["queued"]
    assert done.wait(30)

    def agreeing() -> bool:
        scraped = metrics(stack)
        with stack.client() as c:
            memory = c.get("/admin/memory", headers=ADMIN).json()
        rss = next(w["rss_bytes"] for w in memory["workers"] if w["id"] == "slow")
        return (
            scraped.value("lmx_memory_total_bytes") == memory["total_bytes"]
            and scraped.value("lmx_memory_threshold_bytes") == memory["threshold_bytes"]
            and scraped.value("lmx_worker_rss_bytes", model="slow") == rss > 0
        )

    wait_until(agreeing, 10, what="a scrape equal to /admin/memory")  # RSS moves each tick
    assert metrics(stack).value("lmx_requests_in_flight", model="slow") == 0


# ---- access and bad input ----------------------------------------------------------------


def test_metrics_and_history_need_the_admin_key(stack: Stack) -> None:
    with stack.client() as c:
        for path in ("/metrics", "/admin/requests/recent"):
            refused = c.get(path)
            assert refused.status_code == 401
            assert refused.json()["error"]["code"] == "invalid_admin_key"
            assert c.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401


@pytest.mark.parametrize("limit", ["0", "-1", "abc", "1.5", "501", ""])
def test_a_bad_limit_is_a_400_envelope(stack: Stack, limit: str) -> None:
    with stack.client() as c:
        response = c.get(f"/admin/requests/recent?limit={limit}", headers=ADMIN)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == "limit" and "1 to 500" in error["message"]


# ---- capture_bodies, by a live reload ------------------------------------------------------


def test_capture_bodies_keeps_request_and_whole_answer_text(stack: Stack) -> None:
    original = dict(stack.config)
    try:
        _reload(stack, {**original, "logging": {"capture_bodies": True, "history_size": 50}})
        before = metrics(stack)
        answer = sdk(stack).chat.completions.create(
            model="beta", messages=[{"role": "user", "content": "secret words"}]
        )
        assert stream_text(stack, "beta") == "Beta answers."
        settled(lambda: metrics(stack), before, 2)
        streamed, whole = recent(stack, 2)
        assert "secret words" in whole["request_body"]
        assert whole["answer"] == answer.choices[0].message.content == "Beta answers."
        assert json.loads(streamed["request_body"])["stream"] is True
        assert streamed["answer"] is None
        with stack.client() as c:
            too_many = c.get("/admin/requests/recent?limit=51", headers=ADMIN)
        assert too_many.status_code == 400
    finally:
        _reload(stack, original)
    before = metrics(stack)
    sdk(stack).chat.completions.create(model="beta", messages=GO)
    settled(lambda: metrics(stack), before, 1)
    # Turned off, it keeps nothing, and what it captured is gone.
    assert all(set(entry) == HISTORY_FIELDS for entry in recent(stack, 3))


def _reload(stack: Stack, config: dict[str, Any]) -> None:
    write_config(stack.root, config)
    with stack.client() as c:
        response = c.post("/admin/config/reload", json={}, headers=ADMIN)
    assert response.status_code == 200, response.text


# ---- fleet events: eviction, crash, hung restart ---------------------------------------------


def test_evictions_crashes_and_restarts_are_counted(tmp_path: Path) -> None:
    scripts = {"one": {"default": "I am one."}, "two": {"default": "I am two."}}
    models = scripted_models(tmp_path / "models", scripts, {n: {"memory_gb": 1.0} for n in scripts})
    used_gb = (psutil.virtual_memory().total - psutil.virtual_memory().available) / GB
    config = base_config(
        models,
        tmp_path / "models",
        # Room for one 1 GiB model and a half: loading the second evicts the first.
        memory={"total_gb": round(used_gb + 1.5, 2), "max_memory_percent": 100},
        workers={
            "prompt_cache_gb": 0.1,
            "health_timeout_s": 2,
            "health_interval_s": 0.5,
            "stop_timeout_s": 1,
        },
    )
    with running_stack(tmp_path, config) as stk:
        client = openai.OpenAI(base_url=stk.url + "/v1", api_key="x", max_retries=0)
        client.chat.completions.create(model="one", messages=GO)
        client.chat.completions.create(model="two", messages=GO)
        evicted = scrape(httpx.get(stk.url + "/metrics", trust_env=False).text)
        assert evicted.value("lmx_model_evictions_total", model="one") == 1
        assert evicted.value("lmx_model_unloads_total", model="one") == 1
        assert evicted.value("lmx_model_loads_total", model="two", outcome="ready") == 1

        os.kill(stk.status("two")["pid"], signal.SIGKILL)
        wait_until(lambda: stk.status("two")["status"] == "failed", 10, what="the crash seen")

        client.chat.completions.create(model="one", messages=GO)
        pid = stk.status("one")["pid"]
        os.kill(pid, signal.SIGSTOP)  # a real hang: the process is there but answers nothing
        try:
            after = wait_until(
                lambda: _restarted(stk.url, "one"), 60, what="the hung worker restarted"
            )
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        assert after.value("lmx_worker_crashes_total", model="two") == 1
        assert after.value("lmx_model_loads_total", model="one", outcome="ready") >= 2


def _restarted(url: str, model_id: str) -> Scrape | None:
    now = scrape(httpx.get(url + "/metrics", trust_env=False).text)
    return now if now.value("lmx_worker_restarts_total", model=model_id, reason="hung") else None
