"""Small model files for library tests: a GGUF header with the metadata the gateway reads
(no tensors), an MLX folder with its config.json and a stand-in weights file."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

_UINT32, _STRING = 4, 8


def write_gguf(path: Path, context_length: int | None = 8192, arch: str = "llama") -> Path:
    meta: dict[str, Any] = {"general.architecture": arch}
    if context_length is not None:
        meta[f"{arch}.context_length"] = context_length
    body = b"GGUF" + struct.pack("<IQQ", 3, 0, len(meta))
    for key, value in meta.items():
        body += _string(key)
        if isinstance(value, str):
            body += struct.pack("<I", _STRING) + _string(value)
        else:
            body += struct.pack("<II", _UINT32, value)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    return path


def write_mlx(folder: Path, **config: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", **config}))
    (folder / "model.safetensors").write_bytes(b"\0" * 64)
    return folder


def _string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("<Q", len(data)) + data
