"""The running config, kept current. POST /admin/config/reload, SIGHUP and a watch of the
config file re-read it; a watch of models_dir looks for models again. Both end the same
way: a new Config built whole (a mistake refuses it whole and the running one stays),
then Gateway.apply swaps it in and reconciles the fleet (gateway.fleet.reconcile). One
change at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gateway.config.changes import keep_running, sections_changed
from gateway.config.loader import Config, ConfigError, build_config, models_dir_of, read_config_file
from gateway.config.schema import ConfigFile
from gateway.events import log_event
from gateway.fleet.reconcile import RUNNING, FleetChanges
from gateway.library.scan import Found, Skipped, scan_models
from gateway.library.watch import follow, in_library, is_file

if TYPE_CHECKING:
    from gateway.service import Gateway

log = logging.getLogger("lmx.live")

# A new file changed this recently may still be being copied in: look again after this.
SETTLE_S = 2.0


@dataclass(frozen=True)
class ReloadReport:
    models: FleetChanges
    sections_changed: list[str]
    needs_restart: list[str]  # keys whose new value waits for a gateway restart

    def as_json(self) -> dict[str, Any]:
        return {
            "models": self.models.as_json(),
            "sections_changed": self.sections_changed,
            "needs_restart": self.needs_restart,
        }


class LiveConfig:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self._lock = asyncio.Lock()
        self._watches: list[asyncio.Task[None]] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._settle: asyncio.TimerHandle | None = None
        self._applied_text = _read_text(gateway.config.source)
        self._skipped: tuple[Skipped, ...] = ()

    # ---- the two ways in ------------------------------------------------------------

    async def reload(self, trigger: str) -> ReloadReport:
        """Re-read the config file (and models_dir). Raises ConfigError, having logged it."""
        async with self._lock:
            running = self.gateway.config
            text = _read_text(running.source)
            try:
                file = await asyncio.to_thread(read_config_file, running.source)
                kept, needs_restart = keep_running(running.file, file)
                config = await self._build(kept, strict=True)
            except ConfigError as exc:
                log_event("config_refused", trigger=trigger, key=exc.key, error=str(exc))
                raise
            self._applied_text = text
            report = ReloadReport(
                self._apply(config), sections_changed(running.file, kept), needs_restart
            )
            log_event("config_reloaded", trigger=trigger, **report.as_json())
            return report

    async def rescan(self, trigger: str, settle: bool = True) -> FleetChanges:
        """Look for models again under the running config. `settle=False` takes new files
        at once: for a caller that knows they are complete (a finished download)."""
        async with self._lock:
            try:
                config = await self._build(self.gateway.config.file, strict=False, settle=settle)
            except ConfigError as exc:  # e.g. an entry's file became a link out of models_dir
                log_event("library_refused", trigger=trigger, error=str(exc))
                return FleetChanges()
            changes = self._apply(config)
            if changes:
                log_event("library_changed", trigger=trigger, **changes.as_json())
            return changes

    # ---- building and applying ------------------------------------------------------

    async def _build(self, file: ConfigFile, strict: bool, settle: bool = True) -> Config:
        source = self.gateway.config.source
        scan = await asyncio.to_thread(scan_models, models_dir_of(file, source))
        workers = self.gateway.fleet.workers.values()
        previous = {w.id: (w.pending or w.model).port for w in workers}
        held = {w.model.port for w in workers if w.state in RUNNING}
        found = self._settled(scan.found) if settle else list(scan.found)
        config = await asyncio.to_thread(build_config, file, source, found, previous, held, strict)
        self._report_skipped([*scan.skipped, *config.model_set.skipped])
        return config

    def _settled(self, found: Sequence[Found]) -> list[Found]:
        """Leave out new files still changing (a copy in progress); look again later."""
        running = self.gateway.config
        known = {m.path for m in running.models if running.source_of(m.id) == "library"}
        now = time.time()
        fresh = [f for f in found if f.path not in known and now - f.changed_at < SETTLE_S]
        if fresh and self._settle is None:
            loop = asyncio.get_running_loop()
            self._settle = loop.call_later(SETTLE_S, self._settled_rescan)
        return [f for f in found if f not in fresh]

    def _settled_rescan(self) -> None:
        self._settle = None
        self._spawn(self.rescan("settled"))

    def _apply(self, config: Config) -> FleetChanges:
        running = self.gateway.config
        changes = self.gateway.apply(config)
        for model_id in config.file.auto_load:
            if model_id not in running.file.auto_load and config.has_model(model_id):
                self.gateway.fleet.start_loading(self.gateway.fleet.workers[model_id])
        if _watched(running) != _watched(config):
            # Not from inside this call: it may be running in the watch it would cancel.
            asyncio.get_running_loop().call_soon(self._restart_watches)
        return changes

    def _report_skipped(self, skipped: list[Skipped]) -> None:
        """Once per change of the list, not once per scan."""
        if tuple(skipped) != self._skipped:
            self._skipped = tuple(skipped)
            for s in skipped:
                log_event("library_skipped", path=s.path, reason=s.reason)

    # ---- watches and SIGHUP ---------------------------------------------------------

    def start(self) -> None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self._on_sighup)
        self._restart_watches()
        self._spawn(self.rescan("start"))  # logs what start-up's scan left out, and why

    async def stop(self) -> None:
        asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        if self._settle is not None:
            self._settle.cancel()
        tasks = [*self._watches, *self._tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _on_sighup(self) -> None:
        self._spawn(self._reload_quietly("SIGHUP"))

    async def _reload_quietly(self, trigger: str) -> None:
        with contextlib.suppress(ConfigError):  # logged as config_refused; the running
            await self.reload(trigger)  # config stays

    async def _config_file_changed(self) -> None:
        if _read_text(self.gateway.config.source) != self._applied_text:
            await self._reload_quietly("config file changed")

    def _restart_watches(self) -> None:
        for task in self._watches:
            task.cancel()
        self._watches = []
        config = self.gateway.config
        if config.file.gateway.watch_config:
            source = config.source
            self._watches.append(
                follow(source.parent, is_file(source), self._config_file_changed, False)
            )
        if config.file.workers.watch_models_dir:
            models_dir = _ensure_folder(config.models_dir)
            if models_dir is not None:
                rescan = self._rescan_for_watch
                self._watches.append(follow(models_dir, in_library(models_dir), rescan))

    async def _rescan_for_watch(self) -> None:
        await self.rescan("models_dir changed")

    def _spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _watched(config: Config) -> tuple[object, ...]:
    g, w = config.file.gateway, config.file.workers
    return (config.models_dir, g.watch_config, w.watch_models_dir)


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _ensure_folder(folder: Path) -> Path | None:
    """models_dir, created if missing (pulls land there); None if it cannot be."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        log_event("watch_failed", path=str(folder), error=str(exc))
        return None
    return folder
