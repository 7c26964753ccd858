"""The gateway's parts, built once from the config and shared by every route."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

import httpx

from gateway import events
from gateway.config.loader import Config
from gateway.fleet.fleet import Fleet
from gateway.fleet.reconcile import FleetChanges, reconcile
from gateway.fleet.supervisor import Supervisor, SupervisorClient
from gateway.fleet.watch import FleetWatch
from gateway.library.pulls import Pulls
from gateway.live import LiveConfig
from gateway.memory.probe import MemoryProbe, PsutilProbe
from gateway.operations import Operations
from gateway.peers import Peers
from gateway.proxy.forward import Proxy
from gateway.proxy.upstream import Timeouts, UpstreamClient
from gateway.routing import Router

log = logging.getLogger("lmx.gateway")


def upstream_client(config: Config) -> UpstreamClient:
    """The proxy's client: the hot path, see gateway.proxy.upstream for why it is not httpx."""
    g = config.file.gateway
    return UpstreamClient(Timeouts(connect_s=g.connect_timeout_s, read_s=g.read_timeout_s))


def control_client(config: Config) -> httpx.AsyncClient:
    """For the fleet's few calls to workers (health); its timeouts are set per call."""
    g = config.file.gateway
    timeout = httpx.Timeout(connect=g.connect_timeout_s, read=g.read_timeout_s, write=60, pool=60)
    return httpx.AsyncClient(timeout=timeout, trust_env=False)


def socket_path(config: Config) -> Path:
    return config.run_dir / "supervisor.sock"


class Gateway:
    def __init__(
        self,
        config: Config,
        supervisor: Supervisor | None = None,
        probe: MemoryProbe | None = None,
    ) -> None:
        self.config = config
        self.router = Router(config)
        self.supervisor = supervisor or SupervisorClient(socket_path(config))
        self._own_probe = probe is None
        self.probe = probe or PsutilProbe.presenting(config.file.memory.total_gb)
        self.http = control_client(config)
        self.fleet = Fleet(config, self.supervisor, self.http, self.probe)
        self.peers = Peers(config)
        self.proxy = Proxy(self.fleet, upstream_client(config), self.peers)
        self.watch = FleetWatch(self.fleet)
        self.pulls = Pulls()
        self.operations = Operations(config)
        self.live = LiveConfig(self)
        self.pulls.model_id_for = self._pulled_model_id
        # Called with each config applied after start-up (app.py's browser guard, the
        # peers, the history).
        self.on_config: list[Callable[[Config], None]] = [
            self.peers.apply,
            self.operations.use_config,
        ]

    def apply(self, config: Config) -> FleetChanges:
        """Swap in a new config: routing, keys and limits apply to the next request; the
        fleet is reconciled with its model set. No await: no request sees half of it."""
        running, self.config = self.config, config
        self.router = Router(config)
        total_gb = config.file.memory.total_gb
        if self._own_probe and total_gb != running.file.memory.total_gb:
            self.probe = self.fleet.probe = PsutilProbe.presenting(total_gb)
        changes = reconcile(self.fleet, config)
        for hook in self.on_config:
            hook(config)
        return changes

    async def _pulled_model_id(self, path: Path) -> str | None:
        """The id a finished pull is served as: the library looks at once, not after the
        watch's settling time (the download is known to be whole)."""
        await self.live.rescan("pull", settle=False)
        target = path.resolve()
        return next((m.id for m in self.config.models if self.config.model_path(m) == target), None)

    async def startup(self) -> None:
        events.listeners.append(self.operations.metrics.fleet_event)
        self.watch.start()
        self.live.start()
        self.peers.start()
        for model_id in self.config.file.auto_load:
            self.fleet.start_loading(self.fleet.workers[model_id])

    async def shutdown(self) -> None:
        # Workers are supervisord's children, not ours: a gateway restart adopts them.
        await self.live.stop()
        await self.watch.stop()
        await self.peers.stop()
        self.pulls.stop()
        loads = [w.load_task for w in self.fleet.workers.values() if w.load_task]
        for task in loads:
            task.cancel()
        await asyncio.gather(*loads, return_exceptions=True)
        await self.http.aclose()
        await self.proxy.client.aclose()
        listener = self.operations.metrics.fleet_event
        if listener in events.listeners:  # not there if start-up never ran
            events.listeners.remove(listener)
