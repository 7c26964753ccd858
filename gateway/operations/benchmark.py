"""`POST /admin/benchmark`: time to first token and tokens/s, measured through the
gateway's own port over loopback. A run is a streamed chat request like any client's
(keys, browser guard, routing, proxy, relay), and shows in /admin/requests as one.

The model is loaded before the first run, so no run's time to first token is a load.
All runs send the same prompt: after the first, the worker's prompt cache may hold it,
which is what a repeated prompt costs in real use too.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import statistics
import time
from dataclasses import dataclass
from typing import Any

import httpx

from gateway.config.loader import Config
from gateway.fleet.fleet import Fleet
from gateway.proxy.forward import order_chain
from gateway.routing import Route
from workers.contract import headers
from workers.contract.errors import ApiError, bad_request
from workers.contract.sse import sse_payloads

PROMPT_DEFAULT = "Write a short story about a lighthouse keeper who finds a message in a bottle."
# name: (default, largest allowed); the smallest is 1.
_COUNTS = {"max_tokens": (128, 4096), "runs": (3, 20), "concurrency": (1, 8)}
_FIELDS = frozenset({"model", "prompt", *_COUNTS})


@dataclass(frozen=True)
class BenchmarkSpec:
    model: str
    prompt: str
    max_tokens: int
    runs: int
    concurrency: int

    @classmethod
    def parse(cls, payload: dict[str, Any]) -> BenchmarkSpec:
        for name in payload:
            if name not in _FIELDS:
                raise bad_request(f"unknown field `{name}`", param=name)
        model = payload.get("model")
        if not isinstance(model, str) or not model:
            raise bad_request("`model` is required and must be a string", param="model")
        prompt = payload.get("prompt", PROMPT_DEFAULT)
        if not isinstance(prompt, str) or not prompt.strip():
            raise bad_request("`prompt` must be a non-empty string", param="prompt")
        counts = {name: _count(payload, name) for name in _COUNTS}
        return cls(model, prompt, **counts)

    def body(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "messages": [{"role": "user", "content": self.prompt}],
            "max_tokens": self.max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
        }


def _count(payload: dict[str, Any], name: str) -> int:
    default, most = _COUNTS[name]
    value = payload.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
        raise bad_request(f"`{name}` must be a whole number from 1 to {most}", param=name)
    return value


@dataclass(frozen=True)
class SelfTarget:
    """The gateway's own port, as a client on this machine reaches it."""

    url: str
    headers: dict[str, str]
    timeout: httpx.Timeout

    @classmethod
    def of(cls, config: Config) -> SelfTarget:
        g = config.file.gateway
        keys = config.file.security.api_keys
        auth = {"authorization": f"Bearer {keys[0]}"} if keys else {}
        timeout = httpx.Timeout(60, connect=g.connect_timeout_s, read=g.read_timeout_s)
        return cls(f"http://{_loopback(g.host)}:{g.port}", auth, timeout)


def _loopback(host: str) -> str:
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


@dataclass(frozen=True)
class Run:
    model: str
    prompt_tokens: int
    ttft_s: float
    tokens: int
    duration_s: float

    @property
    def tokens_per_s(self) -> float:
        """Decode speed: the tokens after the first, over the time after the first."""
        decoding = self.duration_s - self.ttft_s
        return (self.tokens - 1) / decoding if self.tokens > 1 and decoding > 0 else 0.0

    def view(self) -> dict[str, Any]:
        return {
            "ttft_ms": round(self.ttft_s * 1000, 1),
            "tokens": self.tokens,
            "tokens_per_s": round(self.tokens_per_s, 2),
            "duration_ms": round(self.duration_s * 1000, 1),
        }


async def load_first(fleet: Fleet, route: Route) -> None:
    """Make the model that will answer ready, in the proxy's order (a fallback as well)."""
    last: ApiError | None = None
    for model_id in order_chain(fleet, route):
        try:
            await fleet.ensure_ready(model_id)
            return
        except ApiError as exc:
            last = exc
    raise last or ApiError(503, f"no model of {route.requested!r} could load")


async def run_benchmark(spec: BenchmarkSpec, target: SelfTarget) -> dict[str, Any]:
    started = time.perf_counter()
    limit = asyncio.Semaphore(spec.concurrency)
    async with httpx.AsyncClient(
        base_url=target.url, headers=target.headers, timeout=target.timeout, trust_env=False
    ) as client:

        async def one() -> Run:
            async with limit:
                return await _run_once(client, spec)

        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(one()) for _ in range(spec.runs)]
        except ExceptionGroup as failed:  # the other runs were cancelled
            raise _first_error(failed) from None
    return _result(spec, [t.result() for t in tasks], time.perf_counter() - started)


async def _run_once(client: httpx.AsyncClient, spec: BenchmarkSpec) -> Run:
    started = time.perf_counter()
    first: float | None = None
    chunks = 0
    usage: dict[str, Any] = {}
    try:
        async with client.stream("POST", "/v1/chat/completions", json=spec.body()) as response:
            if response.status_code != 200:
                raise _refusal(response.status_code, await response.aread())
            async for chunk in sse_payloads(response.aiter_lines()):
                if "error" in chunk:
                    raise _stream_error(chunk["error"])
                usage = chunk.get("usage") or usage
                if _has_output(chunk):
                    chunks += 1
                    if first is None:
                        first = time.perf_counter()
    except httpx.HTTPError as exc:
        raise ApiError(502, f"a benchmark run failed: {exc!r}", code="benchmark_failed") from None
    except ValueError as exc:
        raise ApiError(502, f"a benchmark run got a malformed event: {exc}") from None
    duration = time.perf_counter() - started
    return Run(
        model=response.headers.get(headers.MODEL, spec.model),
        prompt_tokens=int(usage.get("prompt_tokens", 0)),
        ttft_s=(first - started) if first is not None else duration,
        tokens=int(usage.get("completion_tokens", chunks)),
        duration_s=duration,
    )


def _has_output(chunk: dict[str, Any]) -> bool:
    for choice in chunk.get("choices") or []:
        delta = choice.get("delta") or {}
        if delta.get("content") or delta.get("reasoning_content") or delta.get("tool_calls"):
            return True
    return False


def _refusal(status: int, body: bytes) -> ApiError:
    """The gateway's own refusal of a run (a failed load, a full queue), passed on as is."""
    try:
        error = json.loads(body)["error"]
        return ApiError(status, str(error["message"]), error.get("code"), error.get("param"))
    except (ValueError, KeyError, TypeError):
        return ApiError(status, f"a benchmark run was refused: HTTP {status}")


def _stream_error(error: Any) -> ApiError:
    details = error if isinstance(error, dict) else {}
    message = details.get("message", "unknown error")
    return ApiError(502, f"a benchmark run failed mid-stream: {message}", details.get("code"))


def _first_error(group: BaseExceptionGroup[Any]) -> BaseException:
    for error in group.exceptions:
        if isinstance(error, BaseExceptionGroup):
            return _first_error(error)
        return error
    return ApiError(500, "a benchmark run failed")


def _result(spec: BenchmarkSpec, runs: list[Run], wall_s: float) -> dict[str, Any]:
    ttfts = [r.ttft_s * 1000 for r in runs]
    result: dict[str, Any] = {
        "id": "bench_" + secrets.token_hex(6),
        "model": runs[0].model,
        "created": int(time.time()),
        "prompt_tokens": runs[0].prompt_tokens,
        "max_tokens": spec.max_tokens,
        "concurrency": spec.concurrency,
        "runs": [r.view() for r in runs],
        "summary": {
            "ttft_ms_p50": round(statistics.median(ttfts), 1),
            "ttft_ms_max": round(max(ttfts), 1),
            "tokens_per_s_mean": round(statistics.mean(r.tokens_per_s for r in runs), 2),
            "total_tokens_per_s": round(sum(r.tokens for r in runs) / wall_s, 2),
        },
    }
    if runs[0].model != spec.model:
        result["requested"] = spec.model
    return result
