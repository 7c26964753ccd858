"""Make the fleet match a config's model set: one handle per model. A config reload and
the library watch both end here, so both follow the same rules:

- added: a new handle, unloaded until a request (or auto_load) wants it.
- removed: new requests get 404 at once; a worker still running is drained and stopped,
  then the handle is dropped (it is listed, draining, until then).
- changed, where what its worker is started with differs (port, context, keys, ...):
  a loaded or loading worker is drained and started again with the new settings; one
  that is not running takes them at its next load.
- changed otherwise (pinned, ttl_s, max_rss_gb, memory_gb): taken at once.

Everything here runs without an await, so no request sees half of a reconciliation.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from typing import Any

from gateway.config.loader import Config
from gateway.config.schema import ModelConfig
from gateway.events import log_event
from gateway.fleet.fleet import Fleet
from gateway.fleet.states import State
from gateway.fleet.worker_handle import WorkerHandle

# States in which a worker process exists with the settings it was started with.
RUNNING = frozenset({State.LOADING, State.READY, State.DRAINING, State.STOPPING})


@dataclass(frozen=True)
class FleetChanges:
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    restarted: tuple[str, ...] = ()  # drained and started again with new settings
    updated: tuple[str, ...] = ()  # new settings taken without a restart

    def as_json(self) -> dict[str, list[str]]:
        return {k: list(v) for k, v in dataclasses.asdict(self).items()}

    def __bool__(self) -> bool:
        return any(dataclasses.astuple(self))


def reconcile(fleet: Fleet, config: Config) -> FleetChanges:
    fleet.config = config
    changed: dict[str, list[str]] = {"added": [], "restarted": [], "updated": []}
    workers: dict[str, WorkerHandle] = {}
    for model in config.models:
        w = fleet.workers.get(model.id)
        if w is None:
            w = fleet.new_handle(model, config.source_of(model.id))
            changed["added"].append(model.id)
        elif (change := _update(fleet, w, model)) is not None:
            changed[change].append(model.id)
        w.source = config.source_of(model.id)
        workers[model.id] = w
    gone: list[WorkerHandle] = []
    for model_id, w in fleet.workers.items():
        if model_id in workers:
            continue
        if w.removed:  # by an earlier reconciliation, and still stopping
            workers[model_id] = w
            continue
        gone.append(w)
        log_event("model_removed", model=w.id, source=w.source, state=w.state.value)
        if _remove(fleet, w):
            workers[model_id] = w  # listed (draining, stopping) until it has stopped
    fleet.workers = workers
    removed = tuple(w.id for w in gone)
    changes = FleetChanges(removed=removed, **{k: tuple(v) for k, v in changed.items()})
    _log(config, changes)
    fleet.scheduler.pump()  # new memory settings, models gone that requests wait for
    return changes


def _update(fleet: Fleet, w: WorkerHandle, model: ModelConfig) -> str | None:
    """Give a kept model its new settings: "updated", "restarted", or None (no change).
    The settings compared are the worker's whole settings file, so a changed API key or
    body limit restarts loaded workers too: their own ports must refuse an old key."""
    w.removed = False
    model_changed = (w.pending or w.model) != model
    settings = fleet.config.settings_for(model)
    if w.state not in RUNNING or w.settings == settings:
        w.model, w.pending = model, None  # no process runs with other settings
        return "updated" if model_changed else None
    w.pending = model  # the next load takes it
    if w.state in (State.LOADING, State.READY):
        _restart(fleet, w)
        return "restarted"
    return "updated" if model_changed else None  # already on its way out


def _restart(fleet: Fleet, w: WorkerHandle) -> None:
    async def drain_then_load() -> None:
        # Again while a reload brought newer settings during the load (this task is
        # shared, so that reload did not start another).
        while True:
            await fleet.start_unloading(w, reason="its settings changed")
            if w.removed or fleet.workers.get(w.id) is not w:
                return
            await fleet.start_loading(w)
            if w.pending is None:
                return

    if w.restart_task is None or w.restart_task.done():
        w.restart_task = asyncio.create_task(drain_then_load(), name=f"restart-{w.id}")
        w.restart_task.add_done_callback(_consume_exception)


def _remove(fleet: Fleet, w: WorkerHandle) -> bool:
    """Stop a removed model's worker, then drop its handle. True while that takes time."""
    w.removed = True
    busy = any(t is not None and not t.done() for t in (w.load_task, w.unload_task))
    if w.state is State.UNLOADED and not busy:
        return False

    def drop(_: Any) -> None:
        if w.removed and fleet.workers.get(w.id) is w:
            fleet.workers = {k: v for k, v in fleet.workers.items() if v is not w}

    fleet.start_unloading(w, reason="removed from the model set").add_done_callback(drop)
    return True


def _log(config: Config, changes: FleetChanges) -> None:
    for model_id in changes.added:
        m = config.model(model_id)
        log_event("model_added", model=model_id, source=config.source_of(model_id),
                  path=m.path, backend=m.backend, port=m.port)  # fmt: skip
    for model_id in changes.restarted:
        log_event("model_restarting", model=model_id, reason="its settings changed")


def _consume_exception(task: asyncio.Task[None]) -> None:
    # A failed reload of the worker is logged by the fleet (load_failed); the next
    # request tries again.
    if not task.cancelled():
        task.exception()
