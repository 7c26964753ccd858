"""When a translated request started, reached its worker, saw its first token and ended:
the figures Ollama (nanosecond durations) and LM Studio (`stats`) put in their answers."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from gateway.fleet.worker_handle import WorkerHandle
from gateway.peers import PeerModel


@dataclass
class Timing:
    started: float = field(default_factory=time.monotonic)
    started_wall: float = field(default_factory=time.time)
    opened: float | None = None
    first_token: float | None = None
    finished: float | None = None
    load_s: float = 0.0

    def open(self, worker: WorkerHandle | PeerModel) -> None:
        """The worker has answered; a load this request waited for ends in its ready time."""
        self.opened = time.monotonic()
        if isinstance(worker, WorkerHandle) and worker.ready_since > self.started_wall:
            self.load_s = worker.ready_since - self.started_wall

    def token(self) -> None:
        if self.first_token is None:
            self.first_token = time.monotonic()

    def finish(self) -> None:
        self.finished = time.monotonic()

    @property
    def total_s(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    @property
    def prompt_s(self) -> float:
        """From the worker's answer to the first token: the prompt's prefill."""
        opened = self.opened or self.started
        return (self.first_token or self.finished or opened) - opened

    @property
    def generation_s(self) -> float:
        """From the first token to the last."""
        if self.first_token is None:
            return 0.0
        return (self.finished or time.monotonic()) - self.first_token
