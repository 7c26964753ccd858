"""What one worker serves and how: built from the gateway's YAML or from CLI flags."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class WorkerSettings:
    model_id: str
    backend: str  # "llama_cpp" | "mlx" | "scripted"
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
