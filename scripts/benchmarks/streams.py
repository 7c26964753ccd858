"""One streamed generation, timed: time to first token and decode speed after it."""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any

from scripts.benchmarks.sse_client import StreamClient

PROMPT = "Write a long story about a lighthouse keeper and the sea."
MESSAGES = [{"role": "user", "content": PROMPT}]


def messages(salt: str | None = None) -> list[dict[str, str]]:
    """The benchmark's prompt; a salt at its start makes a prompt no cache holds."""
    return MESSAGES if salt is None else [{"role": "user", "content": f"({salt}) {PROMPT}"}]


@dataclass(frozen=True)
class Sample:
    ttft_s: float
    tokens: int
    decode_s: float  # from the first token to the last

    @property
    def decode_tps(self) -> float:
        return (self.tokens - 1) / self.decode_s if self.tokens > 1 and self.decode_s else 0.0


class Clock:
    """Feed it each piece of generated text as it arrives; it keeps the timings."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.first: float | None = None
        self.last = self.started
        self.pieces = 0

    def piece(self) -> None:
        now = time.perf_counter()
        self.first = self.first if self.first is not None else now
        self.last = now
        self.pieces += 1

    def sample(self, tokens: int | None = None) -> Sample:
        first = self.first if self.first is not None else self.last
        return Sample(first - self.started, tokens or self.pieces, self.last - first)


def chat_payload(max_tokens: int, model: str | None, salt: str | None = None) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "messages": messages(salt),
        "temperature": 0,
        "max_tokens": max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if model is not None:
        payload["model"] = model
    return payload


def http_stream(
    base_url: str,
    max_tokens: int,
    model: str | None,
    timeout: float = 300,
    salt: str | None = None,
) -> Sample:
    """Stream one chat completion; tokens from `usage` when the server sends it.

    The connection is open before the clock starts, as a client's kept-alive one would be.
    """
    usage: int | None = None
    payload = chat_payload(max_tokens, model, salt)
    with StreamClient(base_url, timeout) as client:
        clock = Clock()
        for chunk in client.events("/v1/chat/completions", payload):
            if chunk.get("usage"):
                usage = chunk["usage"].get("completion_tokens")
            choices = chunk.get("choices") or [{}]
            if (choices[0].get("delta") or {}).get("content"):
                clock.piece()
    return clock.sample(usage)


def summary(samples: list[Sample]) -> dict[str, float]:
    return {
        "ttft_ms": statistics.median(s.ttft_s for s in samples) * 1e3,
        "decode_tps": statistics.median(s.decode_tps for s in samples),
        "tokens": statistics.median(s.tokens for s in samples),
        "runs": len(samples),
    }


def samples_json(samples: list[Sample]) -> str:
    return json.dumps([asdict(s) for s in samples])
