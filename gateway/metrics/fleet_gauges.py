"""The gauges of a scrape, read when Prometheus asks from the same objects GET
/admin/status reads: each worker's status (gateway.fleet.worker_handle), the memory view
(gateway.routes.admin.memory_view) and the requests in flight. Nothing is copied ahead,
so a scrape and the dashboard cannot disagree.

The prompt cache's counts are the worker's own (its /health, polled by the fleet watch
every workers.health_interval_s): counters that restart from 0 with the worker, which
Prometheus's rate() takes as a counter reset.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.operations.requests import RequestState
from gateway.service import Gateway

MemoryView = Callable[[Gateway], dict[str, Any]]
_MEMORY = (
    ("total_bytes", "Memory of the machine (as presented: memory.total_gb)"),
    ("used_bytes", "Memory in use on the machine"),
    ("available_bytes", "Memory available on the machine"),
    ("threshold_bytes", "Admission's limit: memory.max_memory_percent of the total"),
    ("threshold_percent", "memory.max_memory_percent"),
)
_CACHE_COUNTS = (
    ("hits", "Prompts that reused cached tokens"),
    ("misses", "Prompts that found nothing cached"),
    ("tokens_reused", "Prompt tokens not prefilled again"),
)


class FleetCollector(Collector):
    def __init__(self, gateway: Gateway, memory_view: MemoryView) -> None:
        self.gateway = gateway
        self.memory_view = memory_view

    def collect(self) -> Iterable[Metric]:
        statuses = [w.status() for w in self.gateway.fleet.workers.values()]
        yield from _model_gauges(statuses, self._waiting_for_load())
        yield from _prompt_cache(statuses)
        yield from _memory(self.memory_view(self.gateway))

    def _waiting_for_load(self) -> Counter[str]:
        listing = self.gateway.operations.requests.listing()
        waiting = RequestState.WAITING_FOR_LOAD.value
        return Counter(r["model"] for r in listing if r["state"] == waiting)


def _model_gauges(statuses: list[dict[str, Any]], waiting: Counter[str]) -> Iterable[Metric]:
    state = GaugeMetricFamily(
        "lmx_model_state", "1 for each model's current state", labels=["model", "state"]
    )
    in_flight = _per_model("lmx_requests_in_flight", "Requests the gateway has sent the worker")
    queued = _per_model("lmx_requests_queued", "Requests the worker holds in its queue")
    loading = _per_model("lmx_requests_waiting_for_load", "Requests waiting for their model")
    rss = _per_model("lmx_worker_rss_bytes", "RSS of each running worker's process tree")
    for s in statuses:
        model = s["id"]
        state.add_metric([model, s["status"]], 1)
        in_flight.add_metric([model], s["in_flight"])
        queued.add_metric([model], s["queued"])
        loading.add_metric([model], waiting[model])
        if s["rss_bytes"]:
            rss.add_metric([model], s["rss_bytes"])
    return state, in_flight, queued, loading, rss


def _prompt_cache(statuses: list[dict[str, Any]]) -> Iterable[Metric]:
    counts = {
        key: CounterMetricFamily(f"lmx_prompt_cache_{key}", text, labels=["model"])
        for key, text in _CACHE_COUNTS
    }
    entries = _per_model("lmx_prompt_cache_entries", "Prompt states each worker holds in RAM")
    size = GaugeMetricFamily(
        "lmx_prompt_cache_bytes", "Each worker's prompt cache size", labels=["model", "tier"]
    )
    for s in statuses:
        cache = s["prompt_cache"]
        if cache is None:  # not running, or a backend without a prompt cache
            continue
        model = s["id"]
        for key, family in counts.items():
            family.add_metric([model], cache[key])
        entries.add_metric([model], cache["entries"])
        size.add_metric([model, "ram"], cache["ram_bytes"])
        size.add_metric([model, "disk"], cache["disk_bytes"])
    return [*counts.values(), entries, size]


def _memory(view: dict[str, Any]) -> Iterable[Metric]:
    for key, text in _MEMORY:
        yield GaugeMetricFamily(f"lmx_memory_{key}", text, value=view[key])
    estimate = _per_model("lmx_model_estimate_bytes", "What admission counts for each model")
    for w in view["workers"]:
        estimate.add_metric([w["id"]], w["estimate_bytes"])
    yield estimate


def _per_model(name: str, text: str) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, text, labels=["model"])
