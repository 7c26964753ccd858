"""A GGUF header that is corrupt or cut short is a GgufError (a ValueError the estimate
skips), never a MemoryError or struct.error that would fail /admin/status."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from gateway.memory.admission import kv_cache_bytes
from gateway.memory.gguf_meta import GgufError, read_gguf_metadata

HEADER = b"GGUF" + struct.pack("<IQQ", 3, 0, 1)


def string(text: bytes) -> bytes:
    return struct.pack("<Q", len(text)) + text


def test_a_valid_header_is_read(tmp_path: Path) -> None:
    path = tmp_path / "m.gguf"
    path.write_bytes(HEADER + string(b"general.name") + struct.pack("<I", 8) + string(b"tiny"))
    assert read_gguf_metadata(path) == {"general.name": "tiny"}


@pytest.mark.parametrize(
    "body",
    [
        struct.pack("<Q", 2**62),  # a string length no file has
        string(b"general.name"),  # the value's type is missing
        b"\x01",
    ],
    ids=["huge-string", "missing-type", "cut-short"],
)
def test_a_corrupt_or_short_header_is_a_gguf_error(tmp_path: Path, body: bytes) -> None:
    path = tmp_path / "m.gguf"
    path.write_bytes(HEADER + body)
    with pytest.raises(GgufError):
        read_gguf_metadata(path)
    assert kv_cache_bytes(path, 4096) == 0
