"""Load config/lmx.yaml once onto typed defaults, then validate with dotted-path messages.

Every error names the key it is about (`models[1].port: 10001 is already used by
models[0]`), so a typo stops start-up with a sentence rather than a traceback.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gateway.config.schema import ConfigFile, ModelConfig
from gateway.memory.probe import GB, default_prompt_cache_bytes
from workers.contract.settings import BackendName, WorkerSettings, check_model_options

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "config" / "lmx.yaml"
RESERVED_NAMES = ("default", "auto")


class ConfigError(ValueError):
    """A config problem, its message naming the key."""


def config_path_from_env() -> Path:
    return Path(os.environ.get("LMX_CONFIG") or DEFAULT_PATH)


def load_config(path: Path | None = None) -> Config:
    path = Path(path or config_path_from_env())
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror})") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys")
    parsed = _build(ConfigFile, raw, "")
    return Config(parsed, path.resolve())


# ---- building typed objects from YAML values ------------------------------------------


def _build(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {_kind(data)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        known = ", ".join(sorted(fields))
        raise ConfigError(f"{_join(where, unknown[0])}: unknown key (known keys: {known})")
    values = {}
    for name, f in fields.items():
        if name in data:
            values[name] = _coerce(hints[name], data[name], _join(where, name))
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{_join(where, name)}: required key is missing")
    return cls(**values)


def _coerce(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(inner[0], value, where)
    if dataclasses.is_dataclass(hint):
        return _build(typing.cast(type, hint), value, where)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {_kind(value)}")
        return [_coerce(args[0], item, f"{where}[{i}]") for i, item in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {_kind(value)}")
        return {str(k): _coerce(args[1], v, _join(where, str(k))) for k, v in value.items()}
    return _scalar(hint, value, where)


def _scalar(hint: Any, value: Any, where: str) -> Any:
    if hint is Any:
        return value
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if hint in (str, bool) and type(value) is hint:
        return value
    raise ConfigError(f"{where}: expected {hint.__name__}, got {_kind(value)} {value!r}")


def _kind(value: Any) -> str:
    return {dict: "a mapping", list: "a list", type(None): "nothing"}.get(
        type(value), type(value).__name__
    )


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


# ---- the validated, path-resolved config ------------------------------------------------


@dataclass(frozen=True)
class Config:
    file: ConfigFile
    source: Path

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def base_dir(self) -> Path:
        return self.source.parent

    @property
    def models_dir(self) -> Path:
        return (self.base_dir / self.file.models_dir).resolve()

    @property
    def run_dir(self) -> Path:
        return (self.base_dir / self.file.run_dir).resolve()

    @property
    def models(self) -> list[ModelConfig]:
        return self.file.models

    def model(self, model_id: str) -> ModelConfig:
        for m in self.file.models:
            if m.id == model_id:
                return m
        raise KeyError(model_id)

    def model_path(self, model: ModelConfig) -> Path:
        return (self.models_dir / model.path).resolve()

    def worker_settings(self, model_id: str) -> WorkerSettings:
        m = self.model(model_id)
        w = self.file.workers
        return WorkerSettings(
            model_id=m.id,
            backend=BackendName(m.backend),
            path=self.model_path(m),
            host=w.host,
            port=m.port,
            context_length=m.context_length or w.context_length,
            max_concurrent=m.max_concurrent or w.max_concurrent,
            max_queue=m.max_queue if m.max_queue is not None else w.max_queue,
            request_timeout_s=m.request_timeout_s or w.request_timeout_s,
            max_body_bytes=self.file.gateway.max_body_bytes,
            tool_parser=m.tool_parser,
            reasoning_parser=m.reasoning_parser,
            embeddings=m.embeddings,
            vision=m.vision,
            defaults=dict(m.defaults),
            chat_template=m.chat_template,
            api_keys=tuple(self.file.security.api_keys),
            prompt_cache_bytes=self._prompt_cache_bytes(m),
            prompt_cache_dir=self._prompt_cache_dir(m),
            prompt_cache_disk_bytes=int(w.prompt_cache_disk_gb * GB),
            warm_prompts=tuple(m.warm_prompts),
            allowed_hosts=tuple(self.file.security.allowed_hosts),
            cors_origins=tuple(self.file.security.cors_origins),
        )

    def _prompt_cache_dir(self, m: ModelConfig) -> Path | None:
        folder = self.file.workers.prompt_cache_dir
        return self.run_dir / folder / m.id if folder else None

    def _prompt_cache_bytes(self, m: ModelConfig) -> int:
        gb = m.prompt_cache_gb
        if gb is None:
            gb = self.file.workers.prompt_cache_gb
        if gb is None:
            return default_prompt_cache_bytes(self.file.memory.total_gb)
        return int(gb * GB)


def _validate(config: Config) -> None:
    f = config.file
    _check_models(config)
    ids = {m.id for m in f.models}
    for name, chain in f.routing.aliases.items():
        _check_name(f"routing.aliases.{name}", name, ids)
        if not chain:
            raise ConfigError(f"routing.aliases.{name}: an alias needs at least one model")
        for i, target in enumerate(chain):
            if target not in ids:
                raise ConfigError(f"routing.aliases.{name}[{i}]: unknown model {target!r}")
    targets = ids | set(f.routing.aliases)
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
    if not 1 <= f.memory.max_memory_percent <= 100:
        raise ConfigError("memory.max_memory_percent: must be between 1 and 100")
    _check_responses(f)
    _check_network(f)


def _check_responses(f: ConfigFile) -> None:
    if f.responses.max_age_days <= 0:
        raise ConfigError("responses.max_age_days: must be more than 0")
    if f.responses.max_bytes < 1:
        raise ConfigError("responses.max_bytes: must be at least 1")


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


def _check_models(config: Config) -> None:
    seen_ids: dict[str, int] = {}
    seen_ports: dict[int, int] = {config.file.gateway.port: -1}
    for i, m in enumerate(config.file.models):
        where = f"models[{i}]"
        if not m.id or not all(c.isalnum() or c in "-_." for c in m.id):
            raise ConfigError(f"{where}.id: {m.id!r} must be letters, digits, '-', '_' or '.'")
        if m.id in seen_ids:
            raise ConfigError(f"{where}.id: {m.id!r} is already used by models[{seen_ids[m.id]}]")
        if m.id in RESERVED_NAMES:
            raise ConfigError(f"{where}.id: {m.id!r} is reserved (it means routing.default)")
        seen_ids[m.id] = i
        if m.port in seen_ports:
            owner = seen_ports[m.port]
            used_by = "gateway.port" if owner < 0 else f"models[{owner}]"
            raise ConfigError(f"{where}.port: {m.port} is already used by {used_by}")
        if not 1 <= m.port <= 65535:
            raise ConfigError(f"{where}.port: {m.port} is not a TCP port")
        seen_ports[m.port] = i
        if m.backend not in set(BackendName):
            names = ", ".join(BackendName)
            raise ConfigError(f"{where}.backend: {m.backend!r} is not one of {names}")
        try:
            check_model_options(m.tool_parser, m.reasoning_parser, m.defaults)
        except ValueError as exc:
            raise ConfigError(f"{where}.{exc}") from None
        path = config.model_path(m)
        if not path.is_relative_to(config.models_dir):
            raise ConfigError(f"{where}.path: {m.path!r} is outside the models directory")
