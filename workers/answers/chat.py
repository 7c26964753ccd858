"""A chat completion, built from parser events: as OpenAI stream deltas and as one message.

Both shapes come from the same events, so streaming and whole answers cannot diverge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from workers.answers.answer import AnswerId, EventParser, Usage
from workers.answers.logprobs import chat_entries
from workers.contract.finish import FinishReason
from workers.contract.sse import SLOT, EventTemplate, sse_events
from workers.generation.bridge import Chunk, Outcome
from workers.parsing.events import (
    OutputEvent,
    ReasoningDelta,
    TextDelta,
    ToolCallArguments,
    ToolCallStart,
)


@dataclass
class _Call:
    id: str
    name: str
    arguments: list[str] = field(default_factory=list)


class ChatAnswer:
    def __init__(self, answer_id: AnswerId, parser: EventParser, logprobs: bool) -> None:
        self._id = answer_id
        self._parser = parser
        self._logprobs = logprobs
        self._content: list[str] = []
        self._reasoning: list[str] = []
        self._calls: dict[int, _Call] = {}
        self._logprob_entries: list[dict[str, Any]] = []
        self._unsent_logprobs: list[dict[str, Any]] = []
        self._content_event = EventTemplate(self._chunk({"content": SLOT}))

    def head(self) -> list[dict[str, Any]]:
        return [self._chunk({"role": "assistant", "content": ""})]

    def feed(self, chunk: Chunk) -> list[dict[str, Any]]:
        if self._logprobs:
            entries = chat_entries(chunk.tokens)
            self._logprob_entries += entries
            self._unsent_logprobs += entries
        return self._deltas(self._parser.feed(chunk.text))

    def stream(self, chunk: Chunk) -> bytes:
        """feed(), framed as SSE; plain content without logprobs, a stream's usual token,
        goes straight into a template instead of through a dict and the JSON encoder."""
        if self._logprobs:
            return sse_events(self.feed(chunk))
        events = self._parser.feed(chunk.text)
        if len(events) == 1 and isinstance(events[0], TextDelta):
            delta = self._record(events[0])
            return self._content_event.event(delta["content"]) if delta else b""
        return sse_events(self._deltas(events))

    def finish(self, outcome: Outcome) -> list[dict[str, Any]]:
        deltas = self._deltas(self._parser.finish())
        final = self._chunk({}, finish_reason=self._finish_reason(outcome))
        if outcome.stop_sequence is not None:
            final["choices"][0]["stop_sequence"] = outcome.stop_sequence
        return [*deltas, self._with_logprobs(final)]

    def usage_chunk(self, usage: Usage) -> dict[str, Any]:
        return {**self._envelope("chat.completion.chunk"), "choices": [], "usage": usage.as_dict()}

    def whole(self, outcome: Outcome, usage: Usage) -> dict[str, Any]:
        choice: dict[str, Any] = {
            "index": 0,
            "message": self._message(),
            "logprobs": {"content": self._logprob_entries} if self._logprobs else None,
            "finish_reason": self._finish_reason(outcome),
        }
        if outcome.stop_sequence is not None:
            choice["stop_sequence"] = outcome.stop_sequence
        return {**self._envelope("chat.completion"), "choices": [choice], "usage": usage.as_dict()}

    def _message(self) -> dict[str, Any]:
        content = "".join(self._content)
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if self._reasoning:
            message["reasoning_content"] = "".join(self._reasoning)
        if self._calls:
            message["content"] = content or None
            message["tool_calls"] = [_whole_call(call) for call in self._calls.values()]
        return message

    def _finish_reason(self, outcome: Outcome) -> FinishReason:
        if outcome.finish_reason is FinishReason.STOP and self._parser.saw_tool_calls:
            return FinishReason.TOOL_CALLS
        return outcome.finish_reason

    def _deltas(self, events: list[OutputEvent]) -> list[dict[str, Any]]:
        deltas = [delta for delta in map(self._record, events) if delta]
        return [self._with_logprobs(self._chunk(delta)) for delta in deltas]

    def _record(self, event: OutputEvent) -> dict[str, Any]:
        if isinstance(event, TextDelta):
            self._content.append(event.text)
            return {"content": event.text} if event.text else {}
        if isinstance(event, ReasoningDelta):
            self._reasoning.append(event.text)
            return {"reasoning_content": event.text} if event.text else {}
        if isinstance(event, ToolCallStart):
            self._calls[event.index] = _Call(event.id, event.name)
            return {"tool_calls": [_call_start(event)]}
        self._calls[event.index].arguments.append(event.fragment)
        return {"tool_calls": [_call_arguments(event)]}

    def _with_logprobs(self, chunk: dict[str, Any]) -> dict[str, Any]:
        if self._unsent_logprobs:
            chunk["choices"][0]["logprobs"] = {"content": self._unsent_logprobs}
            self._unsent_logprobs = []
        return chunk

    def _chunk(
        self, delta: dict[str, Any], finish_reason: FinishReason | None = None
    ) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return {**self._envelope("chat.completion.chunk"), "choices": [choice]}

    def _envelope(self, kind: str) -> dict[str, Any]:
        return {
            "id": self._id.id,
            "object": kind,
            "created": self._id.created,
            "model": self._id.model,
        }


def _call_start(event: ToolCallStart) -> dict[str, Any]:
    return {
        "index": event.index,
        "id": event.id,
        "type": "function",
        "function": {"name": event.name, "arguments": ""},
    }


def _call_arguments(event: ToolCallArguments) -> dict[str, Any]:
    return {"index": event.index, "function": {"arguments": event.fragment}}


def _whole_call(call: _Call) -> dict[str, Any]:
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": "".join(call.arguments)},
    }
