"""The fleet: every configured model's worker, loaded on demand, admitted by memory.

One load per model at a time (single-flight: concurrent requests share one load task),
one admission at a time (so two loads never both count the same free memory), and
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
from gateway.events import log_event
from gateway.fleet.programs import remove_program_file, write_program
from gateway.fleet.states import State
from gateway.fleet.supervisor import ProcessInfo, ProcessState, Supervisor, SupervisorError
from gateway.fleet.worker_handle import WorkerHandle
from gateway.memory.admission import MemoryVerdict, admit, estimate_footprint, weights_bytes
from gateway.memory.eviction import Resident, least_recently_used
from gateway.memory.probe import GB, MemoryProbe
from workers.contract.errors import ApiError
from workers.contract.health import Health, ModelState

log = logging.getLogger("lmx.fleet")
# A load that keeps failing is retried by later requests, not by a loop here.
READY_ATTEMPTS = 3


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
        host = config.file.workers.host
        self.workers = {
            m.id: WorkerHandle(m, host, source=config.source_of(m.id)) for m in config.models
        }
        self._admission_lock = asyncio.Lock()

    # ---- loading ----------------------------------------------------------------------

    def serving(self, model_id: str) -> WorkerHandle:
        """The handle of a model of the current set (not one removed and draining)."""
        w = self.workers.get(model_id)
        if w is None or w.removed:
            raise ApiError(404, f"model {model_id!r} no longer exists", code="model_not_found")
        return w

    async def ensure_ready(self, model_id: str) -> WorkerHandle:
        w = self.serving(model_id)
        for _ in range(READY_ATTEMPTS):
            if w.state is State.READY:
                return w
            if w.unload_task is not None and not w.unload_task.done():
                await asyncio.shield(w.unload_task)
                continue
            await asyncio.shield(self.start_loading(w))
        if w.state is State.READY:
            return w
        raise ApiError(503, f"{model_id} is {w.state.value}; try again", code="model_unavailable")

    def start_loading(self, w: WorkerHandle) -> asyncio.Task[None]:
        """The single flight: every caller gets the same load task while one runs."""
        if w.load_task is None or w.load_task.done():
            w.load_task = asyncio.create_task(self._load(w), name=f"load-{w.id}")
            w.load_task.add_done_callback(_consume_exception)
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
                await self._make_room(w)
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

    def admission(self, w: WorkerHandle) -> MemoryVerdict:
        others = [x for x in self.workers.values() if x is not w and x.pid]
        for x in others:
            x.rss = self.probe.tree_rss(x.pid)
        reserved = sum(max(self.estimate(x), x.rss) for x in others)
        return admit(
            self.probe.system(),
            self.config.file.memory.max_memory_percent,
            needed=self.estimate(w),
            reserved=reserved,
            workers_rss=sum(x.rss for x in others),
        )

    async def _make_room(self, w: WorkerHandle) -> None:
        for _ in range(len(self.workers)):
            verdict = self.admission(w)
            if verdict.fits:
                return
            victim = self.lru_victim(exclude=w)
            if victim is None or not self.config.file.memory.auto_evict_lru:
                break
            log_event("evict", model=victim.id, for_model=w.id, needed=verdict.needed)
            await self.unload(victim.id, reason=f"evicted to make room for {w.id}")
        verdict = self.admission(w)
        if not verdict.fits:
            raise ApiError(503, verdict.explain(w.id), code="insufficient_memory")

    def lru_victim(self, exclude: WorkerHandle | None = None) -> WorkerHandle | None:
        ready = [x for x in self.workers.values() if x is not exclude and x.state is State.READY]
        victim = least_recently_used(
            Resident(x.id, x.last_activity(), x.busy, x.model.pinned) for x in ready
        )
        return self.workers[victim] if victim is not None else None

    # ---- unloading --------------------------------------------------------------------

    async def unload(self, model_id: str, reason: str) -> None:
        await asyncio.shield(self.start_unloading(self.workers[model_id], reason))

    def start_unloading(self, w: WorkerHandle, reason: str) -> asyncio.Task[None]:
        """One unload at a time per model; callers share it."""
        if w.unload_task is None or w.unload_task.done():
            w.unload_task = asyncio.create_task(self._unload(w, reason), name=f"unload-{w.id}")
            w.unload_task.add_done_callback(_consume_exception)
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
        return [{**w.status(), **self._facts(w)} for w in self.workers.values()]

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
