"""The worker's own state machine (loading, then ready or failed, for good) and its
counters; `Worker.health()` reads both into the /health document."""

from __future__ import annotations

import time
from dataclasses import dataclass

from workers.contract.health import ModelState
from workers.contract.state_machine import StateMachine

M = ModelState
ALLOWED: dict[ModelState, frozenset[ModelState]] = {
    M.LOADING: frozenset({M.READY, M.FAILED}),
    M.READY: frozenset(),
    M.FAILED: frozenset(),
}


@dataclass
class Counters:
    requests_total: int = 0
    tokens_generated: int = 0
    cancelled_total: int = 0
    last_request_at: float | None = None


class WorkerStatus:
    """Model state plus counters; the loader thread moves the state, requests read it."""

    def __init__(self, model_id: str) -> None:
        self.machine = StateMachine(model_id, ALLOWED, M.LOADING)
        self.error: str | None = None
        self.load_seconds: float | None = None
        self.ready_at: float | None = None
        self.counters = Counters()

    @property
    def state(self) -> ModelState:
        return self.machine.state

    def ready(self, load_seconds: float) -> None:
        # Set before the move: a reader that sees READY sees these too.
        self.load_seconds, self.ready_at = load_seconds, time.time()
        self.machine.move(M.READY)

    def fail(self, error: str) -> None:
        self.error = error
        self.machine.move(M.FAILED)

    def request_started(self) -> None:
        self.counters.requests_total += 1
        self.counters.last_request_at = time.time()
