"""Section 3: aggregate decode speed with 1, 2, 4, 8 streams at once on one worker."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

from scripts.benchmarks import report
from scripts.benchmarks.backends_bench import MODEL_IDS, REQUEST_TIMEOUT_S, guarded
from scripts.benchmarks.stacks import real_stack, worker_url
from scripts.benchmarks.streams import http_stream

LEVELS = (1, 2, 4, 8)
MAX_TOKENS = {"llama_cpp": 64, "mlx": 12}


def run(quick: bool) -> dict[str, Any]:
    scale = 2 if quick else 1
    return {backend: measure_backend(backend, scale) for backend in MODEL_IDS}


def measure_backend(backend: str, scale: int) -> dict[str, Any]:
    model_id, tokens = MODEL_IDS[backend], MAX_TOKENS[backend] // scale
    found: dict[str, Any] = {"max_tokens": tokens}
    with real_stack([model_id], auto_load=True) as stack:
        url = worker_url(stack, model_id)
        for _ in range(2):  # warm, as in section 2
            http_stream(url, min(tokens, 16), model_id, REQUEST_TIMEOUT_S)
        for level in LEVELS:
            found[str(level)] = guarded(partial(streams_at_once, url, model_id, tokens, level))
    return found


def streams_at_once(url: str, model_id: str, tokens: int, count: int) -> dict[str, Any]:
    started = time.perf_counter()
    with ThreadPoolExecutor(count) as pool:
        futures = [
            pool.submit(http_stream, url, tokens, model_id, REQUEST_TIMEOUT_S) for _ in range(count)
        ]
        samples = [f.result() for f in futures]
    wall = time.perf_counter() - started
    generated = sum(s.tokens for s in samples)
    return {
        "aggregate_tps": generated / wall,
        "wall_s": wall,
        "tokens": generated,
        "ttft_ms_max": max(s.ttft_s for s in samples) * 1e3,
    }


def text(results: dict[str, Any]) -> str:
    header = ["backend (our worker, direct)", *[f"{n} stream{'s' * (n > 1)}" for n in LEVELS]]
    rows = []
    for backend in MODEL_IDS:
        found = results[backend]
        cells = []
        for level in LEVELS:
            one = found[str(level)]
            cells.append("error" if "error" in one else f"{one['aggregate_tps']:.1f}")
        rows.append([f"{backend} ({found['max_tokens']} tokens each)", *cells])
    title = "3. concurrency: aggregate tokens/s (all tokens / wall time, TTFT included)"
    return report.table(title, header, rows)
