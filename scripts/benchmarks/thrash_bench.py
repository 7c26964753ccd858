"""Section 6: thrash. Two models that cannot be loaded together, two clients, each asking
its own model one request after another, so the requests alternate between the models
(two agents on two models, the case llama-swap #612 describes). The scheduler's turns
(memory.min_resident_s) against a swap per request (min_resident_s 0: every waiting
request closes the other model as soon as its requests end), both real runs of the
same gateway on scripted workers presented as large on a machine presented as small.
Swaps are counted from the gateway's log (`evict` events)."""

from __future__ import annotations

import contextlib
import json
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil

from scripts.benchmarks import report
from scripts.benchmarks.backends_bench import guarded
from tests.integration.stack import Stack, base_config, running_stack, scripted_models

GB = 1024**3
TURN_S = 5.0
POLICIES = {
    f"scheduler (min_resident_s {TURN_S:g})": TURN_S,
    "swap per request (min_resident_s 0)": 0.0,
}
# Six tokens at 0.05 s: a short answer, ~0.3 s on the worker.
SCRIPT = {"default": " ".join(["tick"] * 6), "token_delay_s": 0.05}


def run(quick: bool) -> dict[str, Any]:
    requests = 8 if quick else 20
    return {label: guarded(lambda t=turn: thrash(t, requests)) for label, turn in POLICIES.items()}


@contextlib.contextmanager
def two_model_stack(min_resident_s: float) -> Iterator[Stack]:
    """a and b take 40 GiB each on a machine presented with 60 GiB free: one at a time."""
    with tempfile.TemporaryDirectory(prefix="lmx-bench-") as tmp:
        models_dir = Path(tmp) / "models"
        large = {"memory_gb": 40.0, "max_concurrent": 4}
        models = scripted_models(models_dir, {"a": SCRIPT, "b": SCRIPT}, {"a": large, "b": large})
        vm = psutil.virtual_memory()
        memory = {
            "total_gb": round((vm.total - vm.available) / GB + 60, 2),
            "max_memory_percent": 100,
            "min_resident_s": min_resident_s,
            "admission_wait_s": 600,
        }
        workers = {"prompt_cache_gb": 0.1, "health_interval_s": 1.0, "stop_timeout_s": 30}
        config = base_config(models, models_dir, memory=memory, workers=workers)
        with running_stack(Path(tmp), config) as stack:
            yield stack


def thrash(min_resident_s: float, requests: int) -> dict[str, Any]:
    with two_model_stack(min_resident_s) as stack:
        since = len(stack.log("gateway"))
        latencies, took = two_clients(stack, requests)
        swaps = sum(1 for e in _events(stack, since) if e.get("event") == "evict")
    return {
        "requests": len(latencies),
        "swaps": swaps,
        "total_s": round(took, 2),
        "p50_s": round(statistics.median(latencies), 2),
        "max_s": round(max(latencies), 2),
    }


def two_clients(stack: Stack, requests: int) -> tuple[list[float], float]:
    """Client one asks a, client two asks b, `requests` times each, at the same time."""
    latencies: list[float] = []
    failures: list[str] = []

    def client(model_id: str) -> None:
        body = {"model": model_id, "messages": [{"role": "user", "content": "hi"}]}
        with httpx.Client(base_url=stack.url, timeout=600, trust_env=False) as c:
            for _ in range(requests):
                started = time.perf_counter()
                reply = c.post("/v1/chat/completions", json=body)
                latencies.append(time.perf_counter() - started)
                if reply.status_code != 200:
                    failures.append(f"{model_id}: {reply.status_code} {reply.text[:200]}")

    threads = [threading.Thread(target=client, args=(m,)) for m in ("a", "b")]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(3600)
    took = time.perf_counter() - started
    if failures:
        raise RuntimeError(f"{len(failures)} requests failed, first: {failures[0]}")
    return latencies, took


def _events(stack: Stack, since: int) -> list[dict[str, Any]]:
    lines = stack.log("gateway")[since:].splitlines()
    return [json.loads(x[x.index("{") :]) for x in lines if "lmx.events" in x and "{" in x]


def text(results: dict[str, Any]) -> str:
    header = ["two clients, a and b alternating", "requests", "swaps", "total s", "p50 s", "max s"]
    rows = []
    for label, found in results.items():
        if label == "section_seconds":
            continue
        if "error" in found:
            rows.append([label, "could not run:", found["error"][:100]])
            continue
        keys = ("requests", "swaps", "total_s", "p50_s", "max_s")
        rows.append([label, *(str(found[k]) for k in keys)])
    return report.table("6. thrash: two models that cannot be loaded together", header, rows)
