"""Load config/lmx.yaml onto typed defaults, then validate with dotted-path messages, and
settle the model set it serves (its entries plus the library's finds, gateway.config.model_set).

Every error names the key it is about (`models[1].port: 10001 is already used by
models[0]`), so a typo stops start-up with a sentence rather than a traceback, and a
reload with a mistake is refused whole.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import types
import typing
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gateway.config.checks import check_file, check_models, check_targets
from gateway.config.errors import ConfigError
from gateway.config.model_set import RESERVED_NAMES, ModelSet, resolve_models
from gateway.config.schema import ConfigFile, ModelConfig
from gateway.library.scan import Found, scan_models
from gateway.memory.probe import GB, default_prompt_cache_bytes
from workers.contract.settings import BackendName, WorkerSettings

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "config" / "lmx.yaml"
__all__ = ["RESERVED_NAMES", "Config", "ConfigError", "build_config", "load_config"]


def config_path_from_env() -> Path:
    return Path(os.environ.get("LMX_CONFIG") or DEFAULT_PATH)


def load_config(path: Path | None = None) -> Config:
    """Read the file, look for models in models_dir, settle and check the whole."""
    source = Path(path or config_path_from_env()).resolve()
    file = read_config_file(source)
    return build_config(file, source, scan_models(models_dir_of(file, source)).found)


def read_config_file(path: Path) -> ConfigFile:
    """The file's keys, typed and checked on their own (before any model is looked for)."""
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
    file: ConfigFile = _build(ConfigFile, raw, "")
    check_file(file)
    return file


def models_dir_of(file: ConfigFile, source: Path) -> Path:
    return (source.parent / file.models_dir).resolve()


def build_config(
    file: ConfigFile,
    source: Path,
    found: Sequence[Found],
    previous_ports: Mapping[str, int] | None = None,
    held_ports: Collection[int] = (),
    strict: bool = True,
) -> Config:
    """The config entries plus the library's finds. `previous_ports` keeps each model on
    the port it had; `held_ports` (workers still running) are not given to newcomers.
    Not `strict`: an alias, preset, default or auto_load naming a model that is gone is
    let through (the router skips it), since a file deleted from models_dir must go."""
    models_dir = models_dir_of(file, source)
    check_models(file, models_dir)
    model_set = resolve_models(file, models_dir, found, previous_ports or {}, held_ports)
    if strict:
        check_targets(file, [m.id for m in model_set.models])
    return Config(file, source, model_set)


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
    """The file plus what it resolves to: the model set (entries and library finds, with
    ports and contexts settled) and absolute paths. Built by build_config, never edited:
    a reload builds a new one."""

    file: ConfigFile
    source: Path
    model_set: ModelSet = field(default_factory=ModelSet)

    @property
    def base_dir(self) -> Path:
        return self.source.parent

    @property
    def models_dir(self) -> Path:
        return models_dir_of(self.file, self.source)

    @property
    def run_dir(self) -> Path:
        return (self.base_dir / self.file.run_dir).resolve()

    @property
    def models(self) -> tuple[ModelConfig, ...]:
        return self.model_set.models

    @functools.cached_property
    def _by_id(self) -> dict[str, ModelConfig]:
        return {m.id: m for m in self.models}

    def model(self, model_id: str) -> ModelConfig:
        return self._by_id[model_id]

    def has_model(self, model_id: str) -> bool:
        return model_id in self._by_id

    def source_of(self, model_id: str) -> str:
        """Where a model comes from: "library" (found in models_dir, named by no entry)
        or "config" (an entry, which may also name a library find by its path)."""
        return "library" if model_id in self.model_set.library else "config"

    def model_path(self, model: ModelConfig) -> Path:
        return (self.models_dir / model.path).resolve()

    def worker_settings(self, model_id: str) -> WorkerSettings:
        return self.settings_for(self.model(model_id))

    def settings_for(self, m: ModelConfig) -> WorkerSettings:
        """What a worker for `m` is started with (its settings file): `m` need not be one
        of this config's models (one just removed is still drained with its own)."""
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
