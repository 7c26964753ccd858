"""The fleet: every configured model's worker, loaded on demand, admitted by memory.

A request for a model that is ready and open goes straight on; any other waits in the
scheduler's queue (gateway.fleet.scheduler), which decides when to load, and which models
make way. One load per model at a time (single-flight: concurrent requests share one load
task), one admission at a time (so two loads never both count the same free memory), and
unloads that drain in-flight requests before supervisord stops the process.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Any

import httpx

from gateway.config.loader import Config
from gateway.config.schema import ModelConfig
from gateway.events import log_event
from gateway.fleet.programs import remove_program_file, write_program
from gateway.fleet.scheduler import Scheduler
from gateway.fleet.states import State
from gateway.fleet.supervisor import ProcessInfo, ProcessState, Supervisor, SupervisorError
from gateway.fleet.worker_handle import WorkerHandle
from gateway.memory.admission import (
    MemoryVerdict,
    admit,
    estimate_footprint,
    memory_limit,
    never_fits,
    weights_bytes,
)
from gateway.memory.probe import GB, MemoryProbe
from workers.contract.errors import ApiError
from workers.contract.health import Health, ModelState

log = logging.getLogger("lmx.fleet")
# States in which a worker holds (or is about to hold) its memory.
HOLDING = frozenset({State.LOADING, State.READY, State.DRAINING, State.STOPPING})


def _consume_exception(task: asyncio.Task[None]) -> None:
    # Failures reach every waiter through the task; a load nobody awaited (an adoption,
    # an auto_load) is already logged by _fail, so asyncio need not warn about it again.
    if not task.cancelled():
        task.exception()


class Fleet:
    def __init__(
        self,
        config: Config,
        supervisor: Supervisor,
        http: httpx.AsyncClient,
        probe: MemoryProbe,
    ) -> None:
        self.config = config
        self.supervisor = supervisor
        self.http = http
        self.probe = probe
        self.scheduler = Scheduler(self)
        self.workers = {m.id: self.new_handle(m, config.source_of(m.id)) for m in config.models}
        self._admission_lock = asyncio.Lock()

    def new_handle(self, model: ModelConfig, source: str) -> WorkerHandle:
        w = WorkerHandle(model, self.config.file.workers.host, source=source)
        w.on_idle = self.scheduler.pump  # a model's last request ended: it may make way now
        return w

    # ---- requests ---------------------------------------------------------------------

    def serving(self, model_id: str) -> WorkerHandle:
        """The handle of a model of the current set (not one removed and draining)."""
        w = self.workers.get(model_id)
        if w is None or w.removed:
            raise ApiError(404, f"model {model_id!r} no longer exists", code="model_not_found")
        return w

    def admits_now(self, w: WorkerHandle) -> bool:
        """A request for `w` would go straight on (no load, no wait for memory)."""
        return self.scheduler.admits(w)

    async def acquire(self, model_id: str) -> WorkerHandle:
        """The model's worker, ready, with this request counted in flight (the caller
        calls end_request). Waits its turn when the model is not ready or a swap is due;
        a model that could never fit is refused at once."""
        w = self.serving(model_id)
        if self.scheduler.admits(w):
            w.begin_request()
            return w
        self._refuse_if_never_fits(w)
        return await self.scheduler.wait_turn(w)

    async def ensure_ready(self, model_id: str) -> WorkerHandle:
        """Loaded and ready (an admin load, a benchmark's warm-up), in the same queue."""
        w = await self.acquire(model_id)
        w.end_request()
        return w

    def _refuse_if_never_fits(self, w: WorkerHandle) -> None:
        needed = self.estimate(w)
        system = self.probe.system()
        percent = self.config.file.memory.max_memory_percent
        if never_fits(needed, system, percent):
            log_event("refused_too_large", model=w.id, needed=needed, total=system.total)
            limit = memory_limit(system.total, percent)
            message = (
                f"not enough memory to load {w.id}, ever: it needs {needed / GB:.2f} GiB, more "
                f"than the {limit / GB:.2f} GiB available under the limit "
                f"(memory.max_memory_percent of {system.total / GB:.2f} GiB) with nothing loaded"
            )
            raise ApiError(503, message, code="insufficient_memory")

    # ---- loading ----------------------------------------------------------------------

    def start_loading(self, w: WorkerHandle) -> asyncio.Task[None]:
        """The single flight: every caller gets the same load task while one runs."""
        if w.load_task is None or w.load_task.done():
            task = asyncio.create_task(self._load(w), name=f"load-{w.id}")
            task.add_done_callback(_consume_exception)
            task.add_done_callback(lambda t: self.scheduler.load_finished(w, t))
            w.load_task = task
        return w.load_task

    async def _load(self, w: WorkerHandle) -> None:
        started = time.monotonic()
        self.serving(w.id)
        if not w.machine.move(State.LOADING):
            raise ApiError(503, f"{w.id} is {w.state.value}; try again", code="model_unavailable")
        if w.pending is not None:  # settings a reload brought while it was not running
            w.model, w.pending = w.pending, None
        settings = w.settings = self.config.settings_for(w.model)
        w.last_error = None
        log_event("load_start", model=w.id)
        try:
            async with self._admission_lock:
                self._admit(w)
                write_program(self.config, settings)
                await self.supervisor.add_program(w.program)
                await self.supervisor.start(w.program)
            await self._wait_ready(w, started + self.config.file.workers.load_timeout_s)
        except ApiError as exc:
            await self._fail(w, exc.message, loaded=exc.code != "insufficient_memory")
            raise
        except (SupervisorError, OSError) as exc:
            await self._fail(w, str(exc))
            message = f"{w.id} could not be started: {exc}"
            raise ApiError(503, message, code="model_load_failed") from None
        w.load_seconds = round(time.monotonic() - started, 3)
        w.ready_since = time.time()
        w.ready_at = time.monotonic()
        w.machine.move(State.READY)
        self._learn(w)
        log_event("ready", model=w.id, pid=w.pid, load_seconds=w.load_seconds, rss=w.rss)

    async def _wait_ready(self, w: WorkerHandle, deadline: float) -> None:
        while True:
            info = await self.supervisor.info(w.program)
            if info is None or not info.running:
                raise ApiError(503, await self._load_failure(w), code="model_load_failed")
            w.pid = info.pid
            health = await self.check_health(w)
            if health is not None and health.status is ModelState.READY:
                return
            if health is not None and health.status is ModelState.FAILED:
                reason = health.error or "unknown error"
                raise ApiError(503, f"{w.id} failed to load: {reason}", code="model_load_failed")
            if time.monotonic() > deadline:
                limit = self.config.file.workers.load_timeout_s
                raise ApiError(
                    503,
                    f"{w.id} was not ready within {limit:g}s (workers.load_timeout_s)",
                    code="model_load_timeout",
                )
            await asyncio.sleep(0.1)

    async def _load_failure(self, w: WorkerHandle) -> str:
        tail = await self.supervisor.tail_log(w.program)
        lines = [line for line in tail.splitlines() if line.strip()][-3:]
        detail = " | ".join(lines) if lines else "the worker exited without a message"
        return f"{w.id} failed to load: {detail}"

    async def _fail(self, w: WorkerHandle, message: str, loaded: bool = True) -> None:
        """Record why a load failed; a model refused for memory never started, so stays unloaded."""
        w.last_error = message
        w.machine.move(State.FAILED if loaded else State.UNLOADED)
        log_event("load_failed", model=w.id, error=message)
        try:
            await self.supervisor.stop(w.program)
        except SupervisorError as exc:
            log.warning("%s: could not stop after a failed load: %s", w.id, exc)
        w.forget_process()

    async def check_health(self, w: WorkerHandle) -> Health | None:
        try:
            response = await self.http.get(f"{w.base_url}/health", timeout=2.0)
            w.health = Health.from_json(response.json())
        except (httpx.HTTPError, ValueError):
            return None
        return w.health

    async def confirm_lost(self, w: WorkerHandle) -> bool:
        """Ask supervisord whether a worker that failed to answer is still there."""
        info = await self.supervisor.info(w.program)
        if info is not None and info.running and info.pid == w.pid:
            return False
        if w.state is State.READY:
            self.mark_lost(w, info)
        return True

    def mark_lost(self, w: WorkerHandle, info: ProcessInfo | None) -> None:
        """The process of a ready worker is gone: stopped by an operator, or crashed."""
        if info is None or info.state is ProcessState.STOPPED:
            w.machine.move(State.UNLOADED)
            log_event("unloaded", model=w.id, reason="stopped outside the gateway")
        else:
            w.last_error = f"worker exited ({info.state}, exit status {info.exit_status})"
            w.machine.move(State.FAILED)
            log_event("crashed", model=w.id, state=info.state, exit_status=info.exit_status)
        w.forget_process()
        self.scheduler.pump()  # its memory is free

    def _learn(self, w: WorkerHandle) -> None:
        w.rss = self.probe.tree_rss(w.pid)
        if w.rss:
            w.learned_bytes = w.rss

    # ---- memory -----------------------------------------------------------------------

    def estimate(self, w: WorkerHandle) -> int:
        """The model (configured, learned from its RSS after a load, or estimated) plus
        its prompt cache's cap, which fills as it serves."""
        settings = self.config.settings_for(w.model)
        return self._model_bytes(w) + settings.prompt_cache_bytes

    def _model_bytes(self, w: WorkerHandle) -> int:
        if w.model.memory_gb is not None:
            return int(w.model.memory_gb * GB)
        if w.learned_bytes is not None:
            return w.learned_bytes
        settings = self.config.settings_for(w.model)
        return estimate_footprint(
            settings.path,
            settings.context_length,
            self.config.file.memory.runtime_overhead_gb,
            # Each concurrent request gets its own KV cache (llama.cpp contexts, MLX batch rows).
            sequences=settings.max_concurrent,
        )

    def reservation(self, w: WorkerHandle) -> int:
        """What a worker that holds memory keeps from others: its estimate, or its RSS
        once that is larger."""
        return max(self.estimate(w), w.rss)

    def holding(self) -> list[WorkerHandle]:
        """Workers that hold memory, or will once the load just asked for runs."""
        return [
            w
            for w in self.workers.values()
            if w.state in HOLDING or (w.load_task is not None and not w.load_task.done())
        ]

    def admission(self, w: WorkerHandle | None) -> MemoryVerdict:
        """Would `w` fit next to every worker that holds memory now (None: what is free)."""
        others = [x for x in self.holding() if x is not w]
        for x in others:
            if x.pid:
                x.rss = self.probe.tree_rss(x.pid)
        return admit(
            self.probe.system(),
            self.config.file.memory.max_memory_percent,
            needed=self.estimate(w) if w is not None else 0,
            reserved=sum(self.reservation(x) for x in others),
            workers_rss=sum(x.rss for x in others),
        )

    def free_bytes(self) -> int:
        """Memory under the limit that no worker of ours holds or has reserved."""
        return self.admission(None).available

    def _admit(self, w: WorkerHandle) -> None:
        """The last check before a load starts. The scheduler made room already (this is
        where loads it did not start, auto_load and adoptions, are refused when short)."""
        verdict = self.admission(w)
        if not verdict.fits:
            raise ApiError(503, verdict.explain(w.id), code="insufficient_memory")

    # ---- unloading --------------------------------------------------------------------

    async def unload(self, model_id: str, reason: str) -> None:
        await asyncio.shield(self.start_unloading(self.workers[model_id], reason))

    def start_unloading(self, w: WorkerHandle, reason: str) -> asyncio.Task[None]:
        """One unload at a time per model; callers share it."""
        if w.unload_task is None or w.unload_task.done():
            task = asyncio.create_task(self._unload(w, reason), name=f"unload-{w.id}")
            task.add_done_callback(_consume_exception)
            task.add_done_callback(lambda _: self.scheduler.unload_finished(w))
            w.unload_task = task
        return w.unload_task

    async def _unload(self, w: WorkerHandle, reason: str) -> None:
        if w.load_task is not None and not w.load_task.done():
            await asyncio.gather(w.load_task, return_exceptions=True)
        if w.machine.move(State.DRAINING, expect=State.READY):
            timeout = self.config.file.workers.stop_timeout_s
            try:
                await asyncio.wait_for(w.idle.wait(), timeout)
            except TimeoutError:
                log_event("drain_timeout", model=w.id, in_flight=w.in_flight)
        w.machine.move(State.STOPPING, expect=frozenset({State.DRAINING, State.LOADING}))
        try:
            await self.supervisor.stop(w.program)
            await self.supervisor.remove_program(w.program)
        finally:
            remove_program_file(self.config, w.id)
            w.forget_process()
            w.machine.move(State.UNLOADED)
        log_event("unloaded", model=w.id, reason=reason)

    # ---- status -----------------------------------------------------------------------

    def status(self) -> list[dict[str, Any]]:
        return [{**w.status(), **self._facts(w), **self._turn(w)} for w in self.workers.values()]

    def _turn(self, w: WorkerHandle) -> dict[str, Any]:
        """Requests waiting for this model, and the model it is making way for (if any)."""
        return {
            "waiting": self.scheduler.waiting(w.id),
            "making_way_for": self.scheduler.closing.get(w.id),
        }

    def _facts(self, w: WorkerHandle) -> dict[str, Any]:
        """What the config and the disk say of a model (what `lmx ls` shows)."""
        settings = self.config.settings_for(w.model)
        aliases = self.config.file.routing.aliases
        return {
            "estimate_bytes": self.estimate(w),
            "source": w.source,
            "path": os.path.normpath(w.model.path),
            "size_bytes": weights_bytes(settings.path),
            "context_length": settings.context_length,
            "aliases": [name for name, chain in aliases.items() if w.id in chain],
        }
