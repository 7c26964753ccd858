"""The config's checks, each error naming its key: the file's own keys, the model
entries, and what routing names (which needs the whole model set, library included)."""

from __future__ import annotations

import ipaddress
from collections.abc import Collection
from pathlib import Path
from urllib.parse import urlsplit

from gateway.config.errors import ConfigError
from gateway.config.model_set import RESERVED_NAMES
from gateway.config.schema import ConfigFile, PeerConfig
from workers.contract.settings import BackendName, check_model_options

MAX_HISTORY = 100_000  # entries of the request history, in memory


def check_file(f: ConfigFile) -> None:
    ids = {m.id for m in f.models}
    for name, chain in f.routing.aliases.items():
        _check_name(f"routing.aliases.{name}", name, ids)
        if not chain:
            raise ConfigError(f"routing.aliases.{name}: an alias needs at least one model")
    if not 1 <= f.memory.max_memory_percent <= 100:
        raise ConfigError("memory.max_memory_percent: must be between 1 and 100")
    _check_turns(f)
    _check_port_range(f.workers.port_range)
    _check_responses(f)
    _check_network(f)
    _check_peers(f)
    if not 1 <= f.logging.history_size <= MAX_HISTORY:
        raise ConfigError(f"logging.history_size: must be between 1 and {MAX_HISTORY}")


def _check_turns(f: ConfigFile) -> None:
    memory = f.memory
    if memory.admission_wait_s <= 0:
        raise ConfigError("memory.admission_wait_s: must be more than 0")
    if memory.min_resident_s < 0:
        raise ConfigError("memory.min_resident_s: must be 0 or more")
    if memory.min_resident_s >= memory.admission_wait_s:
        raise ConfigError(
            f"memory.min_resident_s: {memory.min_resident_s:g} must be less than "
            f"memory.admission_wait_s ({memory.admission_wait_s:g}), or a request waiting "
            "for another model's turn to end would give up first"
        )


def _check_responses(f: ConfigFile) -> None:
    if f.responses.max_age_days <= 0:
        raise ConfigError("responses.max_age_days: must be more than 0")
    if f.responses.max_bytes < 1:
        raise ConfigError("responses.max_bytes: must be at least 1")


# A peer's list is read at most this often, and at least this often while it answers.
PEERS_REFRESH_S = (1.0, 3600.0)


def _check_peers(f: ConfigFile) -> None:
    low, high = PEERS_REFRESH_S
    if not low <= f.peers_refresh_s <= high:
        raise ConfigError(f"peers_refresh_s: must be between {low:g} and {high:g} seconds")
    names: dict[str, int] = {}
    for i, peer in enumerate(f.peers):
        where = f"peers[{i}]"
        if not peer.name or not all(c.isalnum() or c in "-_." for c in peer.name):
            raise ConfigError(
                f"{where}.name: {peer.name!r} must be letters, digits, '-', '_' or '.' "
                "(it names the peer's models as <name>/<model-id>)"
            )
        if peer.name in names:
            raise ConfigError(
                f"{where}.name: {peer.name!r} is already used by peers[{names[peer.name]}]"
            )
        names[peer.name] = i
        _check_peer_url(f"{where}.url", peer)


def _check_peer_url(where: str, peer: PeerConfig) -> None:
    try:
        url = urlsplit(peer.url)
        url.port  # noqa: B018 (raises on a port that is not a number)
    except ValueError as exc:
        raise ConfigError(f"{where}: {peer.url!r} is not a URL ({exc})") from None
    if url.scheme != "http" or not url.hostname:
        raise ConfigError(
            f"{where}: {peer.url!r} must be http://host:port (another Opta-LMX gateway)"
        )
    if url.username is not None or url.password is not None or url.query or url.fragment:
        raise ConfigError(
            f"{where}: {peer.url!r} must be only scheme, host, port and path "
            f"(a key goes in peers[...].api_key)"
        )
    if url.path.rstrip("/").endswith("/v1"):
        raise ConfigError(f"{where}: {peer.url!r} must be the gateway's root, without /v1")


def check_targets(f: ConfigFile, ids: Collection[str]) -> None:
    """Every model an alias, preset, default or auto_load names exists."""
    for name, chain in f.routing.aliases.items():
        for i, target in enumerate(chain):
            if target not in ids:
                raise ConfigError(f"routing.aliases.{name}[{i}]: unknown model {target!r}")
    targets = {*ids, *f.routing.aliases}
    for name, preset in f.routing.presets.items():
        if preset.model not in targets:
            raise ConfigError(
                f"routing.presets.{name}.model: unknown model or alias {preset.model!r}"
            )
    if f.routing.default is not None and f.routing.default not in targets:
        raise ConfigError(f"routing.default: unknown model or alias {f.routing.default!r}")
    for i, model_id in enumerate(f.auto_load):
        if model_id not in ids:
            raise ConfigError(f"auto_load[{i}]: unknown model {model_id!r}")


def check_models(f: ConfigFile, models_dir: Path) -> None:
    seen_ids: dict[str, int] = {}
    seen_ports: dict[int, int] = {f.gateway.port: -1}
    for i, m in enumerate(f.models):
        where = f"models[{i}]"
        if not m.id or not all(c.isalnum() or c in "-_." for c in m.id):
            raise ConfigError(f"{where}.id: {m.id!r} must be letters, digits, '-', '_' or '.'")
        if m.id in seen_ids:
            raise ConfigError(f"{where}.id: {m.id!r} is already used by models[{seen_ids[m.id]}]")
        if m.id in RESERVED_NAMES:
            raise ConfigError(f"{where}.id: {m.id!r} is reserved (it means routing.default)")
        seen_ids[m.id] = i
        if m.port:  # 0 (or none written): one from workers.port_range
            _check_port(where, m.port, seen_ports)
            seen_ports[m.port] = i
        if m.backend not in set(BackendName):
            names = ", ".join(BackendName)
            raise ConfigError(f"{where}.backend: {m.backend!r} is not one of {names}")
        try:
            check_model_options(m.tool_parser, m.reasoning_parser, m.defaults)
        except ValueError as exc:
            raise ConfigError(f"{where}.{exc}") from None
        if not (models_dir / m.path).resolve().is_relative_to(models_dir):
            raise ConfigError(f"{where}.path: {m.path!r} is outside the models directory")


def _check_port(where: str, port: int, seen_ports: dict[int, int]) -> None:
    if port in seen_ports:
        owner = seen_ports[port]
        used_by = "gateway.port" if owner < 0 else f"models[{owner}]"
        raise ConfigError(f"{where}.port: {port} is already used by {used_by}")
    if not 1 <= port <= 65535:
        raise ConfigError(f"{where}.port: {port} is not a TCP port")


def _check_port_range(port_range: list[int]) -> None:
    if len(port_range) != 2 or not 1 <= port_range[0] <= port_range[1] <= 65535:
        raise ConfigError(
            f"workers.port_range: {port_range} must be [first, last], "
            "with 1 <= first <= last <= 65535"
        )


def _check_network(f: ConfigFile) -> None:
    if not _loopback(f.workers.host):
        raise ConfigError(
            f"workers.host: {f.workers.host!r} is not a loopback address; workers are reached "
            "through the gateway and listen on 127.0.0.1 (or ::1) only"
        )
    if _loopback(f.gateway.host) or f.security.api_keys:
        return
    if not f.security.allow_unauthenticated_network:
        raise ConfigError(
            f"gateway.host: {f.gateway.host!r} would let anyone on the network use every "
            "model; set security.api_keys, or write security.allow_unauthenticated_network: "
            "true if that is what you want"
        )


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host.lower() == "localhost"


def _check_name(where: str, name: str, model_ids: set[str]) -> None:
    if name in RESERVED_NAMES:
        raise ConfigError(f"{where}: {name!r} is reserved (it means routing.default)")
    if name in model_ids:
        raise ConfigError(f"{where}: {name!r} is already a model id")
