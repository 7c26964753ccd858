"""The counts taken as things happen: each finished request (gateway.operations.outcome)
and each fleet event the gateway logs (gateway.events: loads, evictions, crashes,
restarts, unloads).

Labels stay bounded: model ids of the model set, the model routes' paths, HTTP status
codes and a few fixed words; never a request id or anything a client wrote. A request
that reached no model (an unknown model, a bad body) has the model label "".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from gateway.operations.outcome import FinishedRequest

# The `_created` series double a scrape's size, and nothing here reads them.
prometheus_client.disable_created_metrics()

REQUEST_LABELS = ("model", "route")
TTFT_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
INTER_TOKEN_BUCKETS = (0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1)
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
LOAD_BUCKETS = (0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300)
# gateway.fleet.watch: a worker whose pid changed under the gateway (memwatch, supervisorctl).
RESTARTED_OUTSIDE = "restarted outside the gateway"


@dataclass(frozen=True, slots=True)
class _RequestChildren:
    duration: Histogram
    ttft: Histogram
    inter_token: Histogram
    prompt_tokens: Counter
    completion_tokens: Counter


class GatewayMetrics(Collector):
    """Its own CollectorRegistry, never prometheus_client's global one: two gateways in
    one process (as in tests) count apart, and nothing else leaks into a scrape."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        self.requests = Counter(
            "lmx_requests",
            "Requests to model routes, by the model that answered, route and final status",
            [*REQUEST_LABELS, "status"],
            registry=r,
        )
        self.duration = Histogram(
            "lmx_request_duration_seconds",
            "Arrival to last byte of each request to a model route",
            REQUEST_LABELS,
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "lmx_time_to_first_token_seconds",
            "Arrival to the first output token, for answers the worker streamed",
            REQUEST_LABELS,
            buckets=TTFT_BUCKETS,
            registry=r,
        )
        self.inter_token = Histogram(
            "lmx_inter_token_latency_seconds",
            "Mean gap between a streamed answer's tokens after the first, one per request",
            REQUEST_LABELS,
            buckets=INTER_TOKEN_BUCKETS,
            registry=r,
        )
        self.prompt_tokens = Counter(
            "lmx_prompt_tokens",
            "Prompt tokens, as the workers count them",
            REQUEST_LABELS,
            registry=r,
        )
        self.completion_tokens = Counter(
            "lmx_completion_tokens",
            "Generated tokens, as the workers count them",
            REQUEST_LABELS,
            registry=r,
        )
        self.loads = Counter(
            "lmx_model_loads",
            "Model loads that ended, by outcome (ready, failed)",
            ["model", "outcome"],
            registry=r,
        )
        self.load_duration = Histogram(
            "lmx_model_load_duration_seconds",
            "Start of a load to the worker ready",
            ["model"],
            buckets=LOAD_BUCKETS,
            registry=r,
        )
        self.evictions = Counter(
            "lmx_model_evictions",
            "Models unloaded to make room for another",
            ["model"],
            registry=r,
        )
        self.unloads = Counter(
            "lmx_model_unloads",
            "Workers stopped (evicted, idle, asked, or stopped outside)",
            ["model"],
            registry=r,
        )
        self.crashes = Counter(
            "lmx_worker_crashes", "Ready workers found exited", ["model"], registry=r
        )
        self.restarts = Counter(
            "lmx_worker_restarts",
            "Workers restarted: hung (no /health, restarted by the gateway) or outside "
            "(a new process under the gateway: memwatch, supervisorctl)",
            ["model", "reason"],
            registry=r,
        )

        # Each label set's children, looked up once: labels() is most of a request's cost.
        self._children: dict[tuple[str, str], _RequestChildren] = {}
        self._statuses: dict[tuple[str, str, int], Counter] = {}

    def collect(self) -> Iterable[Metric]:
        return self.registry.collect()

    def request_finished(self, done: FinishedRequest) -> None:
        labels = (done.model or "", done.route)
        children = self._children.get(labels)
        if children is None:
            children = self._children[labels] = self._new_children(labels)
        self._requests_child(labels, done.status).inc()
        children.duration.observe(done.duration_s)
        if done.ttft_s is not None:
            children.ttft.observe(done.ttft_s)
        if done.inter_token_s is not None:
            children.inter_token.observe(done.inter_token_s)
        if done.prompt_tokens:
            children.prompt_tokens.inc(done.prompt_tokens)
        if done.completion_tokens:
            children.completion_tokens.inc(done.completion_tokens)

    def _new_children(self, labels: tuple[str, str]) -> _RequestChildren:
        return _RequestChildren(
            self.duration.labels(*labels),
            self.ttft.labels(*labels),
            self.inter_token.labels(*labels),
            self.prompt_tokens.labels(*labels),
            self.completion_tokens.labels(*labels),
        )

    def _requests_child(self, labels: tuple[str, str], status: int) -> Counter:
        key = (*labels, status)
        child = self._statuses.get(key)
        if child is None:
            child = self._statuses[key] = self.requests.labels(*labels, str(status))
        return child

    def fleet_event(self, event: str, fields: dict[str, Any]) -> None:
        """A listener of gateway.events: counts what the fleet logs, by the event's name."""
        model = fields.get("model")
        if not isinstance(model, str):
            return
        if event == "ready":
            self.loads.labels(model, "ready").inc()
            seconds = fields.get("load_seconds")
            if isinstance(seconds, int | float):
                self.load_duration.labels(model).observe(seconds)
        elif event == "load_failed":
            self.loads.labels(model, "failed").inc()
        elif event == "evict":
            self.evictions.labels(model).inc()
        elif event == "unloaded":
            self.unloads.labels(model).inc()
        elif event == "crashed":
            self.crashes.labels(model).inc()
        elif event == "restart_hung":
            self.restarts.labels(model, "hung").inc()
        elif event == "adopt" and fields.get("reason") == RESTARTED_OUTSIDE:
            self.restarts.labels(model, "outside").inc()
