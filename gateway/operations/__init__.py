"""What an operator sees and does beyond loading models: the requests in flight
(requests.py) and the last ones finished (history.py, outcome.py), the programs' logs
through supervisord (logs.py), and benchmarks through the gateway's own port
(benchmark.py, kept by benchmark_store.py)."""

from __future__ import annotations

import asyncio
import logging

from gateway.config.loader import Config
from gateway.metrics.counters import GatewayMetrics
from gateway.operations.benchmark_store import BenchmarkStore
from gateway.operations.history import RequestHistory
from gateway.operations.outcome import finished_request
from gateway.operations.requests import RequestRegistry, RequestTicket

BENCHMARKS_FILE = "benchmarks.json"
log = logging.getLogger("lmx.operations")


class Operations:
    def __init__(self, config: Config) -> None:
        self.history = RequestHistory(config.file.logging.history_size)
        self.capture_bodies = config.file.logging.capture_bodies
        self.metrics = GatewayMetrics()
        self.requests = RequestRegistry(self._finished)
        self.benchmarks = BenchmarkStore(config.run_dir / BENCHMARKS_FILE)
        self.benchmark_running = asyncio.Lock()  # one at a time: runs would skew each other
        # Set when the gateway begins to shut down (gateway.__main__): endless responses,
        # a log follow, end then instead of holding the shutdown until supervisord kills it.
        self.shutting_down = False

    def use_config(self, config: Config) -> None:
        capture = config.file.logging.capture_bodies
        if self.capture_bodies and not capture:
            self.history.forget_bodies()
        self.capture_bodies = capture
        self.history.resize(config.file.logging.history_size)

    def _finished(self, ticket: RequestTicket, ended: float) -> None:
        """One record of each finished request, for the history and the metrics alike."""
        try:
            done = finished_request(ticket, ended, self.capture_bodies)
            self.history.add(done)
            self.metrics.request_finished(done)
        except Exception:  # the client has its answer; a bookkeeping bug must not fail it
            log.exception("could not record request %s", ticket.id)
