"""The configured peers, each followed by a refresh task of its own, kept current across
config reloads; and what routing and the listings ask of them. Routing only reads what
the refreshes found: no request ever waits on a peer's check."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Mapping
from typing import Any

import httpx

from gateway.config.loader import Config
from gateway.peers.hosts import PeerModel, Target, order_hosts
from gateway.peers.refresh import PeerUnreadable, read_models
from gateway.peers.state import PeerState, backoff_s
from gateway.routing import Route
from workers.contract.errors import ApiError

CREATED = int(time.time())


class Peers:
    def __init__(self, config: Config, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._config = config
        self._transport = transport  # tests give one; else httpx's own
        self.states: dict[str, PeerState] = {p.name: PeerState.of(p) for p in config.file.peers}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._wake: dict[str, asyncio.Event] = {}
        self._http: httpx.AsyncClient | None = None

    # ---- lifecycle ------------------------------------------------------------------

    def start(self) -> None:
        self._http = httpx.AsyncClient(transport=self._transport, trust_env=False)
        for state in self.states.values():
            self._follow(state)

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        if self._http is not None:
            await self._http.aclose()

    def apply(self, config: Config) -> None:
        """A reload: new peers are followed, removed ones forgotten, a changed one (its
        URL or key) starts over; a new refresh interval has every peer looked at now.
        Requests already sent to a peer finish."""
        interval_changed = config.file.peers_refresh_s != self._config.file.peers_refresh_s
        self._config = config
        wanted = {p.name: p for p in config.file.peers}
        for name, state in list(self.states.items()):
            if wanted.get(name) != state.config:
                del self.states[name]
                self._wake.pop(name, None)
                task = self._tasks.pop(name, None)
                if task is not None:
                    task.cancel()
            elif interval_changed and name in self._wake:
                self._wake[name].set()
        for name, peer in wanted.items():
            if name not in self.states:
                self.states[name] = state = PeerState.of(peer)
                if self._http is not None:
                    self._follow(state)

    def _follow(self, state: PeerState) -> None:
        self._wake[state.name] = asyncio.Event()
        self._tasks[state.name] = asyncio.create_task(self._refresh(state))

    async def _refresh(self, state: PeerState) -> None:
        assert self._http is not None
        wake = self._wake[state.name]
        while True:
            wake.clear()
            timeout_s = self._config.file.gateway.connect_timeout_s
            try:
                state.listed(await read_models(self._http, state, timeout_s))
            except PeerUnreadable as exc:
                state.failed(str(exc))
            state.next_check_s = backoff_s(state.failures, self._config.file.peers_refresh_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), state.next_check_s)

    # ---- what routing asks ----------------------------------------------------------

    def has_peer(self, name: str) -> bool:
        return name in self.states

    def knows(self, model_id: str) -> bool:
        """Whether any peer listed `model_id` when it last answered (up or down now)."""
        return any(model_id in s.models for s in self.states.values())

    def holders(self, model_id: str) -> list[PeerModel]:
        """The peers that answer and list `model_id`, in the config's order."""
        found = []
        for state in self.states.values():
            status = state.status_of(model_id)
            if status is not None:
                found.append(PeerModel(state.name, model_id, status == "ready"))
        return found

    def plan(self, route: Route, local_ready: Mapping[str, bool]) -> list[Target]:
        """The hosts to try for `route`, in order (gateway.peers.hosts); `local_ready`:
        the route's models configured here, and whether each is ready."""
        if route.peer is not None:
            return [self._only(route.peer, route.chain[0])]
        chain = route.chain
        targets = order_hosts(chain, local_ready, {m: self.holders(m) for m in chain})
        if not targets:
            raise self._nowhere(route)
        return targets

    def _only(self, name: str, model_id: str) -> PeerModel:
        state = self.states.get(name)
        if state is None:
            raise ApiError(404, f"no peer {name!r}", param="model", code="model_not_found")
        if not state.up:
            raise _unreachable(state)
        status = state.status_of(model_id)
        if status is None:
            listed = ", ".join(state.models) or "none"
            raise ApiError(
                404,
                f"peer {name!r} has no model {model_id!r}; its models: {listed}",
                param="model",
                code="model_not_found",
            )
        return PeerModel(name, model_id, status == "ready")

    def _nowhere(self, route: Route) -> ApiError:
        """No host answers for the route now: its models are on peers that are down, or
        gone from every list."""
        for state in self.states.values():
            if not state.up and any(m in state.models for m in route.chain):
                return _unreachable(state)
        return ApiError(
            404,
            f"model {route.requested!r} is no longer served by any peer",
            param="model",
            code="model_not_found",
        )

    # ---- what the listings show -----------------------------------------------------

    def names(self, taken: set[str] | None = None) -> list[str]:
        """The names peers' models go by here: `peer/model-id` for each, and the plain id
        of each that is not `taken` (a name that means something on this host)."""
        qualified: list[str] = []
        plain: dict[str, bool] = {}
        for state in self.states.values():
            for model_id in state.models if state.up else ():
                qualified.append(f"{state.name}/{model_id}")
                if taken is None or model_id not in taken:
                    plain[model_id] = True
        return [*qualified, *plain]

    def model_entries(self, taken: set[str]) -> list[dict[str, Any]]:
        """/v1/models entries for the peers that answer: `peer/model-id` with the peer's
        status, and the plain id (with every peer that has it) where it means nothing
        here. A model configured here and on a peer is the same model: its entry here
        stands for both."""
        entries: list[dict[str, Any]] = []
        plain: dict[str, dict[str, Any]] = {}
        for state in self.states.values():
            for model_id, status in state.models.items() if state.up else ():
                entries.append(_entry(f"{state.name}/{model_id}", status, peer=state.name))
                if model_id not in taken:
                    holder = plain.setdefault(model_id, _entry(model_id, status, peers=[]))
                    holder["peers"].append(state.name)
                    if status == "ready":
                        holder["status"] = "ready"
        return [*entries, *plain.values()]

    def status(self) -> list[dict[str, Any]]:
        return [state.view() for state in self.states.values()]


def _entry(model_id: str, status: str, **where: Any) -> dict[str, Any]:
    return {
        "id": model_id,
        "object": "model",
        "created": CREATED,
        "owned_by": "opta-lmx",
        "status": status,
        **where,
    }


def _unreachable(state: PeerState) -> ApiError:
    wait_s = math.ceil(state.next_check_s) or 1
    return ApiError(
        503,
        f"peer {state.name!r} cannot be reached now ({state.error or 'not reached yet'}); "
        f"it is looked at again within {wait_s}s",
        code="peer_unreachable",
        headers={"Retry-After": str(wait_s)},
    )
