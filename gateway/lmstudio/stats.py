"""LM Studio's `stats` for one answer, from the gateway's own timing of the worker's
stream: what the prediction cost, in seconds, and why it stopped (in the stop-reason
names of LM Studio's SDK)."""

from __future__ import annotations

from typing import Any

from gateway.proxy.fold import ChunkFold
from gateway.proxy.timing import Timing

Json = dict[str, Any]


def stats(timing: Timing, fold: ChunkFold) -> Json:
    tokens = int((fold.usage or {}).get("completion_tokens") or 0)
    generation = timing.generation_s
    return {
        "tokens_per_second": tokens / generation if generation > 0 else 0.0,
        "time_to_first_token": round(timing.prompt_s, 3),
        "generation_time": round(generation, 3),
        "stop_reason": stop_reason(fold),
    }


def stop_reason(fold: ChunkFold) -> str:
    if fold.finish_reason == "length":
        return "maxPredictedTokensReached"
    if fold.finish_reason == "tool_calls":
        return "toolCalls"
    if fold.stop_sequence is not None:
        return "stopStringFound"
    return "eosFound"
