"""Memory admission, LRU eviction, idle TTL and memwatch, on real supervisord and workers.

The machine is presented as smaller than it is (`memory.total_gb`), the same seam a user
has to cap what Opta-LMX may take; models declare their footprint with `memory_gb`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import psutil
import pytest

from gateway.memory.probe import GB
from tests.integration.stack import Stack, base_config, running_stack, wait_until

pytestmark = pytest.mark.slow


def scripted(models_dir: Path, name: str, **script: Any) -> None:
    models_dir.mkdir(parents=True, exist_ok=True)
    (models_dir / f"{name}.json").write_text(json.dumps({"default": f"I am {name}.", **script}))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("memory")
    models_dir = tmp / "models"
    for name in ("pinned", "older", "newer", "huge", "idle", "busy"):
        scripted(models_dir, name)
    scripted(models_dir, "busy", default="tick " * 100, token_delay_s=0.05)
    used_gb = (psutil.virtual_memory().total - psutil.virtual_memory().available) / GB
    models = [
        {"id": "pinned", "pinned": True, "memory_gb": 1.0},
        {"id": "older", "memory_gb": 1.0},
        {"id": "newer", "memory_gb": 1.0},
        {"id": "huge", "memory_gb": 1000.0},
        {"id": "idle", "ttl_s": 1.0, "memory_gb": 0.01},
        {"id": "busy", "ttl_s": 1.0, "memory_gb": 0.01},
    ]
    config = base_config(
        [{"path": f"{m['id']}.json", "backend": "scripted", **m} for m in models],
        models_dir,
        # Room for three 1 GiB models minus a half: the third load must evict. Each
        # worker's estimate also holds its prompt cache's cap, 0.1 GiB here.
        memory={"total_gb": round(used_gb + 2.5, 2), "max_memory_percent": 100},
        workers={"prompt_cache_gb": 0.1},
    )
    with running_stack(tmp, config) as running:
        yield running


def ask(stack: Stack, model_id: str) -> str:
    client = openai.OpenAI(base_url=stack.url + "/v1", api_key="x", max_retries=0)
    reply = client.chat.completions.create(
        model=model_id, messages=[{"role": "user", "content": "hi"}]
    )
    return reply.choices[0].message.content or ""


def test_lru_idle_worker_is_evicted_but_never_the_pinned_one(stack: Stack) -> None:
    ask(stack, "pinned")  # least recently used of all, but pinned
    ask(stack, "older")
    assert ask(stack, "newer") == "I am newer."
    assert stack.status("pinned")["status"] == "ready"
    assert stack.status("older")["status"] == "unloaded"
    assert stack.status("newer")["status"] == "ready"
    events = [json.loads(line.split(" ", 3)[-1]) for line in _fleet_lines(stack)]
    assert {"event": "evict", "model": "older", "for_model": "newer"}.items() <= next(
        e for e in events if e["event"] == "evict"
    ).items()


def test_model_that_cannot_fit_is_503_insufficient_memory_with_numbers(stack: Stack) -> None:
    with pytest.raises(openai.APIStatusError) as info:
        ask(stack, "huge")
    assert info.value.status_code == 503
    body = info.value.response.json()["error"]
    assert body["code"] == "insufficient_memory"
    assert "needs 1000.10 GiB" in body["message"] and "available under the" in body["message"]
    assert stack.status("huge")["status"] == "unloaded"
    assert stack.status("pinned")["status"] == "ready"


def test_admin_memory_shows_threshold_and_per_worker_figures(stack: Stack) -> None:
    ask(stack, "pinned")
    with stack.client() as c:
        memory = c.get("/admin/memory").json()
    assert memory["threshold_percent"] == 100
    assert memory["total_bytes"] == int(stack.config["memory"]["total_gb"] * GB)
    pinned = next(w for w in memory["workers"] if w["id"] == "pinned")
    assert pinned["rss_bytes"] > 0 and pinned["estimate_bytes"] == int(1.0 * GB) + int(0.1 * GB)


def test_idle_worker_is_unloaded_after_its_ttl(stack: Stack) -> None:
    ask(stack, "idle")
    wait_until(lambda: stack.status("idle")["status"] == "unloaded", 8, what="TTL unload")


def test_worker_with_a_request_in_flight_is_not_unloaded_by_ttl(stack: Stack) -> None:
    ask(stack, "busy")
    done = threading.Event()

    def stream() -> None:
        client = openai.OpenAI(base_url=stack.url + "/v1", api_key="x", max_retries=0)
        for _ in client.chat.completions.create(
            model="busy", messages=[{"role": "user", "content": "go"}], stream=True
        ):
            pass
        done.set()

    thread = threading.Thread(target=stream)
    thread.start()
    try:
        # The answer takes ~5 s, far past the 1 s TTL: the worker must stay.
        for _ in range(30):
            if done.wait(0.1):
                break
            assert stack.status("busy")["status"] == "ready"
    finally:
        thread.join(30)
    assert done.is_set()


def _fleet_lines(stack: Stack) -> list[str]:
    return [
        line for line in stack.log("gateway").splitlines() if "lmx.events" in line and "{" in line
    ]


def test_memwatch_restarts_a_worker_over_its_rss_cap(tmp_path: Path) -> None:
    scripted(tmp_path / "models", "greedy")
    config = base_config(
        [{"id": "greedy", "path": "greedy.json", "backend": "scripted", "max_rss_gb": 0.001}],
        tmp_path / "models",
    )
    with running_stack(tmp_path, config) as stk:
        ask(stk, "greedy")
        pid = stk.status("greedy")["pid"]
        wait_until(lambda: "restart_over_rss" in stk.log("memwatch"), 15, what="memwatch")
        line = next(x for x in stk.log("memwatch").splitlines() if "restart_over_rss" in x)
        action = json.loads(line)
        assert action["model"] == "greedy" and action["rss_bytes"] > 0.001 * GB
        wait_until(lambda: stk.status("greedy")["pid"] not in (None, pid), 15, what="new pid")
        assert ask(stk, "greedy") == "I am greedy."
