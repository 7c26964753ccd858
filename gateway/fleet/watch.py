"""Keep the fleet's states true to supervisord and to each worker's /health, once a tick.

What an operator does with supervisorctl shows up here within a tick: a stopped worker
becomes unloaded, a started one is adopted (waited on until ready), a restarted one is
re-adopted. Here too: hung workers are restarted, idle ones unloaded after their TTL.
"""

from __future__ import annotations

import asyncio
import logging
import time

from gateway.events import log_event
from gateway.fleet.fleet import Fleet
from gateway.fleet.states import State
from gateway.fleet.supervisor import ProcessInfo, ProcessState, SupervisorError
from gateway.fleet.worker_handle import WorkerHandle

log = logging.getLogger("lmx.watch")


class FleetWatch:
    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="fleet-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
            except SupervisorError as exc:
                log.warning("cannot reach supervisord: %s", exc)
            except Exception:
                log.exception("fleet watch tick failed")
            await asyncio.sleep(self.fleet.config.file.workers.health_interval_s)

    async def tick(self) -> None:
        infos = await self.fleet.supervisor.all_info()
        idle = [w for w in self.fleet.workers.values() if not _transitioning(w)]
        await asyncio.gather(*(self._sync(w, infos.get(w.program)) for w in idle))
        # Memory other programs (or memwatch) freed is seen here: requests may go on.
        self.fleet.scheduler.pump()

    async def _sync(self, w: WorkerHandle, info: ProcessInfo | None) -> None:
        if info is not None and info.state is ProcessState.STOPPING:
            return  # an operator's stop in progress: judge it once it has settled
        alive = info is not None and info.running
        if w.state is State.READY and not alive:
            self.fleet.mark_lost(w, info)
        elif w.state is State.READY and info is not None and info.pid != w.pid:
            log_event("adopt", model=w.id, pid=info.pid, reason="restarted outside the gateway")
            self.fleet.start_loading(w)
        elif w.state in (State.UNLOADED, State.FAILED) and alive:
            log_event("adopt", model=w.id, reason="started outside the gateway")
            self.fleet.start_loading(w)
        elif w.state is State.READY:
            await self._check(w)

    async def _check(self, w: WorkerHandle) -> None:
        health = await self.fleet.check_health(w)
        now = time.time()
        if health is None:
            w.unhealthy_since = w.unhealthy_since or now
            if now - w.unhealthy_since > self.fleet.config.file.workers.health_timeout_s:
                await self._restart_hung(w, now - w.unhealthy_since)
            return
        w.unhealthy_since = None
        w.rss = self.fleet.probe.tree_rss(w.pid)
        ttl = self.idle_ttl(w)
        if ttl > 0 and not w.busy and now - w.last_activity() > ttl:
            self.fleet.start_unloading(w, reason=f"idle for {ttl:g}s (ttl_s)")

    def idle_ttl(self, w: WorkerHandle) -> float:
        """Seconds idle before an unload; 0: never."""
        if w.model.pinned:
            return 0.0
        if w.keep_alive_s is not None:
            return w.keep_alive_s
        if w.model.ttl_s is not None:
            return w.model.ttl_s
        return self.fleet.config.file.workers.ttl_s

    async def _restart_hung(self, w: WorkerHandle, silent_for: float) -> None:
        log_event("restart_hung", model=w.id, pid=w.pid, silent_s=round(silent_for, 1))
        w.last_error = f"worker did not answer /health for {silent_for:.0f}s; restarted"
        w.machine.move(State.FAILED)
        await self.fleet.supervisor.stop(w.program)
        w.forget_process()
        self.fleet.start_loading(w)


def _transitioning(w: WorkerHandle) -> bool:
    return any(t is not None and not t.done() for t in (w.load_task, w.unload_task))
