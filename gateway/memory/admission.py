"""Memory figures and the admission rule: will this model fit, and what must go first.

The rule: every loaded worker reserves max(its estimate, its measured RSS); everything
else on the machine counts as it is now. A new model is admitted when
    other processes + reservations + its estimate <= max_memory_percent of total.
Reserving the estimate (not just today's RSS) keeps a freshly loaded worker, whose KV
cache has not filled yet, from letting a second model in that would not fit later.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

from gateway.library.scan import gguf_parts
from gateway.memory.gguf_meta import read_gguf_metadata
from gateway.memory.probe import GB, SystemMemory


@dataclass(frozen=True)
class MemoryVerdict:
    fits: bool
    needed: int
    available: int
    limit: int

    def explain(self, model_id: str) -> str:
        return (
            f"not enough memory to load {model_id}: needs {self.needed / GB:.2f} GiB, "
            f"{max(0, self.available) / GB:.2f} GiB available under the "
            f"{self.limit / GB:.2f} GiB limit (memory.max_memory_percent)"
        )


def memory_limit(total: int, max_percent: float) -> int:
    """The bytes LMX may see in use: memory.max_memory_percent of the (presented) total."""
    return int(total * max_percent / 100)


def never_fits(needed: int, system: SystemMemory, max_percent: float) -> bool:
    """Larger than the limit on an empty machine: no wait and no eviction would help."""
    return needed > memory_limit(system.total, max_percent)


def admit(
    system: SystemMemory,
    max_percent: float,
    needed: int,
    reserved: int,
    workers_rss: int,
) -> MemoryVerdict:
    limit = memory_limit(system.total, max_percent)
    others = max(0, system.used - workers_rss)
    available = limit - others - reserved
    return MemoryVerdict(fits=needed <= available, needed=needed, available=available, limit=limit)


def weights_bytes(path: Path) -> int:
    if path.is_file():  # every shard of a split GGUF
        return sum(p.stat().st_size for p in gguf_parts(path) if p.is_file())
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return 0


def kv_cache_bytes(path: Path, context_length: int) -> int:
    """f16 K and V for every layer at the configured context, from the model's own metadata."""
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        return 0
    shape = _attention_shape(path, stamp)
    if shape is None:
        return 0
    layers, kv_heads, head_dim = shape
    return 2 * 2 * layers * kv_heads * head_dim * context_length


@functools.lru_cache(maxsize=64)
def _attention_shape(path: Path, stamp: int) -> tuple[int, int, int] | None:
    """Layers, KV heads, head width; cached per file version (`stamp`): a GGUF header
    read walks the whole vocabulary."""
    try:
        if path.is_file():
            meta = read_gguf_metadata(path)
            arch = str(meta.get("general.architecture", "llama"))
            layers = int(meta[f"{arch}.block_count"])
            heads = int(meta[f"{arch}.attention.head_count"])
            kv_heads = int(meta.get(f"{arch}.attention.head_count_kv", heads))
            width = int(meta[f"{arch}.embedding_length"])
        else:
            cfg = json.loads((path / "config.json").read_text())
            layers = int(cfg["num_hidden_layers"])
            heads = int(cfg["num_attention_heads"])
            kv_heads = int(cfg.get("num_key_value_heads", heads))
            width = int(cfg["hidden_size"])
    except (OSError, KeyError, ValueError, TypeError):
        return None
    return layers, kv_heads, width // max(1, heads)


def estimate_footprint(
    path: Path, context_length: int, overhead_gb: float, sequences: int = 1
) -> int:
    kv = kv_cache_bytes(path, context_length) * sequences
    return weights_bytes(path) + kv + int(overhead_gb * GB)
