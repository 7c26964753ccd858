"""A worker's OpenAI stream as Ollama's answer objects: one per piece, then a last one
with `done: true`, the `done_reason` and the timings (nanoseconds), when the client
streams (newline-delimited JSON); only that last one, holding the whole answer, when not.

Ollama sends tool calls whole, never as fragments, so they are gathered and sent in one
object before the last. Thinking comes as `thinking`, apart from the content.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any, Literal

from gateway.anthropic.responses import tool_input
from gateway.proxy.fold import ChunkFold
from gateway.proxy.timing import Timing

Json = dict[str, Any]
Kind = Literal["chat", "generate"]


def created_at() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def nanoseconds(seconds: float) -> int:
    return max(0, math.floor(seconds * 1e9))


class OllamaAnswer:
    def __init__(self, kind: Kind, model: str, stream: bool, timing: Timing) -> None:
        self.kind = kind
        self.model = model
        self.stream = stream
        self.timing = timing
        self.fold = ChunkFold()

    def feed(self, chunk: Json) -> list[Json]:
        """What to send for one worker chunk: its text and thinking, when streaming."""
        if self.fold.feed(chunk):
            self.timing.token()
        if not self.stream:
            return []
        pieces = []
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            text = delta.get("content") or choice.get("text") or ""
            thinking = delta.get("reasoning_content") or ""
            if choice.get("index", 0) == 0 and (text or thinking):
                pieces.append(self.piece(text, thinking))
        return pieces

    def finish(self) -> list[Json]:
        """The tool calls (streaming), then the last object."""
        self.timing.finish()
        calls = [_tool_call(i, call) for i, call in sorted(self.fold.calls.items())]
        if self.kind != "chat":
            calls = []  # /api/generate takes no tools
        if self.stream:
            head = [self.piece("", "", calls)] if calls else []
            return [*head, self._last(self.piece("", ""))]
        text, thinking = "".join(self.fold.text), "".join(self.fold.reasoning)
        return [self._last(self.piece(text, thinking, calls))]

    def piece(self, text: str, thinking: str, calls: list[Json] | None = None) -> Json:
        answer: Json = {"model": self.model, "created_at": created_at()}
        if self.kind == "chat":
            message: Json = {"role": "assistant", "content": text}
            if thinking:
                message["thinking"] = thinking
            if calls:
                message["tool_calls"] = calls
            answer["message"] = message
        else:
            answer["response"] = text
            if thinking:
                answer["thinking"] = thinking
        answer["done"] = False
        return answer

    def _last(self, answer: Json) -> Json:
        usage = self.fold.usage or {}
        t = self.timing
        return {
            **answer,
            "done": True,
            "done_reason": "length" if self.fold.finish_reason == "length" else "stop",
            "total_duration": nanoseconds(t.total_s),
            "load_duration": nanoseconds(t.load_s),
            "prompt_eval_count": int(usage.get("prompt_tokens") or 0),
            "prompt_eval_duration": nanoseconds(t.prompt_s),
            "eval_count": int(usage.get("completion_tokens") or 0),
            "eval_duration": nanoseconds(t.generation_s),
        }


def load_answer(kind: str, model: str, reason: Literal["load", "unload"]) -> Json:
    """What a request with nothing to generate gets once the model is (un)loaded."""
    if kind == "embed":
        return {"model": model, "embeddings": []}
    if kind == "embeddings":
        return {"embedding": []}
    answer: Json = {"model": model, "created_at": created_at()}
    if kind == "chat":
        answer["message"] = {"role": "assistant", "content": ""}
    else:
        answer["response"] = ""
    return {**answer, "done": True, "done_reason": reason}


def embed_answer(kind: str, model: str, answer: Json, dimensions: int | None, t: Timing) -> Json:
    vectors = [_cut(item["embedding"], dimensions) for item in answer["data"]]
    if kind == "embeddings":
        return {"embedding": vectors[0]}
    return {
        "model": model,
        "embeddings": vectors,
        "total_duration": nanoseconds(t.total_s),
        "load_duration": nanoseconds(t.load_s),
        "prompt_eval_count": int((answer.get("usage") or {}).get("prompt_tokens") or 0),
    }


def _cut(vector: list[float], dimensions: int | None) -> list[float]:
    """The first `dimensions` values, normalised again, as Ollama's `dimensions` does."""
    if dimensions is None or dimensions >= len(vector):
        return vector
    head = vector[:dimensions]
    norm = math.sqrt(sum(x * x for x in head)) or 1.0
    return [x / norm for x in head]


def _tool_call(index: int, call: Json) -> Json:
    function = call["function"]
    name = function["name"]
    return {
        "id": call["id"],
        "function": {
            "index": index,
            "name": name,
            "arguments": tool_input(function["arguments"], name),
        },
    }
