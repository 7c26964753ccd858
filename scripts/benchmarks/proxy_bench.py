"""Section 1: what the gateway adds, against a scripted worker that answers at once.

Direct and gateway runs alternate, each measurement is repeated and the median kept:
the 2 cores are shared by the load generator, the gateway and the worker.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass
from typing import Any

import httpx
import psutil

from scripts.benchmarks import report
from scripts.benchmarks.load import run_load, stream_rate
from scripts.benchmarks.stacks import gateway_process, scripted_stack, worker_process, worker_url
from tests.integration.stack import Stack

STREAM_TOKENS = 2000
SCRIPTS = {
    "instant": {"default": "Hello from the benchmark.", "token_delay_s": 0.0},
    "long-stream": {"default": "tick " * STREAM_TOKENS, "token_delay_s": 0.0},
}
GOALS = {"added_p50_ms": 1.0, "rps_16": 0.90, "chunks": 0.95}


@dataclass(frozen=True)
class Case:
    key: str
    model: str
    stream: bool
    clients: int


CASES = [
    Case("whole_1", "instant", False, 1),
    Case("whole_16", "instant", False, 16),
    Case("stream_1", "long-stream", True, 1),
    Case("stream_16", "long-stream", True, 16),
]


def body(model: str, stream: bool) -> bytes:
    payload: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": STREAM_TOKENS if stream else 16,
        "stream": stream,
    }
    return json.dumps(payload).encode()


def run(quick: bool, cases: list[Case] = CASES) -> dict[str, Any]:
    seconds, repeats = (2.0, 1) if quick else (4.0, 3)
    with scripted_stack(SCRIPTS) as stack:
        return ProxyBench(stack, seconds).measure(repeats, cases)


def run_streams(quick: bool) -> dict[str, Any]:
    """Only the unpaced streams (section 6 reports their relay against its goal)."""
    return run(quick, [case for case in CASES if case.stream])


class ProxyBench:
    def __init__(self, stack: Stack, seconds: float) -> None:
        self.stack = stack
        self.seconds = seconds
        self.gateway = gateway_process(stack)
        self.workers = {model: worker_process(stack, model) for model in SCRIPTS}

    def measure(self, repeats: int, cases: list[Case]) -> dict[str, Any]:
        results: dict[str, Any] = {
            "chunks_per_stream": chunks_per_stream(self.stack.url),
            "seconds": self.seconds,
            "repeats": repeats,
        }
        for case in cases:
            results[case.key] = self._case(case, repeats)
        return results

    def _case(self, case: Case, repeats: int) -> dict[str, Any]:
        warm = Case(case.key, case.model, case.stream, min(case.clients, 4))
        self._once("direct", warm, 1.0)
        self._once("gateway", warm, 1.0)
        runs: dict[str, list[dict[str, float]]] = {"direct": [], "gateway": []}
        for _ in range(repeats):
            for target, found in runs.items():
                found.append(self._once(target, case, self.seconds))
        return {name: _median(measured) for name, measured in runs.items()}

    def _once(self, target: str, case: Case, seconds: float) -> dict[str, float]:
        """One run, with the CPU the gateway and the worker spent per request (or chunk)."""
        processes = (self.gateway, self.workers[case.model])
        before = [_cpu(p) for p in processes]
        found = self._load(target, case, seconds)
        spent = [_cpu(p) - b for p, b in zip(processes, before, strict=True)]
        count = max(1.0, found["count"])
        found["gateway_cpu_ms"], found["worker_cpu_ms"] = (x / count * 1e3 for x in spent)
        if case.stream:
            self._settle(case.model)
        return found

    def _load(self, target: str, case: Case, seconds: float) -> dict[str, float]:
        base = self.stack.url if target == "gateway" else worker_url(self.stack, case.model)
        url = base + "/v1/chat/completions"
        content = body(case.model, case.stream)
        if case.stream:
            rate = stream_rate(url, content, case.clients, seconds)
            return {"chunks_per_s": rate, "count": rate * seconds}
        load = run_load(url, content, case.clients, seconds)
        return {"rps": load.rps, "p50_ms": load.p50_ms, "p99_ms": load.p99_ms,
                "errors": load.errors, "count": load.requests}  # fmt: skip

    def _settle(self, model: str) -> None:
        """Streams cut off at the end of a run: wait until the worker has let them go, so
        one run's leftovers do not slow the next."""
        deadline = time.monotonic() + 15
        with httpx.Client(base_url=worker_url(self.stack, model), timeout=15) as client:
            while time.monotonic() < deadline and client.get("/health").json()["in_flight"]:
                time.sleep(0.05)


def chunks_per_stream(base_url: str) -> int:
    """SSE events in one long answer (the same direct and through the gateway)."""
    with httpx.Client(timeout=60, trust_env=False) as client:
        url = base_url + "/v1/chat/completions"
        content = body("long-stream", True)
        headers = {"content-type": "application/json"}
        with client.stream("POST", url, content=content, headers=headers) as reply:
            return sum(1 for line in reply.iter_lines() if line.startswith("data: "))


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


def _median(found: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(f[key] for f in found) for key in found[0]}


def text(results: dict[str, Any]) -> str:
    header = ["gateway vs direct worker (scripted)", "direct", "gateway", "versus", "goal", ""]
    title = (
        f"1. proxy cost: {results['chunks_per_stream']} SSE chunks per stream; "
        f"median of {results['repeats']} run(s) of {results['seconds']:g} s each"
    )
    return report.table(title, header, rows(results))


def rows(results: dict[str, Any]) -> list[list[str]]:
    """The table: direct, gateway, the comparison and whether it meets the goal."""
    w1, w16 = results["whole_1"], results["whole_16"]
    s1, s16 = results["stream_1"], results["stream_16"]
    added = w1["gateway"]["p50_ms"] - w1["direct"]["p50_ms"]
    goal = f"<= +{GOALS['added_p50_ms']:g} ms"
    return [
        _row("latency p50, 1 client (ms)", w1, "p50_ms", f"+{added:.2f} ms", added <= 1.0, goal),
        _row("latency p99, 1 client (ms)", w1, "p99_ms", "", None, ""),
        _ratio_row("requests/s, 1 client", w1, "rps", None),
        _ratio_row("requests/s, 16 clients", w16, "rps", GOALS["rps_16"]),
        _ratio_row("chunks/s, 1 stream", s1, "chunks_per_s", GOALS["chunks"]),
        _ratio_row("chunks/s, 16 streams", s16, "chunks_per_s", GOALS["chunks"]),
        _cpu_row("CPU ms/request, 16 clients: worker", w16, "worker_cpu_ms", 1.0),
        _cpu_row("CPU ms/request, 16 clients: gateway", w16, "gateway_cpu_ms", 1.0),
        _cpu_row("CPU us/chunk, 16 streams: worker", s16, "worker_cpu_ms", 1e3),
        _cpu_row("CPU us/chunk, 16 streams: gateway", s16, "gateway_cpu_ms", 1e3),
        _bound_row("ratio if one core's worth of CPU is all there is, 16 clients", w16),
        _bound_row("ratio if one core's worth of CPU is all there is, 16 streams", s16),
    ]


def _cpu_row(label: str, case: dict[str, Any], key: str, scale: float) -> list[str]:
    return [label, f"{case['direct'][key] * scale:.3f}", f"{case['gateway'][key] * scale:.3f}"]


def _bound_row(label: str, case: dict[str, Any]) -> list[str]:
    """When the cores are busy anyway, every CPU-second the gateway takes is one the
    worker does not get: direct worker cost over worker plus gateway cost."""
    direct = case["direct"]["worker_cpu_ms"]
    through = case["gateway"]["worker_cpu_ms"] + case["gateway"]["gateway_cpu_ms"]
    return [label, "", "", f"{direct / through:.2f}x" if through else ""]


def _row(
    label: str, case: dict[str, Any], key: str, versus: str, ok: bool | None, goal: str
) -> list[str]:
    verdict = "" if ok is None else ("ok" if ok else "MISSED")
    direct, gateway = case["direct"][key], case["gateway"][key]
    return [label, f"{direct:.2f}", f"{gateway:.2f}", versus, goal, verdict]


def _ratio_row(label: str, case: dict[str, Any], key: str, goal: float | None) -> list[str]:
    direct, gateway = case["direct"][key], case["gateway"][key]
    ratio = gateway / direct if direct else 0.0
    verdict = "" if goal is None else ("ok" if ratio >= goal else "MISSED")
    goal_text = "" if goal is None else f">= {goal:.2f}x"
    return [label, f"{direct:.0f}", f"{gateway:.0f}", f"{ratio:.2f}x", goal_text, verdict]
