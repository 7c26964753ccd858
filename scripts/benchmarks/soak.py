"""./scripts/soak: many clients for a while against both real models, with a worker
killed every minute. Bounded (default 10 minutes) and loopback only.

It reports requests and errors by kind, and the gateway's and each worker's RSS at the
start and the end; it exits non-zero on an unexplained error or when the gateway's RSS
grew more than 5%. Explained: 429 (a full queue) and the 502/503s and stream error events
of requests that a killed worker was serving or that waited for its reload.

python -m scripts.benchmarks.soak [--minutes M] [--clients N]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import random
import signal
import sys
import time
from typing import Any

import httpx
import psutil

from scripts.benchmarks.stacks import LLAMA_ID, MLX_ID, real_stack, worker_process
from tests.integration.stack import Stack

EXPLAINED = {429, 502, 503}
MAX_GROWTH = 0.05
KILL_EVERY_S = 60.0
WARM_UP_S = 45.0


class Tally:
    def __init__(self) -> None:
        self.requests = 0
        self.kinds: collections.Counter[str] = collections.Counter()
        self.unexplained: list[str] = []

    def record(self, kind: str, explained: bool, detail: str = "") -> None:
        self.requests += 1
        self.kinds[kind] += 1
        if not explained:
            self.unexplained.append(f"{kind}: {detail[:200]}")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    with real_stack([LLAMA_ID, MLX_ID], auto_load=True) as stack:
        tally, start_rss = Tally(), {}
        asyncio.run(_soak(stack, args.minutes * 60, args.clients, tally, start_rss))
        end_rss = _rss(stack)
    return _report(tally, start_rss, end_rss, args)


async def _soak(
    stack: Stack, seconds: float, clients: int, tally: Tally, start_rss: dict[str, int]
) -> None:
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=clients * 2)
    async with httpx.AsyncClient(base_url=stack.url, timeout=300, limits=limits) as http:
        workers = [asyncio.create_task(_client(http, deadline, tally)) for _ in range(clients)]
        killer = asyncio.create_task(_killer(stack, deadline, tally))
        # "Start" is after a warm-up under load: connections, pools and caches settled.
        await asyncio.sleep(min(WARM_UP_S, seconds / 4))
        start_rss.update(await asyncio.to_thread(_rss, stack))
        await asyncio.gather(*workers, killer)


async def _client(http: httpx.AsyncClient, deadline: float, tally: Tally) -> None:
    while time.monotonic() < deadline:
        model = LLAMA_ID if random.random() < 0.85 else MLX_ID
        operation = random.choice(_OPERATIONS)
        try:
            await operation(http, model, tally)
        except httpx.TimeoutException as exc:
            tally.record("timeout", False, repr(exc))
        except httpx.HTTPError as exc:
            tally.record("connection", False, repr(exc))


async def _killer(stack: Stack, deadline: float, tally: Tally) -> None:
    while time.monotonic() + KILL_EVERY_S < deadline:
        await asyncio.sleep(KILL_EVERY_S)
        model = random.choice([LLAMA_ID, MLX_ID])
        try:
            os.kill(worker_process(stack, model).pid, signal.SIGKILL)
            tally.kinds[f"killed {model}"] += 1
        except (IndexError, ProcessLookupError):
            tally.kinds[f"kill skipped ({model} not running)"] += 1


def _max_tokens(model: str) -> int:
    return 16 if model == LLAMA_ID else 3  # MLX decodes a few tokens a second here


def _messages() -> list[dict[str, str]]:
    return [{"role": "user", "content": random.choice(["Hi.", "Name a color.", "2+2?"])}]


async def _chat(http: httpx.AsyncClient, model: str, tally: Tally) -> None:
    body = {"model": model, "messages": _messages(), "max_tokens": _max_tokens(model)}
    response = await http.post("/v1/chat/completions", json=body)
    _whole("chat", response, tally)


async def _chat_stream(http: httpx.AsyncClient, model: str, tally: Tally) -> None:
    body = {"model": model, "messages": _messages(), "max_tokens": _max_tokens(model)}
    await _stream(http, "/v1/chat/completions", {**body, "stream": True}, "chat stream", tally)


async def _completion(http: httpx.AsyncClient, model: str, tally: Tally) -> None:
    body = {"model": model, "prompt": "Once upon a time", "max_tokens": _max_tokens(model)}
    _whole("completion", await http.post("/v1/completions", json=body), tally)


async def _embedding(http: httpx.AsyncClient, model: str, tally: Tally) -> None:
    body = {"model": model, "input": ["soak", "test"]}
    _whole("embedding", await http.post("/v1/embeddings", json=body), tally)


async def _messages_call(http: httpx.AsyncClient, model: str, tally: Tally) -> None:
    body = {"model": model, "max_tokens": _max_tokens(model), "messages": _messages()}
    if random.random() < 0.5:
        _whole("messages", await http.post("/v1/messages", json=body), tally)
    else:
        await _stream(http, "/v1/messages", {**body, "stream": True}, "messages stream", tally)


def _whole(name: str, response: httpx.Response, tally: Tally) -> None:
    status = response.status_code
    tally.record(f"{name} {status}", status == 200 or status in EXPLAINED, response.text)


async def _stream(
    http: httpx.AsyncClient, path: str, body: dict[str, Any], name: str, tally: Tally
) -> None:
    async with http.stream("POST", path, json=body) as response:
        text = (await response.aread()).decode(errors="replace")
    status = response.status_code
    failed_mid_stream = status == 200 and '"error"' in text
    kind = f"{name} {status}" + (" error event" if failed_mid_stream else "")
    # A stream cut by a worker's death ends with an error event: explained by the kill.
    tally.record(kind, status == 200 or status in EXPLAINED, text[-300:])


_OPERATIONS = [_chat, _chat_stream, _completion, _embedding, _messages_call]


def _rss(stack: Stack) -> dict[str, int]:
    found = {}
    for name, match in (
        ("gateway", " -m gateway"),
        *((m, f"/{m}.json") for m in (LLAMA_ID, MLX_ID)),
    ):
        pids = stack.pids(lambda cmd, match=match: cmd.endswith(match) or f"{match} " in cmd)
        found[name] = sum(_process_rss(pid) for pid in pids)
    return found


def _process_rss(pid: int) -> int:
    try:
        return int(psutil.Process(pid).memory_info().rss)
    except psutil.Error:
        return 0


def _report(tally: Tally, start: dict[str, int], end: dict[str, int], args: Any) -> int:
    print(f"soak: {args.minutes:g} min, {args.clients} clients, {tally.requests} requests")
    for kind, count in sorted(tally.kinds.items()):
        print(f"  {kind:40s} {count}")
    print("RSS MiB at start and end (workers are killed and restarted along the way):")
    for name in start:
        print(f"  {name:20s} {start[name] / 2**20:8.1f} {end[name] / 2**20:8.1f}")
    growth = (end["gateway"] - start["gateway"]) / max(1, start["gateway"])
    print(f"gateway RSS growth: {growth:+.1%} (limit {MAX_GROWTH:.0%})")
    record = {"requests": tally.requests, "kinds": tally.kinds, "rss_start": start}
    record |= {"rss_end": end, "unexplained": tally.unexplained[:50]}
    print(json.dumps(record, default=dict)[:2000])
    if tally.unexplained:
        print(f"UNEXPLAINED ERRORS: {len(tally.unexplained)}; first: {tally.unexplained[0]}")
        return 1
    if growth > MAX_GROWTH:
        print("the gateway's RSS grew past the limit")
        return 1
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="scripts/soak", description=__doc__)
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--clients", type=int, default=16)
    return p


if __name__ == "__main__":
    sys.exit(main())
