"""What the gateway knows about one configured model and its worker process."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gateway.config.schema import ModelConfig
from gateway.fleet.programs import program_name
from gateway.fleet.states import State, worker_machine
from workers.contract.health import Health
from workers.contract.settings import WorkerSettings
from workers.contract.state_machine import StateMachine


@dataclass
class WorkerHandle:
    model: ModelConfig
    host: str
    machine: StateMachine[State] = field(init=False)
    pid: int = 0
    in_flight: int = 0
    # Wall-clock seconds; the worker's own last request time counts too (direct clients).
    last_used: float = 0.0
    ready_since: float = 0.0
    # Monotonic: when it last became ready, and when its last request ended (its turn).
    ready_at: float = 0.0
    released_at: float = 0.0
    load_seconds: float | None = None
    last_error: str | None = None
    rss: int = 0
    learned_bytes: int | None = None
    health: Health | None = None  # the worker's last /health answer
    # A client's idle time for this load (Ollama's keep_alive), over the config's ttl_s.
    keep_alive_s: float | None = None
    unhealthy_since: float | None = None
    load_task: asyncio.Task[None] | None = None
    unload_task: asyncio.Task[None] | None = None
    idle: asyncio.Event = field(default_factory=asyncio.Event)
    # What a config reload or the library watch decided (gateway.fleet.reconcile):
    source: str = "config"  # or "library"
    settings: WorkerSettings | None = None  # what the worker was last started with
    pending: ModelConfig | None = None  # new settings, taken at the next load
    removed: bool = False  # gone from the model set; dropped once it is stopped
    restart_task: asyncio.Task[None] | None = None
    on_idle: Callable[[], None] | None = None  # the fleet's scheduler: its last request ended

    def __post_init__(self) -> None:
        self.machine = worker_machine(self.model.id)
        self.idle.set()

    @property
    def id(self) -> str:
        return self.model.id

    @property
    def program(self) -> str:
        return program_name(self.model.id)

    @property
    def state(self) -> State:
        return self.machine.state

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.model.port}"

    @property
    def busy(self) -> bool:
        return self.in_flight > 0 or (self.health is not None and self.health.busy)

    def last_activity(self) -> float:
        # The worker's own view counts too: clients that talk to its port directly.
        worker_seen = self.health.last_activity if self.health is not None else 0.0
        return max(self.last_used, worker_seen, self.ready_since)

    def begin_request(self) -> None:
        self.in_flight += 1
        self.idle.clear()
        self.last_used = time.time()

    def end_request(self) -> None:
        self.in_flight -= 1
        self.last_used = time.time()
        if self.in_flight == 0:
            self.released_at = time.monotonic()
            self.idle.set()
            if self.on_idle is not None:
                self.on_idle()

    def forget_process(self) -> None:
        self.pid = 0
        self.rss = 0
        self.health = None
        self.unhealthy_since = None
        self.keep_alive_s = None

    def status(self) -> dict[str, Any]:
        loaded = self.state in (State.READY, State.DRAINING)
        return {
            "id": self.id,
            "status": self.state.value,
            "backend": self.model.backend,
            "port": self.model.port if loaded else None,
            "pid": self.pid or None,
            "rss_bytes": self.rss or None,
            "in_flight": self.in_flight,
            "queued": self.health.queued if self.health is not None else 0,
            "last_used": self.last_activity() or None,
            "load_seconds": self.load_seconds,
            "pinned": self.model.pinned,
            "error": self.last_error,
            "prompt_cache": _cache_stats(self.health),
        }


def _cache_stats(health: Health | None) -> dict[str, int] | None:
    if health is None or health.prompt_cache is None:
        return None
    return dataclasses.asdict(health.prompt_cache)
