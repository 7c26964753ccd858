"""Read the scalar metadata of a GGUF file's header (architecture, sizes), nothing more.

The gateway needs a model's layer and head counts to estimate its KV cache before it
decides to load it; importing llama.cpp into the gateway for that would cost far more.
Arrays (the vocabulary) are skipped, not kept. The tensor table that follows gives the
parameter count the Ollama and LM Studio listings show.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

_SCALARS = {
    0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i",
    6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d",
}  # fmt: skip
_STRING, _ARRAY = 8, 9
# Longer than any real metadata string (chat templates run to tens of KiB): a length past
# it is a corrupt header, and reading it would try to allocate that much.
_MAX_STRING = 16 * 1024 * 1024


class GgufError(ValueError):
    pass


@dataclass(frozen=True)
class GgufHeader:
    metadata: dict[str, Any]
    parameter_count: int


def read_gguf_metadata(path: Path) -> dict[str, Any]:
    try:
        return _read(path)
    except struct.error:
        raise GgufError(f"{path.name}: the GGUF header is cut short") from None


def _read(path: Path) -> dict[str, Any]:
    with path.open("rb") as f:
        _tensors, meta = _read_metadata(f, path)
        return meta


def read_gguf_header(path: Path) -> GgufHeader:
    """The metadata and the number of weights, summed over the tensor table."""
    with path.open("rb") as f:
        tensors, meta = _read_metadata(f, path)
        return GgufHeader(meta, sum(_tensor_size(f) for _ in range(tensors)))


def _read_metadata(f: IO[bytes], path: Path) -> tuple[int, dict[str, Any]]:
    if f.read(4) != b"GGUF":
        raise GgufError(f"{path.name} is not a GGUF file")
    (version,) = struct.unpack("<I", f.read(4))
    if version < 2:
        raise GgufError(f"{path.name}: GGUF version {version} is too old")
    tensors, kv_count = struct.unpack("<QQ", f.read(16))
    meta: dict[str, Any] = {}
    for _ in range(kv_count):
        key = _string(f)
        (kind,) = struct.unpack("<I", f.read(4))
        value = _value(f, kind)
        if value is not None:
            meta[key] = value
    return tensors, meta


def _tensor_size(f: IO[bytes]) -> int:
    """One tensor-table entry (name, dimensions, type, offset): its element count."""
    _skip_string(f)
    (dims,) = struct.unpack("<I", f.read(4))
    shape = struct.unpack(f"<{dims}Q", f.read(8 * dims))
    f.seek(12, 1)  # the type (uint32) and the data offset (uint64)
    return math.prod(shape)


def _skip_string(f: IO[bytes]) -> None:
    (length,) = struct.unpack("<Q", f.read(8))
    f.seek(length, 1)


def _string(f: IO[bytes]) -> str:
    (length,) = struct.unpack("<Q", f.read(8))
    if length > _MAX_STRING:
        raise GgufError(f"a GGUF metadata string of {length} bytes: the header is corrupt")
    return f.read(length).decode("utf-8", errors="replace")


def _value(f: IO[bytes], kind: int) -> Any:
    if kind == _STRING:
        return _string(f)
    if kind == _ARRAY:
        item_kind, count = struct.unpack("<IQ", f.read(12))
        if item_kind in _SCALARS:  # fixed-size items: jump over them
            f.seek(count * struct.calcsize(_SCALARS[item_kind]), 1)
            return None
        for _ in range(count):
            _skip_string(f) if item_kind == _STRING else _value(f, item_kind)
        return None
    fmt = _SCALARS.get(kind)
    if fmt is None:
        raise GgufError(f"unknown GGUF value type {kind}")
    return struct.unpack(fmt, f.read(struct.calcsize(fmt)))[0]
