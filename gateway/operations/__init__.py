"""What an operator sees and does beyond loading models: the requests in flight
(requests.py), the programs' logs through supervisord (logs.py), and benchmarks through
the gateway's own port (benchmark.py, kept by benchmark_store.py)."""

from __future__ import annotations

import asyncio

from gateway.config.loader import Config
from gateway.operations.benchmark_store import BenchmarkStore
from gateway.operations.requests import RequestRegistry

BENCHMARKS_FILE = "benchmarks.json"


class Operations:
    def __init__(self, config: Config) -> None:
        self.requests = RequestRegistry()
        self.benchmarks = BenchmarkStore(config.run_dir / BENCHMARKS_FILE)
        self.benchmark_running = asyncio.Lock()  # one at a time: runs would skew each other
        # Set when the gateway begins to shut down (gateway.__main__): endless responses,
        # a log follow, end then instead of holding the shutdown until supervisord kills it.
        self.shutting_down = False
