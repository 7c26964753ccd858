"""What one worker serves and how. The gateway writes these settings to a JSON file that
supervisord's command line names (`python -m workers --settings FILE`); a worker run by
hand builds them from flags. Names a user may write (backends, parsers, request
defaults) are checked here, once, for both."""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


class BackendName(enum.StrEnum):
    LLAMA_CPP = "llama_cpp"
    MLX = "mlx"
    SCRIPTED = "scripted"


class ToolParserName(enum.StrEnum):
    HERMES = "hermes"
    MINIMAX = "minimax"
    QWEN3_CODER = "qwen3_coder"
    MISTRAL = "mistral"
    LLAMA3 = "llama3"


class ReasoningParserName(enum.StrEnum):
    THINK = "think"


PARSER_OFF = "none"  # tool_parser / reasoning_parser: parse nothing
# Request fields a model's `defaults` may set, with the JSON types each takes. A request
# that sets one itself wins; ranges are checked by the worker's own request parser.
DEFAULTABLE: Mapping[str, tuple[type, ...]] = {
    "temperature": (int, float),
    "top_p": (int, float),
    "max_tokens": (int,),
    "max_completion_tokens": (int,),
    "seed": (int,),
    "stop": (str, list),
    "response_format": (dict,),
    "tool_choice": (str, dict),
    "logprobs": (bool,),
    "top_logprobs": (int,),
    "chat_template_kwargs": (dict,),
}


@dataclass(frozen=True)
class WorkerSettings:
    model_id: str
    backend: BackendName
    path: Path  # absolute; a .gguf file, an MLX dir, or a scripted-backend JSON file
    host: str = "127.0.0.1"
    port: int = 10001
    context_length: int = 4096
    max_concurrent: int = 4  # requests generating at once
    max_queue: int = 16  # requests waiting; past both -> 429 + Retry-After
    request_timeout_s: float = 600.0
    max_body_bytes: int = 10 * 1024 * 1024
    tool_parser: str | None = None  # None: detect from the chat template; "none": off
    reasoning_parser: str | None = None  # None: detect; "none": off; "think"
    embeddings: bool = False
    vision: bool = False
    # Default request params (temperature, top_p, max_tokens, seed, ...).
    defaults: Mapping[str, Any] = field(default_factory=dict)
    chat_template: str | None = None  # override of the model's own
    # When non-empty, requests need "Authorization: Bearer k" or "x-api-key: k" (not /health).
    api_keys: tuple[str, ...] = ()
    # The prompt cache: RAM cap, and the disk tier (None: no disk tier) with its cap.
    prompt_cache_bytes: int = 1024**3
    prompt_cache_dir: Path | None = None
    prompt_cache_disk_bytes: int = 8 * 1024**3
    # Prompts (rendered, e.g. an agent's system prompt) prefilled into the cache at load.
    warm_prompts: tuple[str, ...] = ()
    # Host names besides this machine's, and browser origins given CORS (browser_guard).
    allowed_hosts: tuple[str, ...] = ()
    cors_origins: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "backend", BackendName(self.backend))
        check_model_options(self.tool_parser, self.reasoning_parser, self.defaults)

    def to_json(self) -> str:
        data = {**asdict(self), "path": str(self.path), "defaults": dict(self.defaults)}
        data["prompt_cache_dir"] = str(self.prompt_cache_dir) if self.prompt_cache_dir else None
        return json.dumps(data, indent=2)

    @classmethod
    def from_json(cls, text: str) -> WorkerSettings:
        data = json.loads(text)
        data["path"] = Path(data["path"])
        data["api_keys"] = tuple(data["api_keys"])
        for key in ("warm_prompts", "allowed_hosts", "cors_origins"):
            data[key] = tuple(data.get(key, ()))
        if data.get("prompt_cache_dir"):
            data["prompt_cache_dir"] = Path(data["prompt_cache_dir"])
        return cls(**data)


def check_model_options(
    tool_parser: str | None, reasoning_parser: str | None, defaults: Mapping[str, Any]
) -> None:
    """Raises ValueError whose message starts with the key it is about."""
    _check_name("tool_parser", tool_parser, ToolParserName)
    _check_name("reasoning_parser", reasoning_parser, ReasoningParserName)
    for key, value in defaults.items():
        kinds = DEFAULTABLE.get(key)
        if kinds is None:
            known = ", ".join(DEFAULTABLE)
            raise ValueError(f"defaults.{key}: not a request field defaults can set ({known})")
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            expected = " or ".join(kind.__name__ for kind in kinds)
            raise ValueError(f"defaults.{key}: expected {expected}, got {value!r}")


def _check_name(key: str, value: str | None, names: type[enum.StrEnum]) -> None:
    if value is None or value == PARSER_OFF or value in names.__members__.values():
        return
    choices = ", ".join([*names, PARSER_OFF])
    raise ValueError(f"{key}: {value!r} is not one of {choices}")
