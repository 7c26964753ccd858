"""OpenAI chat.completion.chunk objects, re-framed as Anthropic's streaming events.

Anthropic streams one content block at a time: each opens, takes deltas of its own kind
and closes before the next opens. A new block starts whenever the kind of delta changes
(thinking, text, tool call #0, tool call #1, ...). The workers emit tool calls one after
another, so a call that resumes after another one began is refused, not reordered.
"""

from __future__ import annotations

from typing import Any

from gateway.anthropic.errors import anthropic_error_body
from gateway.anthropic.responses import message_id, stop_details, tool_use_id, usage
from workers.contract import sse
from workers.contract.errors import ApiError

Json = dict[str, Any]


def sse_event(data: Json) -> bytes:
    """Anthropic names each event after its payload's type."""
    return sse.sse_event(data, name=data["type"])


class AnthropicStream:
    def __init__(self, requested_model: str) -> None:
        self._model = requested_model
        self._input_tokens = 0
        self._id = message_id()
        self._started = False
        self._finished = False
        self._block: str | None = None  # "thinking", "text" or "tool:<openai index>"
        self._block_index = 0
        self._tools_seen: set[int] = set()
        self._finish_reason: str | None = None
        self._stop_sequence: str | None = None
        self._usage: Json | None = None
        self._deltas = 0

    def start(self, input_tokens: int = 0) -> list[bytes]:
        """`message_start`, with the prompt's length as the worker counted it."""
        if self._started:
            return []
        self._started = True
        self._input_tokens = input_tokens
        message: Json = {
            "id": self._id,
            "type": "message",
            "role": "assistant",
            "model": self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage(None, self._input_tokens),
        }
        return [sse_event({"type": "message_start", "message": message}), self.ping()]

    def feed(self, chunk: Json) -> list[bytes]:
        if self._finished:
            return []
        events = self.start()
        if chunk.get("usage"):
            self._usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue  # Anthropic has one answer per message
            events += self._delta(choice.get("delta") or {})
            if choice.get("finish_reason"):
                self._finish_reason = choice["finish_reason"]
                self._stop_sequence = choice.get("stop_sequence")
        return events

    def finish(self) -> list[bytes]:
        if self._finished:
            return []
        events = self.start() + self._close_block()
        events += [self._message_delta(), sse_event({"type": "message_stop"})]
        self._finished = True
        return events

    def error(self, error: ApiError) -> list[bytes]:
        """The stream's last event when it fails after its head was sent."""
        self._finished = True
        return [sse_event(anthropic_error_body(error))]

    def ping(self) -> bytes:
        return sse_event({"type": "ping"})

    def _message_delta(self) -> bytes:
        stop_reason, stop_sequence = stop_details(
            self._finish_reason, self._stop_sequence, bool(self._tools_seen)
        )
        totals = usage(self._usage, self._input_tokens)
        # Without a usage chunk, count chunks: a worker sends about one token per chunk.
        output_tokens = totals["output_tokens"] if self._usage else self._deltas
        return sse_event(
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
                "usage": {**totals, "output_tokens": output_tokens},
            }
        )

    def _delta(self, delta: Json) -> list[bytes]:
        events: list[bytes] = []
        if delta.get("reasoning_content"):
            events += self._open("thinking", {"type": "thinking", "thinking": "", "signature": ""})
            events.append(self._block_delta("thinking_delta", thinking=delta["reasoning_content"]))
        if delta.get("content"):
            events += self._open("text", {"type": "text", "text": ""})
            events.append(self._block_delta("text_delta", text=delta["content"]))
        for call in delta.get("tool_calls") or []:
            events += self._tool_call_delta(call)
        self._deltas += bool(events)
        return events

    def _tool_call_delta(self, call: Json) -> list[bytes]:
        index = int(call.get("index") or 0)
        function = call.get("function") or {}
        events: list[bytes] = []
        if self._block != f"tool:{index}":
            if index in self._tools_seen:
                raise ApiError(502, f"tool call {index} resumed after the next one began")
            self._tools_seen.add(index)
            block: Json = {
                "type": "tool_use",
                "id": call.get("id") or tool_use_id(),
                "name": function.get("name") or "",
                "input": {},
            }
            events += self._open(f"tool:{index}", block)
        if function.get("arguments"):
            events.append(self._block_delta("input_json_delta", partial_json=function["arguments"]))
        return events

    def _open(self, kind: str, block: Json) -> list[bytes]:
        if self._block == kind:
            return []
        events = self._close_block()
        self._block = kind
        start = {"type": "content_block_start", "index": self._block_index, "content_block": block}
        return [*events, sse_event(start)]

    def _block_delta(self, delta_type: str, **fields: str) -> bytes:
        delta = {"type": delta_type, **fields}
        return sse_event(
            {"type": "content_block_delta", "index": self._block_index, "delta": delta}
        )

    def _close_block(self) -> list[bytes]:
        if self._block is None:
            return []
        events = []
        if self._block == "thinking":
            # Anthropic signs thinking so it can be sent back; local models have nothing to sign.
            events.append(self._block_delta("signature_delta", signature=""))
        events.append(sse_event({"type": "content_block_stop", "index": self._block_index}))
        self._block = None
        self._block_index += 1
        return events
