"""The queue of requests waiting for their model, and the swaps that serve them.

A request for a model that is ready and takes requests goes straight on (the fleet's fast
path). Any other joins its model's queue here, in arrival order, and waits until the
model is ready and takes requests again; then every request of that queue goes on at
once (the worker has its own queue and its own limit). Memory decisions come from one
pure rule, gateway.memory.turns: each time something changes (a request arrives or ends,
a load or an unload finishes, a turn ends, a config is applied) the scheduler takes a
snapshot, plans, and applies the plan: loads to start, models to close (no new requests;
unloaded as soon as their last request ends), waiters to let through, waiters that
waited longer than memory.admission_wait_s to refuse.

Everything here runs without an await, so no request sees half of a decision.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gateway.events import log_event
from gateway.fleet.states import State
from gateway.fleet.worker_handle import WorkerHandle
from gateway.memory.probe import GB
from gateway.memory.turns import Holder, TurnPlan, TurnRules, Want, plan_turns
from workers.contract.errors import ApiError

if TYPE_CHECKING:
    from gateway.fleet.fleet import Fleet

log = logging.getLogger("lmx.scheduler")
# After a load was refused for memory that the plan thought was free (another program
# took it meanwhile), wait this long before trying that load again.
RETRY_S = 1.0


@dataclass(eq=False)
class Waiter:
    model_id: str
    arrived: float  # monotonic
    future: asyncio.Future[WorkerHandle]


def _pending(task: asyncio.Task[None] | None) -> bool:
    return task is not None and not task.done()


class Scheduler:
    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self._queues: dict[str, deque[Waiter]] = {}
        # A model that takes no new request -> the model it makes way for; then, once its
        # unload has begun, the same in _evicting.
        self.closing: dict[str, str] = {}
        self._evicting: dict[str, str] = {}
        self._retry_at: dict[str, float] = {}
        self._plan = TurnPlan()
        self._timer: asyncio.TimerHandle | None = None

    # ---- requests -------------------------------------------------------------------

    def admits(self, w: WorkerHandle) -> bool:
        """A ready model takes a new request now: nobody waits before it, no swap is due."""
        return (
            w.state is State.READY
            and w.id not in self.closing
            and w.id not in self._queues
            and not _pending(w.unload_task)  # an unload just begun (it drains from here)
        )

    async def wait_turn(self, w: WorkerHandle) -> WorkerHandle:
        """Wait in `w`'s queue until its model takes requests; return it with this
        request counted in flight (the caller ends it)."""
        waiter = Waiter(w.id, time.monotonic(), asyncio.get_running_loop().create_future())
        self._queues.setdefault(w.id, deque()).append(waiter)
        self.pump()
        try:
            return await waiter.future
        except asyncio.CancelledError:
            self._withdraw(waiter)
            raise

    def _withdraw(self, waiter: Waiter) -> None:
        """A waiter that left (client gone, cancelled): out of the queue, or, let through
        just before it left, no longer counted in flight."""
        future = waiter.future
        if future.done() and not future.cancelled() and future.exception() is None:
            future.result().end_request()
            return
        queue = self._queues.get(waiter.model_id)
        if queue is not None and waiter in queue:
            queue.remove(waiter)
            if not queue:
                del self._queues[waiter.model_id]
            self.pump()  # the swap it waited for may no longer be wanted

    # ---- what happened --------------------------------------------------------------

    def load_finished(self, w: WorkerHandle, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and (exc := task.exception()) is not None:
            if isinstance(exc, ApiError) and exc.code == "insufficient_memory":
                self._retry_at[w.id] = time.monotonic() + RETRY_S
            else:  # every request that waited for this load gets its error
                self._refuse_all(w.id, _as_api_error(w.id, exc))
        self.pump()

    def unload_finished(self, w: WorkerHandle) -> None:
        self._evicting.pop(w.id, None)
        # After those awaiting the unload have seen it done (an admin unload answers
        # "unloaded"), then whatever waits for the memory.
        asyncio.get_running_loop().call_soon(self.pump)

    # ---- deciding -------------------------------------------------------------------

    def pump(self) -> None:
        """Plan from what is true now and apply it. Runs inside callers' cleanup (a
        request's end), so a failure here is logged, never raised into them."""
        if not self._queues and not self.closing:
            return
        try:
            self._pump()
        except Exception:
            log.exception("scheduler pass failed")

    def _pump(self) -> None:
        now = time.monotonic()
        self._retry_at = {m: t for m, t in self._retry_at.items() if t > now}
        self._refuse_removed()
        self._expire(now)
        plan = self._planned(now)
        self._close(plan)
        for model_id in plan.load:
            self.fleet.start_loading(self.fleet.workers[model_id])
        self._let_through()
        self._plan = plan
        self._arm(now, plan)

    def _planned(self, now: float) -> TurnPlan:
        fleet = self.fleet
        memory = fleet.config.file.memory
        rules = TurnRules(memory.min_resident_s, may_evict=memory.auto_evict_lru)
        holders = [self._holder(w) for w in fleet.holding()]
        wants = [
            Want(model_id, queue[0].arrived, fleet.estimate(fleet.workers[model_id]))
            for model_id, queue in self._queues.items()
            if model_id not in self._retry_at
        ]
        return plan_turns(now, fleet.free_bytes(), holders, wants, rules)

    def _holder(self, w: WorkerHandle) -> Holder:
        return Holder(
            model_id=w.id,
            bytes=self.fleet.reservation(w),
            ready=w.state is State.READY,
            leaving=w.state in (State.DRAINING, State.STOPPING) or _pending(w.unload_task),
            pinned=w.model.pinned,
            in_flight=w.in_flight,
            ready_at=w.ready_at,
            released_at=w.released_at,
            last_activity=w.last_activity(),
            closing=w.id in self.closing,
        )

    def _close(self, plan: TurnPlan) -> None:
        """Models whose turn is over take no new request; idle ones go now, busy ones
        when their last request ends (this runs again then)."""
        for victim, for_model in plan.close.items():
            if victim not in self.closing:
                log_event("swap_planned", model=victim, for_model=for_model,
                          waited_s=self._waited(for_model))  # fmt: skip
        self.closing = dict(plan.close)
        for victim, for_model in plan.close.items():
            w = self.fleet.workers[victim]
            if w.in_flight == 0 and not _pending(w.unload_task):
                self._evict(w, for_model)

    def _evict(self, w: WorkerHandle, for_model: str) -> None:
        needed = self.fleet.estimate(self.fleet.workers[for_model])
        log_event("evict", model=w.id, for_model=for_model, needed=needed)
        self._evicting[w.id] = for_model
        self.fleet.start_unloading(w, reason=f"evicted to make room for {for_model}")

    def _let_through(self) -> None:
        for model_id in list(self._queues):
            w = self.fleet.workers[model_id]
            if w.state is not State.READY or model_id in self.closing or _pending(w.unload_task):
                continue
            for waiter in self._queues.pop(model_id):
                if not waiter.future.done():
                    w.begin_request()
                    waiter.future.set_result(w)

    def _refuse_removed(self) -> None:
        for model_id in list(self._queues):
            w = self.fleet.workers.get(model_id)
            if w is None or w.removed:
                error = ApiError(
                    404, f"model {model_id!r} no longer exists", code="model_not_found"
                )
                self._refuse_all(model_id, error)

    def _expire(self, now: float) -> None:
        """Requests that waited memory.admission_wait_s for memory get 503 (one whose
        model is loading waits for that load, under workers.load_timeout_s)."""
        limit = self.fleet.config.file.memory.admission_wait_s
        for model_id, queue in list(self._queues.items()):
            w = self.fleet.workers[model_id]
            if not self._may_expire(w):
                continue
            while queue and now - queue[0].arrived >= limit:
                waiter = queue.popleft()
                if not waiter.future.done():
                    waiter.future.set_exception(self._timeout_error(w, limit))
            if not queue:
                del self._queues[model_id]

    def _may_expire(self, w: WorkerHandle) -> bool:
        """Not while its load runs (workers.load_timeout_s bounds that), nor when it is
        ready and open (its waiters go through in this same pass)."""
        if _pending(w.load_task):
            return False
        opening = w.state is State.READY and not _pending(w.unload_task)
        return not (opening and w.id not in self.closing)

    def _timeout_error(self, w: WorkerHandle, limit: float) -> ApiError:
        message = (
            f"not enough memory to load {w.id} within {limit:g}s (memory.admission_wait_s): "
            f"it needs {self.fleet.estimate(w) / GB:.2f} GiB; {self._held_by()}"
        )
        log_event("admission_timeout", model=w.id, waited_s=limit, held_by=self._holders_view())
        return ApiError(503, message, code="insufficient_memory")

    def _held_by(self) -> str:
        held = [f"{h['id']} ({', '.join(h['why'])})" for h in self._holders_view()]
        free = max(0, self.fleet.free_bytes()) / GB
        who = "held by " + ", ".join(held) if held else "no model of ours holds any"
        return f"the memory is {who}; {free:.2f} GiB free under the limit"

    def _holders_view(self) -> list[dict[str, Any]]:
        views = []
        for w in self.fleet.holding():
            why = [w.state.value]
            if w.in_flight:
                why.append(f"{w.in_flight} request{'s' if w.in_flight > 1 else ''} in flight")
            if w.model.pinned:
                why.append("pinned")
            if w.id in self.closing:
                why.append(f"making way for {self.closing[w.id]}")
            views.append({"id": w.id, "why": why})
        return views

    def _refuse_all(self, model_id: str, error: ApiError) -> None:
        for waiter in self._queues.pop(model_id, ()):
            if not waiter.future.done():
                waiter.future.set_exception(error)

    def _arm(self, now: float, plan: TurnPlan) -> None:
        """Plan again when a turn ends, a waiter's time is up, or a retry is due."""
        times = [t for t in self._retry_at.values() if t > now]
        if plan.wake_at is not None:
            times.append(plan.wake_at)
        limit = self.fleet.config.file.memory.admission_wait_s
        for model_id, queue in self._queues.items():
            if self._may_expire(self.fleet.workers[model_id]):
                times.append(queue[0].arrived + limit)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if times:
            delay = max(0.0, min(times) - now) + 0.001
            self._timer = asyncio.get_running_loop().call_later(delay, self.pump)

    # ---- what it shows --------------------------------------------------------------

    def _waited(self, model_id: str) -> float:
        queue = self._queues.get(model_id)
        return round(time.monotonic() - queue[0].arrived, 3) if queue else 0.0

    def waiting(self, model_id: str) -> dict[str, Any]:
        queue = self._queues.get(model_id)
        return {"count": len(queue) if queue else 0, "oldest_s": self._waited(model_id)}

    def view(self) -> dict[str, Any]:
        """Who waits for whom: /admin/status's `scheduler`."""
        memory = self.fleet.config.file.memory
        swaps = [{"from": m, "to": t, "stage": "closing"} for m, t in self.closing.items()]
        swaps += [{"from": m, "to": t, "stage": "unloading"} for m, t in self._evicting.items()]
        return {
            "min_resident_s": memory.min_resident_s,
            "admission_wait_s": memory.admission_wait_s,
            "waiting": [
                {**self.waiting(m), "model": m, "waits_for": list(self._plan.waits_for.get(m, ()))}
                for m in self._queues
            ],
            "swaps": swaps,
        }


def _as_api_error(model_id: str, exc: BaseException) -> ApiError:
    if isinstance(exc, ApiError):
        return exc
    return ApiError(503, f"{model_id} could not be loaded: {exc}", code="model_load_failed")
