"""The worker's one state machine and counters, and the /health body built from them."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from enum import Enum
from typing import Any

import psutil


class ModelState(Enum):
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"


_ALLOWED = {
    ModelState.LOADING: {ModelState.READY, ModelState.FAILED},
    ModelState.READY: set(),
    ModelState.FAILED: set(),
}


@dataclass
class Counters:
    requests_total: int = 0
    tokens_generated: int = 0
    cancelled_total: int = 0
    last_request_at: float | None = None


class WorkerStatus:
    """Model state plus counters. The state only moves along `_ALLOWED`; the loader
    thread moves it, request handlers read it."""

    def __init__(self) -> None:
        self.state = ModelState.LOADING
        self.error: str | None = None
        self.load_seconds: float | None = None
        self.counters = Counters()
        self._lock = threading.Lock()

    def ready(self, load_seconds: float) -> bool:
        return self._move(ModelState.READY, load_seconds=load_seconds)

    def fail(self, error: str) -> bool:
        return self._move(ModelState.FAILED, error=error)

    def request_started(self) -> None:
        self.counters.requests_total += 1
        self.counters.last_request_at = time.time()

    def _move(
        self, target: ModelState, load_seconds: float | None = None, error: str | None = None
    ) -> bool:
        with self._lock:
            if target not in _ALLOWED[self.state]:
                return False
            self.state, self.load_seconds, self.error = target, load_seconds, error
            return True


@dataclass(frozen=True)
class HealthContext:
    model_id: str
    backend: str
    port: int
    context_length: int


def health_body(
    status: WorkerStatus,
    context: HealthContext,
    accelerator_bytes: int | None,
    in_flight: int,
    queued: int,
) -> dict[str, Any]:
    counters = status.counters
    return {
        "status": status.state.value,
        "model": context.model_id,
        "backend": context.backend,
        "pid": os.getpid(),
        "rss_bytes": psutil.Process().memory_info().rss,
        "accelerator_bytes": accelerator_bytes,
        "in_flight": in_flight,
        "queued": queued,
        "requests_total": counters.requests_total,
        "tokens_generated": counters.tokens_generated,
        "cancelled_total": counters.cancelled_total,
        "last_request_at": counters.last_request_at,
        "load_seconds": status.load_seconds,
        "error": status.error,
        "context_length": context.context_length,
        "port": context.port,
    }
