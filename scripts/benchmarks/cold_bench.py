"""Section 4: from nothing loaded to the first token through the gateway, per backend,
and swapping one model for another through the admin API (unload A, load B, first token)."""

from __future__ import annotations

import time
from typing import Any

from scripts.benchmarks import report
from scripts.benchmarks.backends_bench import REQUEST_TIMEOUT_S, guarded
from scripts.benchmarks.stacks import LLAMA_ID, MLX_ID, admin, real_stack
from scripts.benchmarks.streams import http_stream
from tests.integration.stack import Stack

FIRST_TOKENS = 4


def run(quick: bool) -> dict[str, Any]:
    found: dict[str, Any] = {}
    with real_stack([LLAMA_ID, MLX_ID], auto_load=False) as stack:
        found["cold llama_cpp"] = guarded(lambda: cold(stack, LLAMA_ID))
        found["swap llama_cpp -> mlx"] = guarded(lambda: swap(stack, LLAMA_ID, MLX_ID))
        found["swap mlx -> llama_cpp"] = guarded(lambda: swap(stack, MLX_ID, LLAMA_ID))
        found["cold mlx"] = guarded(lambda: cold(stack, MLX_ID))
    return found


def cold(stack: Stack, model_id: str) -> dict[str, Any]:
    """The model is not loaded: one streamed request loads it and answers."""
    sample = http_stream(stack.url, FIRST_TOKENS, model_id, REQUEST_TIMEOUT_S)
    return {"total_s": sample.ttft_s}


def swap(stack: Stack, loaded: str, wanted: str) -> dict[str, Any]:
    started = time.perf_counter()
    unload_s = admin(stack, "unload", loaded)
    load_s = admin(stack, "load", wanted)
    sample = http_stream(stack.url, FIRST_TOKENS, wanted, REQUEST_TIMEOUT_S)
    total = time.perf_counter() - started
    return {"total_s": total, "unload_s": unload_s, "load_s": load_s, "ttft_s": sample.ttft_s}


def text(results: dict[str, Any]) -> str:
    header = ["through the gateway", "to first token s", "unload s", "load s", "then TTFT s"]
    rows = []
    for label, found in results.items():
        if label == "section_seconds":
            continue
        if "error" in found:
            rows.append([label, "could not run:", found["error"][:100]])
            continue
        parts = [found.get(k) for k in ("unload_s", "load_s", "ttft_s")]
        cells = ["" if p is None else f"{p:.2f}" for p in parts]
        rows.append([label, f"{found['total_s']:.2f}", *cells])
    return report.table("4. cold load and swap", header, rows)
