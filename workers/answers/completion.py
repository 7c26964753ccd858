"""A legacy text completion (/v1/completions), streamed or whole."""

from __future__ import annotations

from typing import Any

from workers.answers.answer import AnswerId, Usage
from workers.answers.logprobs import CompletionLogprobs
from workers.contract.finish import FinishReason
from workers.contract.sse import SLOT, EventTemplate, sse_events
from workers.generation.bridge import Chunk, Outcome


class CompletionAnswer:
    def __init__(self, answer_id: AnswerId, logprobs: bool) -> None:
        self._id = answer_id
        self._logprobs = CompletionLogprobs() if logprobs else None
        self._text: list[str] = []
        self._text_event = EventTemplate(self._chunk(SLOT, None, None))

    def head(self) -> list[dict[str, Any]]:
        return []

    def feed(self, chunk: Chunk) -> list[dict[str, Any]]:
        self._text.append(chunk.text)
        logprobs = self._logprobs.add(chunk.tokens) if self._logprobs else None
        if not chunk.text and logprobs is None:
            return []
        return [self._chunk(chunk.text, logprobs, None)]

    def stream(self, chunk: Chunk) -> bytes:
        """feed(), framed as SSE; text without logprobs through a template."""
        if self._logprobs is not None or not chunk.text:
            return sse_events(self.feed(chunk))
        self._text.append(chunk.text)
        return self._text_event.event(chunk.text)

    def finish(self, outcome: Outcome) -> list[dict[str, Any]]:
        final = self._chunk("", None, outcome.finish_reason)
        if outcome.stop_sequence is not None:
            final["choices"][0]["stop_sequence"] = outcome.stop_sequence
        return [final]

    def usage_chunk(self, usage: Usage) -> dict[str, Any]:
        return {**self._envelope(), "choices": [], "usage": usage.as_dict()}

    def whole(self, outcome: Outcome, usage: Usage) -> dict[str, Any]:
        choice: dict[str, Any] = {
            "index": 0,
            "text": "".join(self._text),
            "logprobs": self._logprobs.as_dict() if self._logprobs else None,
            "finish_reason": outcome.finish_reason,
        }
        if outcome.stop_sequence is not None:
            choice["stop_sequence"] = outcome.stop_sequence
        return {**self._envelope(), "choices": [choice], "usage": usage.as_dict()}

    def _chunk(
        self, text: str, logprobs: dict[str, Any] | None, finish_reason: FinishReason | None
    ) -> dict[str, Any]:
        choice = {"index": 0, "text": text, "logprobs": logprobs, "finish_reason": finish_reason}
        return {**self._envelope(), "choices": [choice]}

    def _envelope(self) -> dict[str, Any]:
        return {
            "id": self._id.id,
            "object": "text_completion",
            "created": self._id.created,
            "model": self._id.model,
        }
