"""How many threads a llama.cpp context may use right now.

llama.cpp's threads meet at a spinning barrier after every graph node. With more threads
than free cores, one of them is always descheduled and the others spin for its whole
time slice: on 2 cores with one other busy process, 2 threads fell from ~79 to under
1 token/s here, while 1 thread kept ~26. So a context uses at most the cores that are
free: its share among this worker's active contexts, minus what other processes (other
workers, anything else) are using, measured over the last half second.

The measurement runs in the background (start()): sampled only when a request asks, the
first request after a quiet spell would see an average since the previous request, and a
burst elsewhere that had already ended (another model's answer) would keep it on one
thread for its first half second.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

import psutil

REFRESH_S = 0.5

# (busy CPU seconds of the whole machine, busy CPU seconds of this process), cumulative.
CpuSampler = Callable[[], tuple[float, float]]


def cpu_seconds() -> tuple[float, float]:
    system = psutil.cpu_times()
    busy = sum(system) - system.idle - getattr(system, "iowait", 0.0)
    own = psutil.Process().cpu_times()
    return busy, own.user + own.system


class CoreBudget:
    def __init__(
        self,
        physical_cores: int | None = None,
        sample: CpuSampler = cpu_seconds,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.physical = physical_cores or psutil.cpu_count(logical=False) or os.cpu_count() or 1
        self._cpu_seconds = sample
        self._clock = clock
        self._lock = threading.Lock()
        self.others_busy = 0.0  # cores other processes kept busy lately
        self._last = self._sample()
        self._stopped = threading.Event()
        self._sampler: threading.Thread | None = None

    def start(self) -> None:
        """Keep the measurement fresh from now on (a daemon thread, twice a second)."""
        if self._sampler is None:
            self._sampler = threading.Thread(
                target=self._sample_until_stopped, name="core-budget", daemon=True
            )
            self._sampler.start()

    def stop(self) -> None:
        self._stopped.set()

    def threads(self, active_contexts: int) -> int:
        self._refresh()
        share = self.physical // max(1, active_contexts)
        free = round(self.physical - self.others_busy)
        return max(1, min(share, free))

    def _refresh(self) -> None:
        if self._clock() - self._last[0] < REFRESH_S:
            return  # called every token: sample the CPU counters only twice a second
        with self._lock:
            now = self._sample()
            elapsed = now[0] - self._last[0]
            if elapsed < REFRESH_S:
                return  # another context refreshed meanwhile
            busy_everywhere = (now[1] - self._last[1]) / elapsed
            busy_here = (now[2] - self._last[2]) / elapsed
            self.others_busy = max(0.0, busy_everywhere - busy_here)
            self._last = now

    def _sample_until_stopped(self) -> None:
        while not self._stopped.wait(REFRESH_S):
            self._refresh()

    def _sample(self) -> tuple[float, float, float]:
        busy, own = self._cpu_seconds()
        return self._clock(), busy, own
