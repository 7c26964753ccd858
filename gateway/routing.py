"""Turn a request's `model` into the chain of concrete model ids that may answer it.

A name is, in this order: `default`/`auto` (routing.default), a preset (`preset:<name>`
or the bare name), an alias (a fallback chain), or a model id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.config.loader import RESERVED_NAMES, Config
from gateway.operations.requests import current_request
from workers.contract.errors import ApiError

PRESET_PREFIX = "preset:"


@dataclass(frozen=True)
class Route:
    requested: str
    chain: tuple[str, ...]
    params: dict[str, Any] = field(default_factory=dict)
    system: str | None = None


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
