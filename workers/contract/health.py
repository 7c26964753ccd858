"""A worker's `GET /health` document: written by the worker and read by the gateway and
memwatch through this one type, so a field cannot be renamed on one side only."""

from __future__ import annotations

import dataclasses
import enum
import typing
from dataclasses import dataclass
from typing import Any


class ModelState(enum.StrEnum):
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"


@dataclass(frozen=True)
class PromptCacheStats:
    hits: int  # prompts that reused at least a few cached tokens
    misses: int
    tokens_reused: int  # prompt tokens not prefilled again, over all hits
    entries: int  # states held in RAM
    ram_bytes: int
    disk_bytes: int

    @classmethod
    def from_json(cls, data: Any) -> PromptCacheStats:
        if not isinstance(data, dict):
            raise ValueError("prompt_cache is not an object")
        return cls(**{name: _field(data, name, int) for name in _CACHE_FIELDS})


@dataclass(frozen=True)
class Health:
    status: ModelState
    model: str
    backend: str
    pid: int
    port: int
    context_length: int
    rss_bytes: int
    accelerator_bytes: int | None  # MLX's own count, where the backend can tell
    in_flight: int
    queued: int
    requests_total: int
    tokens_generated: int
    cancelled_total: int
    last_request_at: float | None  # wall clock
    ready_at: float | None  # wall clock
    load_seconds: float | None
    error: str | None
    prompt_cache: PromptCacheStats | None  # None: the backend keeps no prompt cache

    @property
    def busy(self) -> bool:
        return self.in_flight > 0 or self.queued > 0

    @property
    def last_activity(self) -> float:
        """When the worker last did something: its last request, else when it became ready."""
        return max(self.last_request_at or 0.0, self.ready_at or 0.0)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> Health:
        """Raises ValueError naming the first field that is missing or of the wrong type."""
        if not isinstance(data, dict):
            raise ValueError("health document is not an object")
        values = {name: _field(data, name, hint) for name, hint in _HINTS.items()}
        return cls(**values)


_HINTS = typing.get_type_hints(Health)
_CACHE_FIELDS = [f.name for f in dataclasses.fields(PromptCacheStats)]


def _field(data: dict[str, Any], name: str, hint: Any) -> Any:
    if name not in data:
        raise ValueError(f"health document has no {name!r}")
    value = data[name]
    if hint is ModelState:
        return ModelState(value)  # ValueError for an unknown state
    if name == "prompt_cache":
        return None if value is None else PromptCacheStats.from_json(value)
    allowed = typing.get_args(hint) or (hint,)
    if float in allowed:
        allowed = (*allowed, int)
    if isinstance(value, bool) or not isinstance(value, allowed):
        raise ValueError(f"health field {name!r} has the wrong type: {value!r}")
    return value
