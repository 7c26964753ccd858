"""Real workers on 127.0.0.1, port 0, served by uvicorn on a thread; stopped in teardown."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import OpenAI

from workers.contract.settings import WorkerSettings
from workers.server import WorkerServer

REPO = Path(__file__).resolve().parents[3]
SMOLLM2 = REPO / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
START_TIMEOUT_S = 30.0


@dataclass
class RunningWorker:
    server: WorkerServer
    thread: threading.Thread

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.settings.port}"

    def client(self, **options: Any) -> OpenAI:
        options.setdefault("max_retries", 0)
        options.setdefault("timeout", 60.0)
        options.setdefault("api_key", "unused")
        return OpenAI(base_url=self.base_url + "/v1", **options)

    def health(self) -> dict[str, Any]:
        body: dict[str, Any] = httpx.get(self.base_url + "/health", timeout=5).json()
        return body

    def wait_ready(self, timeout_s: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.health()["status"] == "ready":
                return
            time.sleep(0.02)
        raise AssertionError(f"worker not ready after {timeout_s}s: {self.health()}")


def start(settings: WorkerSettings, failed_exit_delay_s: float = 0.2) -> RunningWorker:
    server = WorkerServer(settings, failed_exit_delay_s=failed_exit_delay_s)
    thread = threading.Thread(target=server.run, name="test-worker", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            server.stop()
            raise AssertionError("worker server did not start")
        time.sleep(0.01)
    return RunningWorker(server, thread)


@contextlib.contextmanager
def ready_worker(settings: WorkerSettings, timeout_s: float = 120) -> Iterator[RunningWorker]:
    """A worker started and ready; stopped when the block ends, whatever happened."""
    worker = start(settings)
    try:
        worker.wait_ready(timeout_s=timeout_s)
        yield worker
    finally:
        stop(worker)


def mlx_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SmolLM2 converted to MLX once per session, in the folder every MLX test uses."""
    from workers.backends.mlx.convert_gguf import convert

    model_dir = tmp_path_factory.getbasetemp() / "SmolLM2-135M-Instruct-mlx"
    if not model_dir.is_dir():
        convert(SMOLLM2, model_dir)
    return model_dir


def stop(worker: RunningWorker) -> None:
    worker.server.stop()
    worker.thread.join(timeout=15)


StartScripted = Callable[..., RunningWorker]


@pytest.fixture
def start_scripted(tmp_path: Path) -> Iterator[StartScripted]:
    """start_scripted(script_dict, **settings) -> a ready (unless told) scripted worker."""
    running: list[RunningWorker] = []

    def _start(script: dict[str, Any], wait: bool = True, **overrides: Any) -> RunningWorker:
        path = tmp_path / f"script-{len(running)}.json"
        path.write_text(json.dumps(script))
        exit_delay_s = overrides.pop("failed_exit_delay_s", 0.2)
        settings = WorkerSettings(
            model_id=overrides.pop("model_id", "scripted-model"),
            backend="scripted",
            path=path,
            port=0,
            **overrides,
        )
        worker = start(settings, exit_delay_s)
        running.append(worker)
        if wait:
            worker.wait_ready()
        return worker

    try:
        yield _start
    finally:
        for worker in running:
            stop(worker)
