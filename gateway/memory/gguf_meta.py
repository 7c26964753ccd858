"""Read the scalar metadata of a GGUF file's header (architecture, sizes), nothing more.

The gateway needs a model's layer and head counts to estimate its KV cache before it
decides to load it; importing llama.cpp into the gateway for that would cost far more.
Arrays (the vocabulary) are skipped, not kept.
"""

from __future__ import annotations

import struct
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


def read_gguf_metadata(path: Path) -> dict[str, Any]:
    try:
        return _read(path)
    except struct.error:
        raise GgufError(f"{path.name}: the GGUF header is cut short") from None


def _read(path: Path) -> dict[str, Any]:
    with path.open("rb") as f:
        if f.read(4) != b"GGUF":
            raise GgufError(f"{path.name} is not a GGUF file")
        (version,) = struct.unpack("<I", f.read(4))
        if version < 2:
            raise GgufError(f"{path.name}: GGUF version {version} is too old")
        _tensors, kv_count = struct.unpack("<QQ", f.read(16))
        meta: dict[str, Any] = {}
        for _ in range(kv_count):
            key = _string(f)
            (kind,) = struct.unpack("<I", f.read(4))
            value = _value(f, kind)
            if value is not None:
                meta[key] = value
        return meta


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
