"""memwatch: a supervisord event listener that keeps workers inside their memory.

On every TICK_5 it measures each running worker's whole process tree, restarts a worker
above its `max_rss_gb`, and when the machine is past `memory.max_memory_percent` stops
the least-recently-used idle, unpinned worker (the same rule the gateway evicts by). It
acts only through supervisord, so the gateway and `supervisorctl status` see exactly
what it did. Every measurement and every action is one JSON line on stderr
(run/logs/memwatch.log); stdout is supervisord's event protocol.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import httpx
from supervisor import childutils

from gateway import events
from gateway.config.loader import Config, ConfigError, load_config
from gateway.config.schema import ModelConfig
from gateway.events import emit
from gateway.fleet.programs import model_id_of, settings_path
from gateway.fleet.supervisor import ProcessInfo
from gateway.memory.admission import memory_limit
from gateway.memory.eviction import Resident, least_recently_used
from gateway.memory.probe import GB, MemoryProbe, PsutilProbe
from workers.contract.health import Health
from workers.contract.parent_watch import exit_with_parent
from workers.contract.settings import WorkerSettings


class Rpc(Protocol):
    """The slice of supervisord's XML-RPC interface memwatch uses."""

    def getAllProcessInfo(self) -> list[dict[str, Any]]: ...
    def stopProcess(self, name: str, wait: bool) -> bool: ...
    def startProcess(self, name: str, wait: bool) -> bool: ...


HealthFn = Callable[[int], Health | None]


def http_health(host: str) -> HealthFn:
    def health(port: int) -> Health | None:
        try:
            return Health.from_json(httpx.get(f"http://{host}:{port}/health", timeout=2.0).json())
        except (httpx.HTTPError, ValueError):
            return None

    return health


class MemWatch:
    def __init__(
        self,
        config: Config,
        rpc: Rpc,
        probe: MemoryProbe,
        health: HealthFn,
        log: Callable[[dict[str, Any]], None] = emit,
    ) -> None:
        self.config = config
        self.rpc = rpc
        self.probe = probe
        self.health = health
        self.log = log

    def running_workers(self) -> dict[str, ProcessInfo]:
        """Every running worker program, library models (which the config may not list
        yet) included."""
        running = {}
        for info in map(ProcessInfo.from_rpc, self.rpc.getAllProcessInfo()):
            model_id = model_id_of(info.name)
            if model_id and info.running:
                running[model_id] = info
        return running

    def _model(self, model_id: str) -> ModelConfig | None:
        return self.config.model(model_id) if self.config.has_model(model_id) else None

    def _port(self, model_id: str) -> int | None:
        """The worker's port from the settings file the gateway started it with: a
        library model's port is the gateway's choice, not written in the config."""
        try:
            text = settings_path(self.config, model_id).read_text()
            return WorkerSettings.from_json(text).port
        except (OSError, ValueError, KeyError, TypeError):
            model = self._model(model_id)
            return model.port if model is not None else None

    def tick(self) -> list[dict[str, Any]]:
        actions: list[dict[str, Any]] = []
        workers = self.running_workers()
        for model_id, info in workers.items():
            rss = self.probe.tree_rss(info.pid)
            self.log({"event": "rss", "model": model_id, "pid": info.pid, "rss_bytes": rss})
            model = self._model(model_id)
            cap = model.max_rss_gb if model is not None else None
            if cap is not None and rss > cap * GB:
                actions.append(self._restart(model_id, info.name, rss, cap))
        pressure = self._pressure()
        if pressure is not None:
            victim = least_recently_used(self._residents(workers))
            if victim is not None:
                actions.append(self._stop(victim, workers[victim].name, pressure))
        return actions

    def _restart(self, model_id: str, program: str, rss: int, cap: float) -> dict[str, Any]:
        self.rpc.stopProcess(program, True)
        self.rpc.startProcess(program, False)
        action = {"event": "restart_over_rss", "model": model_id, "rss_bytes": rss,
                  "max_rss_gb": cap}  # fmt: skip
        self.log(action)
        return action

    def _pressure(self) -> dict[str, Any] | None:
        system = self.probe.system()
        percent = self.config.file.memory.max_memory_percent
        limit = memory_limit(system.total, percent)
        if system.used <= limit:
            return None
        return {"used_bytes": system.used, "limit_bytes": limit, "threshold_percent": percent}

    def _residents(self, workers: dict[str, ProcessInfo]) -> list[Resident]:
        """Workers whose /health answers; one that does not is left to the gateway."""
        residents = []
        for model_id in workers:
            port = self._port(model_id)
            health = self.health(port) if port is not None else None
            if health is not None:
                model = self._model(model_id)
                pinned = model.pinned if model is not None else False
                residents.append(Resident(model_id, health.last_activity, health.busy, pinned))
        return residents

    def _stop(self, model_id: str, program: str, pressure: dict[str, Any]) -> dict[str, Any]:
        self.rpc.stopProcess(program, True)
        action = {"event": "stop_lru_over_threshold", "model": model_id, **pressure}
        self.log(action)
        return action


class FollowedConfig:
    """The config file as it is now: re-read when it changes (its limits apply at once,
    as in the gateway); one with a mistake is refused and the last good one stays."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._stamp = _stamp(config.source)

    def current(self) -> Config:
        stamp = _stamp(self.config.source)
        if stamp != self._stamp:
            self._stamp = stamp
            try:
                self.config = load_config(self.config.source)
            except ConfigError as exc:
                emit({"event": "config_refused", "key": exc.key, "error": str(exc)})
        return self.config


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


def main() -> None:
    exit_with_parent()
    # stdout carries supervisord's event protocol; the events go to stderr, bare, and
    # nothing else does (httpx would log every /health call).
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    events.log.addHandler(handler)
    events.log.setLevel(logging.INFO)
    config = load_config()
    watch = MemWatch(
        config,
        childutils.getRPCInterface(dict(os.environ)).supervisor,
        PsutilProbe.presenting(config.file.memory.total_gb),
        http_health(config.file.workers.host),
    )
    followed = FollowedConfig(config)
    while True:
        _headers, _payload = childutils.listener.wait(sys.stdin, sys.stdout)
        try:
            watch.config = followed.current()
            watch.tick()
        except Exception as exc:  # a bad tick must not kill the listener
            emit({"event": "tick_failed", "error": repr(exc)})
        childutils.listener.ok(sys.stdout)
