"""The counts taken at events, read back with Prometheus's own parser: finished requests
by model, route and status, and the fleet's events by their names (the integration tests
make the real events: tests/integration/gateway/test_metrics.py)."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from gateway.metrics.counters import RESTARTED_OUTSIDE, GatewayMetrics
from gateway.operations.outcome import FinishedRequest


def samples(metrics: GatewayMetrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = generate_latest(metrics.registry).decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def finished(status: int, model: str | None = "m", ttft: float | None = None) -> FinishedRequest:
    return FinishedRequest(
        id="req_1",
        model=model,
        requested="whatever the client wrote",
        route="/v1/chat/completions",
        status=status,
        stream=ttft is not None,
        client="127.0.0.1:1",
        started=0.0,
        duration_s=1.0,
        ttft_s=ttft,
        prompt_tokens=10 if model else None,
        completion_tokens=5 if model else None,
        error=None,
    )


def test_finished_requests_are_counted_with_bounded_labels() -> None:
    metrics = GatewayMetrics()
    metrics.request_finished(finished(200, ttft=0.2))
    metrics.request_finished(finished(200))
    metrics.request_finished(finished(404, model=None))
    got = samples(metrics)
    m = frozenset({"model": "m", "route": "/v1/chat/completions"}.items())
    assert got[("lmx_requests_total", m | {("status", "200")})] == 2
    assert (
        got[
            (
                "lmx_requests_total",
                frozenset({("model", ""), ("route", "/v1/chat/completions"), ("status", "404")}),
            )
        ]
        == 1
    )
    assert got[("lmx_request_duration_seconds_count", m)] == 2
    assert got[("lmx_time_to_first_token_seconds_count", m)] == 1
    assert got[("lmx_inter_token_latency_seconds_count", m)] == 1  # (1.0 - 0.2) / 4
    assert got[("lmx_inter_token_latency_seconds_sum", m)] == 0.2
    assert got[("lmx_prompt_tokens_total", m)] == 20
    assert got[("lmx_completion_tokens_total", m)] == 10
    assert not any("client wrote" in v for _, labels in got for _, v in labels)
    assert not any(name.endswith("_created") for name, _ in got)


def test_fleet_events_are_counted_by_name() -> None:
    metrics = GatewayMetrics()
    events = [
        ("load_start", {"model": "a"}),
        ("ready", {"model": "a", "pid": 1, "load_seconds": 1.5, "rss": 10}),
        ("load_failed", {"model": "b", "error": "no"}),
        ("evict", {"model": "a", "for_model": "b", "needed": 1}),
        ("unloaded", {"model": "a", "reason": "evicted to make room for b"}),
        ("crashed", {"model": "b", "state": "EXITED", "exit_status": 9}),
        ("restart_hung", {"model": "a", "pid": 1, "silent_s": 30.0}),
        ("adopt", {"model": "a", "pid": 2, "reason": RESTARTED_OUTSIDE}),
        ("adopt", {"model": "a", "reason": "started outside the gateway"}),
        ("config_reloaded", {"trigger": "post"}),
    ]
    for name, fields in events:
        metrics.fleet_event(name, fields)
    got = samples(metrics)

    def value(name: str, **labels: str) -> float:
        return got.get((name, frozenset(labels.items())), 0.0)

    assert value("lmx_model_loads_total", model="a", outcome="ready") == 1
    assert value("lmx_model_loads_total", model="b", outcome="failed") == 1
    assert value("lmx_model_load_duration_seconds_sum", model="a") == 1.5
    assert value("lmx_model_evictions_total", model="a") == 1
    assert value("lmx_model_unloads_total", model="a") == 1
    assert value("lmx_worker_crashes_total", model="b") == 1
    assert value("lmx_worker_restarts_total", model="a", reason="hung") == 1
    assert value("lmx_worker_restarts_total", model="a", reason="outside") == 1
