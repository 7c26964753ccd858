"""The models the gateway serves: the config's entries plus the library's finds (every
GGUF file and MLX folder under models_dir), each with its id, port and context settled.

- A config entry whose `path` is a library find replaces it: the entry's id, port and
  options win.
- Ports: an entry's own `port`; otherwise one from workers.port_range, skipping the ports
  entries name: the one the model had before if still free (a new file must not move a
  loaded model), else the lowest free one.
- Context: an entry's `context_length`; otherwise the model's own (from its metadata)
  capped by workers.context_length, which is also the fallback when the metadata says
  nothing. The cap matters: a KV cache for a 128k context, per concurrent request, would
  not fit most machines.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from gateway.config.errors import ConfigError
from gateway.config.schema import ConfigFile, ModelConfig
from gateway.library.context import native_context
from gateway.library.naming import assign_ids
from gateway.library.scan import Found, Skipped

RESERVED_NAMES = ("default", "auto")


@dataclass(frozen=True)
class ModelSet:
    models: tuple[ModelConfig, ...] = ()
    library: frozenset[str] = frozenset()  # the ids that are library finds, not entries
    skipped: tuple[Skipped, ...] = ()


def resolve_models(
    file: ConfigFile,
    models_dir: Path,
    found: Sequence[Found],
    previous_ports: Mapping[str, int],
    held_ports: Collection[int] = (),
) -> ModelSet:
    """Expects the entries checked (distinct ids and ports): see gateway.config.checks."""
    library = _library_models(file, models_dir, found)
    ports = _ports(file, [*file.models, *library], previous_ports, held_ports)
    for i, m in enumerate(file.models):
        if ports[m.id] is None:
            raise ConfigError(f"models[{i}].port: no free port left in {_range_key(file)}")
    no_port = [m for m in library if ports[m.id] is None]
    skipped = tuple(Skipped(m.path, f"no free port left in {_range_key(file)}") for m in no_port)
    cap = file.workers.context_length
    models = tuple(
        _settled(m, port, models_dir, cap)
        for m in [*file.models, *library]
        if (port := ports[m.id]) is not None
    )
    library_ids = frozenset(m.id for m in library if ports[m.id] is not None)
    return ModelSet(models, library_ids, skipped)


def _library_models(
    file: ConfigFile, models_dir: Path, found: Sequence[Found]
) -> list[ModelConfig]:
    """The finds no entry claims by its path, named, in id order."""
    claimed = {(models_dir / m.path).resolve() for m in file.models}
    finds = [f for f in found if (models_dir / f.path).resolve() not in claimed]
    ids = assign_ids([f.path for f in finds], _taken(file))
    models = [ModelConfig(id=ids[f.path], path=f.path, backend=f.backend) for f in finds]
    return sorted(models, key=lambda m: m.id)


def _taken(file: ConfigFile) -> set[str]:
    routing = file.routing
    return {*RESERVED_NAMES, *(m.id for m in file.models), *routing.aliases, *routing.presets}


def _range_key(file: ConfigFile) -> str:
    first, last = file.workers.port_range
    return f"workers.port_range [{first}, {last}]"


def _ports(
    file: ConfigFile,
    models: list[ModelConfig],
    previous: Mapping[str, int],
    held: Collection[int],
) -> dict[str, int | None]:
    """Each model's port: its own, else from the range (None when the range is full).
    A newcomer never gets a `held` port: a worker that is still stopping may hold it."""
    first, last = file.workers.port_range
    used = {file.gateway.port, *(m.port for m in file.models if m.port)}
    ports: dict[str, int | None] = {m.id: m.port for m in models if m.port}
    wanted = [m.id for m in models if not m.port]
    for model_id in wanted:  # the ports models had keep them, before newcomers choose
        port = previous.get(model_id)
        if port is not None and first <= port <= last and port not in used:
            ports[model_id] = port
            used.add(port)
    used.update(held)
    free = (p for p in range(first, last + 1) if p not in used)
    for model_id in wanted:
        if model_id not in ports:
            ports[model_id] = next(free, None)
    return ports


def _settled(m: ModelConfig, port: int, models_dir: Path, cap: int) -> ModelConfig:
    context = m.context_length
    if context is None:
        native = native_context((models_dir / m.path).resolve())
        context = min(native, cap) if native else cap
    return dataclasses.replace(m, port=port, context_length=context)
