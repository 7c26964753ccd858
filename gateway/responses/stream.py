"""OpenAI chat.completion.chunk objects, re-framed as the Responses API's typed events.

Every event carries a `sequence_number`, from 0. A stream opens with `response.created`
and `response.in_progress`; then each output item (reasoning, a message, each function
call) opens with `response.output_item.added`, takes deltas of its own kind and closes
with its `.done` events before the next opens; it ends with `response.completed` (or
`response.incomplete`), or `error` and `response.failed` when the answer fails midway.
The workers emit tool calls one after another, so a call that resumes after another
one began is refused, not reordered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.request_fields import Json
from gateway.responses.answer import (
    Draft,
    function_call_item,
    message_item,
    reasoning_item,
    reasoning_part,
    text_part,
)
from gateway.responses.items import new_id
from workers.contract import sse
from workers.contract.errors import ApiError
from workers.contract.finish import FinishReason


@dataclass
class _Item:
    """The output item being streamed."""

    kind: str  # "reasoning", "message" or "tool:<chat index>"
    id: str
    index: int  # its output_index
    call_id: str = ""
    name: str = ""
    pieces: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    def whole(self, status: str) -> Json:
        if self.kind == "reasoning":
            return reasoning_item(self.id, self.text, status)
        if self.kind == "message":
            return message_item(self.id, self.text, status)
        return function_call_item(self.id, self.call_id, self.name, self.text, status)


class ResponsesStream:
    def __init__(self, draft: Draft) -> None:
        self._draft = draft
        self._sequence = 0
        self._started = False
        self._finished = False
        self._output: list[Json] = []
        self._item: _Item | None = None
        self._tools_seen: set[int] = set()
        self._finish_reason: Any = None
        self._usage: Any = None
        self.response: Json | None = None  # the final Response, once `finish` ran

    def start(self, prompt_tokens: int = 0) -> list[bytes]:
        if self._started:
            return []
        self._started = True
        response = self._draft.render("in_progress", [])
        return [
            self._event("response.created", response=response),
            self._event("response.in_progress", response=response),
        ]

    def feed(self, chunk: Json) -> list[bytes]:
        if self._finished:
            return []
        events = self.start()
        if chunk.get("usage"):
            self._usage = chunk["usage"]
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue  # a response has one answer
            events += self._delta(choice.get("delta") or {})
            if choice.get("finish_reason"):
                self._finish_reason = choice["finish_reason"]
        return events

    def finish(self) -> list[bytes]:
        if self._finished:
            return []
        events = self.start()
        length = self._finish_reason == FinishReason.LENGTH
        events += self._close("incomplete" if length else "completed")
        self._finished = True
        self.response = self._draft.finished(self._output, self._finish_reason, self._usage)
        kind = "response.incomplete" if length else "response.completed"
        return [*events, self._event(kind, response=self.response)]

    def error(self, error: ApiError) -> list[bytes]:
        """The stream's last events when it fails after its head was sent."""
        events = self.start()
        self._finished = True
        code = error.code or error.error_type
        failed = self._draft.render("failed", self._output, error=error)
        return [
            *events,
            self._event("error", code=code, message=error.message, param=error.param),
            self._event("response.failed", response=failed),
        ]

    def _delta(self, delta: Json) -> list[bytes]:
        events: list[bytes] = []
        if delta.get("reasoning_content"):
            events += self._open("reasoning")
            events.append(
                self._text_delta("response.reasoning_text.delta", delta["reasoning_content"])
            )
        if delta.get("content"):
            events += self._open("message")
            events.append(
                self._text_delta("response.output_text.delta", delta["content"], logprobs=[])
            )
        for call in delta.get("tool_calls") or []:
            events += self._tool_call_delta(call)
        return events

    def _tool_call_delta(self, call: Json) -> list[bytes]:
        index = int(call.get("index") or 0)
        function = call.get("function") or {}
        events: list[bytes] = []
        kind = f"tool:{index}"
        if self._item is None or self._item.kind != kind:
            if index in self._tools_seen:
                raise ApiError(502, f"tool call {index} resumed after the next one began")
            self._tools_seen.add(index)
            call_id = call.get("id") or new_id("call")
            events += self._open(kind, call_id, function.get("name") or "")
        arguments = function.get("arguments")
        if arguments:
            assert self._item is not None
            self._item.pieces.append(arguments)
            events.append(
                self._event(
                    "response.function_call_arguments.delta",
                    item_id=self._item.id,
                    output_index=self._item.index,
                    delta=arguments,
                )
            )
        return events

    def _open(self, kind: str, call_id: str = "", name: str = "") -> list[bytes]:
        if self._item is not None and self._item.kind == kind:
            return []
        events = self._close("completed")
        prefix = {"reasoning": "rs", "message": "msg"}.get(kind, "fc")
        item = _Item(kind, new_id(prefix), len(self._output), call_id, name)
        self._item = item
        events.append(
            self._event(
                "response.output_item.added",
                output_index=item.index,
                item=item.whole("in_progress"),
            )
        )
        part = _part(kind, "")
        if part is not None:
            events.append(self._part_event("response.content_part.added", part))
        return events

    def _close(self, status: str) -> list[bytes]:
        item = self._item
        if item is None:
            return []
        self._item = None
        events = [self._done(item)]
        part = _part(item.kind, item.text)
        if part is not None:
            events.append(self._part_event("response.content_part.done", part, item))
        whole = item.whole(status)
        self._output.append(whole)
        events.append(self._event("response.output_item.done", output_index=item.index, item=whole))
        return events

    def _done(self, item: _Item) -> bytes:
        """The event with the item's whole text (or arguments)."""
        where: Json = {"item_id": item.id, "output_index": item.index}
        if item.kind == "reasoning":
            return self._event(
                "response.reasoning_text.done", **where, content_index=0, text=item.text
            )
        if item.kind == "message":
            return self._event(
                "response.output_text.done", **where, content_index=0, text=item.text, logprobs=[]
            )
        return self._event(
            "response.function_call_arguments.done", **where, name=item.name, arguments=item.text
        )

    def _text_delta(self, kind: str, text: str, **extra: Any) -> bytes:
        item = self._item
        assert item is not None
        item.pieces.append(text)
        return self._event(
            kind, item_id=item.id, output_index=item.index, content_index=0, delta=text, **extra
        )

    def _part_event(self, kind: str, part: Json, item: _Item | None = None) -> bytes:
        item = item or self._item
        assert item is not None
        return self._event(
            kind, item_id=item.id, output_index=item.index, content_index=0, part=part
        )

    def _event(self, kind: str, **fields: Any) -> bytes:
        payload = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return sse.sse_event(payload, name=kind)


def _part(kind: str, text: str) -> Json | None:
    """The content part an item streams into; function calls have none."""
    if kind == "reasoning":
        return reasoning_part(text)
    if kind == "message":
        return text_part(text)
    return None
