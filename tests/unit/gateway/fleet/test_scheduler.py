"""The scheduler's queue around the cases real processes cannot produce on cue: a client
that leaves in the instant between being let through and running, and a wait that runs
out. A small fleet stands in for the real one (its loads and unloads only move states);
the fleet's own behaviour is tested on real supervisord (tests/integration/gateway/
test_scheduler.py)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any, cast

import pytest

from gateway.config.schema import MemorySection, ModelConfig
from gateway.fleet.fleet import HOLDING, Fleet
from gateway.fleet.scheduler import Scheduler
from gateway.fleet.states import State
from gateway.fleet.worker_handle import WorkerHandle
from workers.contract.errors import ApiError

GB = 1024**3


class SmallFleet:
    """Two 5 GiB models on 6 GiB: one at a time."""

    def __init__(self, memory: MemorySection) -> None:
        self.config = SimpleNamespace(file=SimpleNamespace(memory=memory))
        self.scheduler = Scheduler(cast(Fleet, self))
        self.workers = {m: self._handle(m) for m in ("a", "b")}
        self.loads: list[str] = []

    def _handle(self, model_id: str) -> WorkerHandle:
        w = WorkerHandle(ModelConfig(id=model_id, path=f"{model_id}.json", backend="scripted"), "")
        w.on_idle = self.scheduler.pump
        return w

    def holding(self) -> list[WorkerHandle]:
        return [w for w in self.workers.values() if w.state in HOLDING]

    def estimate(self, w: WorkerHandle) -> int:
        return 5 * GB

    def reservation(self, w: WorkerHandle) -> int:
        return 5 * GB

    def free_bytes(self) -> int:
        return 6 * GB - 5 * GB * len(self.holding())

    def start_loading(self, w: WorkerHandle) -> Any:
        self.loads.append(w.id)
        w.machine.move(State.LOADING)  # ready when the test says so

    def start_unloading(self, w: WorkerHandle, reason: str) -> Any:
        w.machine.move(State.UNLOADED)


def ready(fleet: SmallFleet, model_id: str) -> WorkerHandle:
    w = fleet.workers[model_id]
    w.machine.move(State.READY)
    fleet.scheduler.pump()  # what a finished load does
    return w


def test_a_request_let_through_as_its_client_leaves_is_not_left_counted_in_flight() -> None:
    async def scenario() -> int:
        fleet = SmallFleet(MemorySection(min_resident_s=0))
        a = fleet.workers["a"]
        waiting = asyncio.create_task(fleet.scheduler.wait_turn(a))
        await asyncio.sleep(0)
        assert fleet.loads == ["a"] and a.in_flight == 0
        ready(fleet, "a")  # lets the waiter through: counted in flight for it
        assert a.in_flight == 1
        waiting.cancel()  # before it ran again
        with pytest.raises(asyncio.CancelledError):
            await waiting
        return a.in_flight

    assert asyncio.run(scenario()) == 0


def test_a_wait_that_runs_out_is_refused_naming_who_holds_the_memory() -> None:
    async def scenario() -> tuple[ApiError, WorkerHandle]:
        fleet = SmallFleet(MemorySection(min_resident_s=0, admission_wait_s=0.2))
        a = fleet.workers["a"]
        a.machine.move(State.READY)
        a.begin_request()  # a long answer: a closes for b, but cannot go yet
        with pytest.raises(ApiError) as info:
            await fleet.scheduler.wait_turn(fleet.workers["b"])
        return info.value, a

    error, a = asyncio.run(scenario())
    assert error.status == 503 and error.code == "insufficient_memory"
    assert "not enough memory to load b within 0.2s (memory.admission_wait_s)" in error.message
    assert "held by a (ready, 1 request in flight, making way for b)" in error.message
    assert a.state is State.READY  # nobody waits now: a was not unloaded
