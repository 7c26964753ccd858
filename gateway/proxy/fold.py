"""A worker's stream, gathered into the whole answer a non-streamed request gets.

The Ollama and LM Studio routes always ask the worker for a stream, so that they see
when the first token came (their timing fields), and fold it here when their client
asked for one answer. The result has the shape of the worker's own whole answer
(workers/answers), chat or text completion alike.
"""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]


class ChunkFold:
    def __init__(self) -> None:
        self.envelope: Json = {}
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.calls: dict[int, Json] = {}
        self.finish_reason: str | None = None
        self.stop_sequence: str | None = None
        self.logprobs: dict[str, list[Any]] | None = None
        self.usage: Json | None = None

    def feed(self, chunk: Json) -> bool:
        """Take one chunk; true when it carried output (the first such is the first token)."""
        if not self.envelope:
            self.envelope = {k: chunk.get(k) for k in ("id", "object", "created", "model")}
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        produced = False
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) == 0:
                produced = self._choice(choice) or produced
        return produced

    def whole(self) -> Json:
        """The chat.completion or text_completion the chunks make up."""
        chat = self.envelope.get("object") == "chat.completion.chunk"
        choice: Json = {"index": 0}
        if chat:
            choice["message"] = self.message()
        else:
            choice["text"] = "".join(self.text)
        choice["logprobs"] = self.logprobs
        choice["finish_reason"] = self.finish_reason
        if self.stop_sequence is not None:
            choice["stop_sequence"] = self.stop_sequence
        kind = "chat.completion" if chat else "text_completion"
        return {**self.envelope, "object": kind, "choices": [choice], "usage": self.usage}

    def message(self) -> Json:
        content = "".join(self.text)
        message: Json = {"role": "assistant", "content": content}
        if self.reasoning:
            message["reasoning_content"] = "".join(self.reasoning)
        if self.calls:
            message["content"] = content or None
            message["tool_calls"] = [self.calls[i] for i in sorted(self.calls)]
        return message

    def _choice(self, choice: Json) -> bool:
        delta = choice.get("delta") or {}
        text = delta.get("content") or choice.get("text") or ""
        reasoning = delta.get("reasoning_content") or ""
        calls = delta.get("tool_calls") or []
        if text:
            self.text.append(text)
        if reasoning:
            self.reasoning.append(reasoning)
        for call in calls:
            self._call(call)
        self._logprobs(choice.get("logprobs"))
        if choice.get("finish_reason"):
            self.finish_reason = choice["finish_reason"]
            self.stop_sequence = choice.get("stop_sequence")
        return bool(text or reasoning or calls)

    def _call(self, call: Json) -> None:
        """Tool calls come as a start (id, name) and then argument fragments, by index."""
        entry = self.calls.setdefault(
            int(call.get("index") or 0),
            {"id": "", "type": "function", "function": {"name": "", "arguments": ""}},
        )
        entry["id"] = entry["id"] or call.get("id") or ""
        function = call.get("function") or {}
        entry["function"]["name"] += function.get("name") or ""
        entry["function"]["arguments"] += function.get("arguments") or ""

    def _logprobs(self, logprobs: Any) -> None:
        # Chat chunks carry {"content": [...]}, completion chunks parallel lists
        # (tokens, token_logprobs, ...): either way, each list continues the last.
        if not isinstance(logprobs, dict):
            return
        if self.logprobs is None:
            self.logprobs = {}
        for key, values in logprobs.items():
            if isinstance(values, list):
                self.logprobs.setdefault(key, []).extend(values)
