"""Whole Opta-LMX stacks for the benchmarks: the test suite's real supervisord stack,
with a config written for the measurement. Every stack stops when its block ends."""

from __future__ import annotations

import contextlib
import json
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil

from tests.integration.stack import GGUF, MLX_DIR, Stack, base_config, running_stack, wait_until

LLAMA_ID = "smollm2-gguf"
MLX_ID = "smollm2-mlx"
REAL_MODELS = {
    LLAMA_ID: {"path": GGUF.name, "backend": "llama_cpp"},
    MLX_ID: {"path": MLX_DIR.name, "backend": "mlx"},
}


@contextlib.contextmanager
def scripted_stack(scripts: dict[str, dict[str, Any]]) -> Iterator[Stack]:
    """Scripted workers, loaded before the stack is handed out."""
    with tempfile.TemporaryDirectory(prefix="lmx-bench-") as tmp:
        models_dir = Path(tmp) / "models"
        models_dir.mkdir()
        for name, script in scripts.items():
            (models_dir / f"{name}.json").write_text(json.dumps(script))
        models = [_model(name, f"{name}.json", "scripted") for name in scripts]
        config = base_config(models, models_dir, auto_load=list(scripts), **_quiet())
        with running_stack(Path(tmp), config) as stack:
            for name in scripts:
                wait_ready(stack, name, 60)
            yield stack


@contextlib.contextmanager
def real_stack(model_ids: list[str], auto_load: bool) -> Iterator[Stack]:
    """The real SmolLM2 models (GGUF for llama_cpp, MLX folder for mlx)."""
    with tempfile.TemporaryDirectory(prefix="lmx-bench-") as tmp:
        models = [_model(m, REAL_MODELS[m]["path"], REAL_MODELS[m]["backend"]) for m in model_ids]
        loads = model_ids if auto_load else []
        config = base_config(models, GGUF.parent, auto_load=loads, **_quiet())
        with running_stack(Path(tmp), config) as stack:
            for model_id in loads:
                wait_ready(stack, model_id, 180)
            yield stack


def _model(model_id: str, path: str, backend: str) -> dict[str, Any]:
    return {
        "id": model_id,
        "path": path,
        "backend": backend,
        "max_concurrent": 32 if backend == "scripted" else 8,
        "max_queue": 64,
        "context_length": 2048,
        "embeddings": backend != "scripted",  # the soak sends embeddings too
    }


def _quiet() -> dict[str, Any]:
    # The shipped defaults, not the test suite's fast health polling.
    return {"workers": {"health_interval_s": 1.0, "load_timeout_s": 180, "stop_timeout_s": 30}}


def wait_ready(stack: Stack, model_id: str, timeout: float) -> None:
    wait_until(lambda: stack.status(model_id)["status"] == "ready", timeout, what=model_id)


def worker_url(stack: Stack, model_id: str) -> str:
    port = next(m["port"] for m in stack.config["models"] if m["id"] == model_id)
    return f"http://127.0.0.1:{port}"


def gateway_process(stack: Stack) -> psutil.Process:
    pid = stack.pids(lambda cmd: cmd.endswith("-m gateway"))[0]
    return psutil.Process(pid)


def worker_process(stack: Stack, model_id: str) -> psutil.Process:
    pid = stack.pids(lambda cmd: "-m workers" in cmd and cmd.endswith(f"/{model_id}.json"))[0]
    return psutil.Process(pid)


def admin(stack: Stack, action: str, model_id: str) -> float:
    """POST /admin/models/<action>; returns the seconds it took."""
    started = time.perf_counter()
    with httpx.Client(base_url=stack.url, timeout=300, trust_env=False) as client:
        reply = client.post(f"/admin/models/{action}", json={"model": model_id})
        reply.raise_for_status()
    return time.perf_counter() - started
