"""What the machine has and what each worker holds: the seam through which tests present
a smaller or busier machine to the same code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import psutil

GB = 1024**3


@dataclass(frozen=True)
class SystemMemory:
    total: int
    available: int

    @property
    def used(self) -> int:
        return self.total - self.available


def default_prompt_cache_bytes(total_gb: float | None) -> int:
    """A worker's prompt cache when the config sets none: 5% of the (presented) machine,
    at most 4 GiB (about 90k tokens of an 8B model's f16 KV)."""
    total = int(total_gb * GB) if total_gb else psutil.virtual_memory().total
    return min(4 * GB, total // 20)


class MemoryProbe(Protocol):
    """The seam for tests: present a smaller (or busier) machine to the same code."""

    def system(self) -> SystemMemory: ...
    def tree_rss(self, pid: int) -> int: ...


class PsutilProbe:
    def __init__(self, total_override: int | None = None) -> None:
        self._total_override = total_override

    @classmethod
    def presenting(cls, total_gb: float | None) -> PsutilProbe:
        """The real machine, or the machine as memory.total_gb presents it."""
        return cls(int(total_gb * GB) if total_gb else None)

    def system(self) -> SystemMemory:
        vm = psutil.virtual_memory()
        if self._total_override is None:
            return SystemMemory(vm.total, vm.available)
        used = vm.total - vm.available
        return SystemMemory(self._total_override, max(0, self._total_override - used))

    def tree_rss(self, pid: int) -> int:
        return tree_rss(pid)


def tree_rss(pid: int) -> int:
    """RSS of a process and all its descendants (0 if it is gone)."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            continue
    return total
