"""Turn a request's `model` into the chain of concrete model ids that may answer it.

A name is, in this order: `default`/`auto` (routing.default), a preset (`preset:<name>`
or the bare name), an alias (a fallback chain), or a model id. Routes that peers may
answer (gateway.peers) also know `peer/model-id` and the ids only peers have.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gateway.config.loader import RESERVED_NAMES, Config
from gateway.operations.requests import current_request
from workers.contract.errors import ApiError

if TYPE_CHECKING:
    from gateway.peers import Peers

PRESET_PREFIX = "preset:"


@dataclass(frozen=True)
class Route:
    requested: str
    chain: tuple[str, ...]
    params: dict[str, Any] = field(default_factory=dict)
    system: str | None = None
    # Peers may answer (the proxy asks gateway.peers which host goes first).
    anywhere: bool = False
    peer: str | None = None  # `peer/model-id`: that peer only


class Router:
    def __init__(self, config: Config) -> None:
        self._routing = config.file.routing
        self._ids = [m.id for m in config.models]
        self._known = frozenset(self._ids)  # a library can hold hundreds: a set to test

    def names(self) -> list[str]:
        r = self._routing
        return [*self._ids, *r.aliases, *(PRESET_PREFIX + p for p in r.presets)]

    def resolve(self, name: object) -> Route:
        if not isinstance(name, str) or not name:
            raise ApiError(400, "`model` is required and must be a string", param="model")
        current_request.get().asked_for(name)  # for the request history
        target = self._target(name)
        preset_name = name.removeprefix(PRESET_PREFIX)
        preset = self._routing.presets.get(preset_name)
        if preset is not None and (
            name.startswith(PRESET_PREFIX) or preset_name not in self._known
        ):
            chain = self._chain(preset.model, name)
            return Route(name, chain, dict(preset.params), preset.system)
        return Route(name, self._chain(target, name))

    def knows(self, name: str) -> bool:
        """Whether `name` means something on this host: a model, alias, preset or default."""
        presets = self._routing.presets
        return (
            name in self._known
            or name in self._routing.aliases
            or name in RESERVED_NAMES
            or name.removeprefix(PRESET_PREFIX) in presets
        )

    def resolve_anywhere(self, name: object, peers: Peers) -> Route:
        """As `resolve`, for a request that peers may answer. A name known here keeps its
        meaning here; `peer/model-id` is that peer's model; an id only peers list is theirs."""
        if not isinstance(name, str) or not name or self.knows(name):
            return dataclasses.replace(self.resolve(name), anywhere=True)
        current_request.get().asked_for(name)  # for the request history
        peer, _, model_id = name.partition("/")
        if model_id and peers.has_peer(peer):
            return Route(name, (model_id,), anywhere=True, peer=peer)
        if peers.knows(name):
            return Route(name, (name,), anywhere=True)
        here = self.names()
        available = [*here, *peers.names(set(here))]
        raise ApiError(
            404,
            f"model {name!r} does not exist; available: {', '.join(available)}",
            param="model",
            code="model_not_found",
        )

    def _target(self, name: str) -> str:
        if name in RESERVED_NAMES:
            return self._routing.default or (self._ids[0] if self._ids else name)
        return name

    def _chain(self, target: str, requested: str) -> tuple[str, ...]:
        target = self._target(target)
        if target in self._routing.aliases:
            # A library model an alias names may have been deleted since the config loaded.
            chain = tuple(m for m in self._routing.aliases[target] if m in self._known)
            if chain:
                return chain
            raise ApiError(
                404,
                f"none of the models of {requested!r} exists now",
                param="model",
                code="model_not_found",
            )
        if target in self._known:
            return (target,)
        raise ApiError(
            404,
            f"model {requested!r} does not exist; available: {', '.join(self.names())}",
            param="model",
            code="model_not_found",
        )
