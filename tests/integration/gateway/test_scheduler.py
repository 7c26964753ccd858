"""The one-machine scheduler, on real supervisord, gateway and scripted workers: two models
that cannot be loaded together, clients that alternate between them, a pinned model, a
model too large for the machine, waits that run out, and streams that wait for memory.

The models are presented as large (`memory_gb`) on a machine presented as small
(`memory.total_gb`). The figures are tens of GiB on purpose: what other programs of this
shared machine use is counted too, and moves by a GiB or two while the tests run; with
margins this wide it cannot change what fits.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import psutil
import pytest
import yaml

from gateway.memory.probe import GB
from tests.integration.stack import Stack, base_config, running_stack, scripted_models, wait_until

pytestmark = pytest.mark.slow

REQUESTS = 20  # per client
TURN_S = 4.0  # memory.min_resident_s
# What a swap-per-request policy (min_resident_s 0) does here: 39 swaps for 40 requests.
MAX_SWAPS = 15

TICKS = " ".join(["tick"] * 6)  # 6 tokens, 0.05 s each: ~0.3 s a request
LONG = " ".join(["slow"] * 80)  # ~4 s
SCRIPTS: dict[str, dict[str, Any]] = {
    name: {
        "default": f"{name} says {TICKS}",
        "replies": [{"match": "long", "text": LONG}],
        "token_delay_s": 0.05,
    }
    for name in ("a", "b", "p")
}
SCRIPTS["huge"] = {"default": "never"}
OPTIONS: dict[str, dict[str, Any]] = {
    "a": {"memory_gb": 40.0},
    "b": {"memory_gb": 40.0},
    "p": {"memory_gb": 8.0, "pinned": True},
    "huge": {"memory_gb": 1000.0},
}


def used_gb() -> float:
    vm = psutil.virtual_memory()
    return (vm.total - vm.available) / GB


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("scheduler")
    models_dir = tmp / "models"
    models = scripted_models(models_dir, SCRIPTS, OPTIONS)
    config = base_config(
        models,
        models_dir,
        # a (40.1 GiB with its 0.1 GiB prompt cache) fits with 20 GiB to spare, and beside
        # the pinned p (8.1); a and b together (80.2) never do.
        memory={
            "total_gb": round(used_gb() + 60, 2),
            "max_memory_percent": 100,
            "min_resident_s": TURN_S,
            "admission_wait_s": 120,
        },
        workers={"prompt_cache_gb": 0.1, "max_concurrent": 4},
        gateway={"loading_keepalive_s": 0.5},
    )
    with running_stack(tmp, config) as running:
        yield running


@pytest.fixture(autouse=True)
def nothing_loaded(stack: Stack) -> None:
    """Each test starts from an empty machine (and the module's own config)."""
    with stack.client() as c:
        for model_id in SCRIPTS:
            c.post("/admin/models/unload", json={"model": model_id}).raise_for_status()


def client(stack: Stack) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack.url + "/v1", api_key="x", max_retries=0, timeout=180)


def ask(stack: Stack, model_id: str, prompt: str = "hi") -> str:
    reply = client(stack).chat.completions.create(
        model=model_id, messages=[{"role": "user", "content": prompt}]
    )
    return reply.choices[0].message.content or ""


def events(stack: Stack, since: int = 0) -> list[dict[str, Any]]:
    """The gateway's events, from byte `since` of its log on."""
    found = []
    for line in stack.log("gateway")[since:].splitlines():
        if "lmx.events" in line and "{" in line:
            found.append(json.loads(line[line.index("{") :]))
    return found


def run_clients(stack: Stack, plan: dict[str, list[str]]) -> tuple[dict[str, list[str]], float]:
    """One thread per client, each sending its models' requests one after another."""
    answers: dict[str, list[str]] = {name: [] for name in plan}
    failures: list[BaseException] = []

    def run(name: str) -> None:
        try:
            for model_id in plan[name]:
                answers[name].append(ask(stack, model_id))
        except BaseException as exc:  # reported below, with the thread's name
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(name,), name=name) for name in plan]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    assert not any(t.is_alive() for t in threads), "a client hung"
    assert not failures, failures
    return answers, time.monotonic() - started


def alternate(stack: Stack) -> tuple[int, float]:
    """Client 1 asks a, client 2 asks b, 20 times each, at the same time: requests for
    the two models alternate. Every one is answered; returns the swaps and the time."""
    since = len(stack.log("gateway"))
    answers, took = run_clients(stack, {"one": ["a"] * REQUESTS, "two": ["b"] * REQUESTS})
    assert answers["one"] == [f"a says {TICKS}"] * REQUESTS
    assert answers["two"] == [f"b says {TICKS}"] * REQUESTS
    swaps = [e for e in events(stack, since) if e["event"] == "evict"]
    assert all({e["model"], e["for_model"]} == {"a", "b"} for e in swaps), swaps
    return len(swaps), took


def test_alternating_clients_are_all_answered_with_few_swaps(stack: Stack) -> None:
    swaps, took = alternate(stack)
    print(f"\n40 alternating requests for a and b: {swaps} swaps in {took:.1f}s")
    assert 1 <= swaps <= MAX_SWAPS


def test_a_pinned_model_stays_while_the_others_take_turns(stack: Stack) -> None:
    assert ask(stack, "p") == f"p says {TICKS}"
    pid = stack.status("p")["pid"]
    since = len(stack.log("gateway"))
    swaps, took = alternate(stack)
    print(f"\nthe same beside pinned p: {swaps} swaps in {took:.1f}s")
    assert 1 <= swaps <= MAX_SWAPS
    assert stack.status("p")["status"] == "ready" and stack.status("p")["pid"] == pid
    assert all(e.get("model") != "p" for e in events(stack, since) if e["event"] == "evict")
    with stack.client() as c:
        c.post("/admin/models/unload", json={"model": "p"}).raise_for_status()


def test_a_model_larger_than_the_machine_is_refused_at_once(stack: Stack) -> None:
    ask(stack, "a")  # something loaded and idle: waiting would not help either
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as info:
        ask(stack, "huge")
    assert time.monotonic() - started < 2.0
    assert info.value.status_code == 503
    error = info.value.response.json()["error"]
    assert error["code"] == "insufficient_memory"
    assert "huge, ever: it needs 1000.10 GiB" in error["message"]
    assert stack.status("a")["status"] == "ready"


def test_a_stream_waiting_for_memory_gets_loading_comments_and_status_shows_why(
    stack: Stack,
) -> None:
    ask(stack, "a")
    time.sleep(TURN_S)  # a's turn is over: b's request closes it, and waits for it to drain
    long_done = threading.Event()
    long_answer: list[str] = []

    def long_request() -> None:
        long_answer.append(ask(stack, "a", "long please"))
        long_done.set()

    thread = threading.Thread(target=long_request)
    thread.start()
    try:
        wait_until(lambda: stack.status("a")["in_flight"] == 1, 10, what="a busy")
        lines_before_a_ended: list[str] = []
        with stack.stream_chat("b") as response:
            assert response.status_code == 200
            lines = []
            for line in response.iter_lines():
                lines.append(line)
                if not long_done.is_set():
                    lines_before_a_ended.append(line)
                if line.startswith(": loading") and len(lines) == 1:
                    _check_status_while_b_waits(stack)
    finally:
        thread.join(30)
    assert long_answer == [LONG]
    assert any(line.startswith(": loading b") for line in lines_before_a_ended)
    text = "".join(
        json.loads(line[5:])["choices"][0]["delta"].get("content") or ""
        for line in lines
        if line.startswith("data: {")
    )
    assert text == f"b says {TICKS}"


def test_a_client_that_leaves_while_waiting_takes_its_claim_on_memory_with_it(
    stack: Stack,
) -> None:
    ask(stack, "a")
    time.sleep(TURN_S)
    since = len(stack.log("gateway"))
    answers: list[str] = []
    thread = threading.Thread(target=lambda: answers.append(ask(stack, "a", "long")))
    thread.start()
    try:
        wait_until(lambda: stack.status("a")["in_flight"] == 1, 10, what="a busy")
        with stack.stream_chat("b") as response:
            lines = response.iter_lines()  # kept: dropping it would close the connection
            assert next(lines).startswith(": loading b")
            assert stack.status("a")["making_way_for"] == "b"
            assert stack.status("b")["waiting"]["count"] == 1
        # The client hung up: nobody waits for a's memory, so a takes requests again.
        wait_until(lambda: stack.status("a")["making_way_for"] is None, 5, what="a reopened")
        assert stack.status("b")["waiting"]["count"] == 0
        assert ask(stack, "a") == f"a says {TICKS}"
    finally:
        thread.join(30)
    assert answers == [LONG]
    assert not [e for e in events(stack, since) if e["event"] == "evict"]
    assert stack.status("b")["status"] == "unloaded"


def _check_status_while_b_waits(stack: Stack) -> None:
    with stack.client() as c:
        status = c.get("/admin/status").json()
    scheduler = status["scheduler"]
    assert scheduler["swaps"] == [{"from": "a", "to": "b", "stage": "closing"}]
    (waiting,) = scheduler["waiting"]
    assert waiting["model"] == "b" and waiting["count"] == 1 and waiting["waits_for"] == ["a"]
    models = {m["id"]: m for m in status["models"]}
    assert models["b"]["waiting"]["count"] == 1 and models["b"]["waiting"]["oldest_s"] > 0
    assert models["a"]["making_way_for"] == "b" and models["a"]["in_flight"] == 1


def test_a_wait_longer_than_admission_wait_s_is_refused_naming_who_holds_memory(
    stack: Stack,
) -> None:
    """admission_wait_s (set by a reload: the scheduler reads the running config) runs out
    while a long answer on a holds the memory; the long answer is not cut."""
    original = _config(stack)
    _reload(stack, {**original["memory"], "admission_wait_s": 1.5, "min_resident_s": 0.5})
    try:
        ask(stack, "a")
        time.sleep(0.5)
        answers: list[str] = []
        thread = threading.Thread(target=lambda: answers.append(ask(stack, "a", "long")))
        thread.start()
        wait_until(lambda: stack.status("a")["in_flight"] == 1, 10, what="a busy")
        started = time.monotonic()
        with pytest.raises(openai.APIStatusError) as info:
            ask(stack, "b")
        waited = time.monotonic() - started
        thread.join(30)
    finally:
        _reload(stack, original["memory"])
    assert 1.4 < waited < 3.5
    assert info.value.status_code == 503
    error = info.value.response.json()["error"]
    assert error["code"] == "insufficient_memory"
    assert "not enough memory to load b within 1.5s (memory.admission_wait_s)" in error["message"]
    assert "held by a (ready, 1 request in flight, making way for b)" in error["message"]
    assert answers == [LONG]
    assert stack.status("a")["making_way_for"] is None  # nobody waits for its memory now
    assert ask(stack, "a") == f"a says {TICKS}"


def _config(stack: Stack) -> dict[str, Any]:
    path = stack.root / "config" / "lmx.yaml"
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def _reload(stack: Stack, memory: dict[str, Any]) -> None:
    path: Path = stack.root / "config" / "lmx.yaml"
    path.write_text(yaml.safe_dump({**_config(stack), "memory": memory}, sort_keys=False))
    with httpx.Client(base_url=stack.url, timeout=30, trust_env=False) as c:
        c.post("/admin/config/reload", json={}).raise_for_status()
    with stack.client() as c:
        scheduler = c.get("/admin/status").json()["scheduler"]
    assert scheduler["admission_wait_s"] == memory["admission_wait_s"]
