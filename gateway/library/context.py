"""The context length a model was made for, from its own metadata: a GGUF header's
`<arch>.context_length`, or an MLX folder's config.json `max_position_embeddings`."""

from __future__ import annotations

import functools
import json
import struct
from pathlib import Path
from typing import Any

from gateway.memory.gguf_meta import GgufError, read_gguf_metadata

# Keys Hugging Face configs use for it, most common first.
_CONFIG_KEYS = ("max_position_embeddings", "max_sequence_length", "n_positions", "seq_length")


def native_context(path: Path) -> int | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return _read(path, st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=256)
def _read(path: Path, mtime_ns: int, size: int) -> int | None:
    """Cached per file version: a GGUF header read walks the whole vocabulary."""
    try:
        if path.is_dir():
            return _from_config(json.loads((path / "config.json").read_text()))
        if path.name.lower().endswith(".gguf"):
            meta = read_gguf_metadata(path)
            arch = meta.get("general.architecture")
            return _positive(meta.get(f"{arch}.context_length"))
    except (OSError, ValueError, struct.error, GgufError, TypeError, AttributeError):
        return None
    return None


def _from_config(config: dict[str, Any]) -> int | None:
    for section in (config, config.get("text_config") or {}):
        for key in _CONFIG_KEYS:
            value = _positive(section.get(key))
            if value is not None:
                return value
    return None


def _positive(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None
