"""Section 2: per backend, the library in-process vs our worker directly vs through the
gateway vs the library's own server. Same prompt, temperature 0, fixed max_tokens."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from scripts.benchmarks import report
from scripts.benchmarks.servers import REPO, library_server
from scripts.benchmarks.stacks import LLAMA_ID, MLX_ID, real_stack, worker_url
from scripts.benchmarks.streams import Sample, http_stream, summary

# MLX on a CPU decodes at a few tokens per second here: keep its runs short.
MAX_TOKENS = {"llama_cpp": 128, "mlx": 24}
REQUEST_TIMEOUT_S = 120
MODEL_IDS = {"llama_cpp": LLAMA_ID, "mlx": MLX_ID}
PATHS = ("in-process library", "our worker, direct", "through the gateway", "library's own server")


def run(quick: bool) -> dict[str, Any]:
    runs = 1 if quick else 2
    return {backend: measure_backend(backend, runs) for backend in MODEL_IDS}


def measure_backend(backend: str, runs: int) -> dict[str, Any]:
    tokens, model_id = MAX_TOKENS[backend], MODEL_IDS[backend]
    found: dict[str, Any] = {"max_tokens": tokens}
    found[PATHS[0]] = guarded(lambda: inprocess(backend, tokens, runs))
    with real_stack([model_id], auto_load=True) as stack:
        direct = worker_url(stack, model_id)
        found[PATHS[1]] = guarded(lambda: over_http(direct, tokens, model_id, runs))
        found[PATHS[2]] = guarded(lambda: over_http(stack.url, tokens, model_id, runs))
    found[PATHS[3]] = guarded(lambda: own_server(backend, tokens, runs))
    return found


def guarded(measure: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """A path that cannot run here is reported with its reason, not fatal to the rest."""
    try:
        return measure()
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {str(exc)[-300:]}"}


def inprocess(backend: str, max_tokens: int, runs: int) -> dict[str, Any]:
    command = [sys.executable, "-m", "scripts.benchmarks.inprocess", backend]
    command += [str(max_tokens), str(runs)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip()[-300:] or f"exit {done.returncode}")
    rows = json.loads(done.stdout.strip().splitlines()[-1])
    return summary([Sample(**row) for row in rows])


def over_http(base_url: str, max_tokens: int, model: str | None, runs: int) -> dict[str, Any]:
    # Warm twice: a llama worker's first requests after its load can crawl (seen here at
    # 1.5-4 tok/s for a few requests, before ~80); the steady speed is what we compare.
    for _ in range(2):
        http_stream(base_url, min(max_tokens, 32), model, timeout=REQUEST_TIMEOUT_S)
    samples = [http_stream(base_url, max_tokens, model, REQUEST_TIMEOUT_S) for _ in range(runs)]
    return summary(samples)


def own_server(backend: str, max_tokens: int, runs: int) -> dict[str, Any]:
    with library_server(backend) as url:
        return over_http(url, max_tokens, None, runs)


def text(results: dict[str, Any]) -> str:
    header = ["backend / path", "TTFT ms", "decode tok/s", "tokens", "vs in-process"]
    rows: list[list[str]] = []
    for backend, found in results.items():
        if backend == "section_seconds":
            continue
        base = found[PATHS[0]].get("decode_tps")
        for path in PATHS:
            rows.append(_row(f"{backend}: {path}", found[path], base))
    title = f"2. backends (prompt: one story; temperature 0; max_tokens {MAX_TOKENS})"
    note = (
        "   note: every run sends the same prompt. Our workers, the libraries' servers and"
        " llama-cpp-python in-process reuse it (TTFT: the last prompt token and the first"
        " decode step); mlx-lm in-process prefills it each time. Section 5 measures prefill."
    )
    return report.table(title, header, rows) + "\n" + note


def _row(label: str, found: dict[str, Any], base: float | None) -> list[str]:
    if "error" in found:
        return [label, "could not run:", found["error"][:110]]
    ratio = f"{found['decode_tps'] / base:.2f}x" if base else ""
    tps, ttft = found["decode_tps"], found["ttft_ms"]
    return [label, f"{ttft:.0f}", f"{tps:.1f}", f"{found['tokens']:.0f}", ratio]
