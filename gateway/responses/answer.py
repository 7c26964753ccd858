"""The Response object: what a request set (`Draft`), and what a worker's chat completion
made of it (output items, status, usage). `stream` builds the same items piece by piece,
so a streamed answer and a whole one end the same way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from gateway.request_fields import Json
from gateway.responses.items import new_id
from workers.contract.errors import ApiError
from workers.contract.finish import FinishReason


@dataclass(frozen=True)
class Draft:
    """A response before its output: its id, its time, and the request's settings."""

    model: str
    echo: Json
    id: str = field(default_factory=lambda: new_id("resp"))
    created_at: int = field(default_factory=lambda: int(time.time()))

    def render(
        self,
        status: str,
        output: list[Json],
        usage: Json | None = None,
        incomplete: str | None = None,
        error: ApiError | None = None,
    ) -> Json:
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "completed_at": int(time.time()) if status == "completed" else None,
            "status": status,
            "background": False,
            "error": _error(error),
            "incomplete_details": {"reason": incomplete} if incomplete else None,
            "model": self.model,
            "output": output,
            "usage": usage,
            **self.echo,
        }

    def finished(self, output: list[Json], finish_reason: Any, chat_usage: Any) -> Json:
        """The completed (or incomplete) response; `output` is final but for its status."""
        incomplete = "max_output_tokens" if finish_reason == FinishReason.LENGTH else None
        if incomplete and output:
            output[-1]["status"] = "incomplete"
        status = "incomplete" if incomplete else "completed"
        return self.render(status, output, usage(chat_usage), incomplete)


def to_response(chat: Json, draft: Draft) -> Json:
    """A worker's whole chat completion as a Response."""
    choices = chat.get("choices") or []
    if not choices:
        raise ApiError(502, "the worker's response has no choices")
    choice = choices[0]
    message = choice.get("message") or {}
    output: list[Json] = []
    if message.get("reasoning_content"):
        output.append(reasoning_item(new_id("rs"), message["reasoning_content"]))
    if message.get("content"):
        output.append(message_item(new_id("msg"), message["content"]))
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        output.append(
            function_call_item(
                new_id("fc"),
                call.get("id") or new_id("call"),
                function.get("name") or "",
                function.get("arguments") or "",
            )
        )
    return draft.finished(output, choice.get("finish_reason"), chat.get("usage"))


def usage(chat_usage: Any) -> Json:
    """OpenAI counts cached prompt tokens among the input tokens, as the chat route does.
    The workers do not count reasoning tokens apart: `output_tokens` holds them."""
    chat_usage = chat_usage or {}
    prompt = int(chat_usage.get("prompt_tokens") or 0)
    completion = int(chat_usage.get("completion_tokens") or 0)
    details = chat_usage.get("prompt_tokens_details") or {}
    return {
        "input_tokens": prompt,
        "input_tokens_details": {
            "cached_tokens": min(prompt, int(details.get("cached_tokens") or 0))
        },
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": prompt + completion,
    }


def message_item(item_id: str, text: str, status: str = "completed") -> Json:
    return {
        "type": "message",
        "id": item_id,
        "role": "assistant",
        "status": status,
        "content": [text_part(text)] if status != "in_progress" else [],
    }


def text_part(text: str) -> Json:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def reasoning_item(item_id: str, text: str, status: str = "completed") -> Json:
    content = [reasoning_part(text)] if status != "in_progress" else []
    return {"type": "reasoning", "id": item_id, "status": status, "summary": [], "content": content}


def reasoning_part(text: str) -> Json:
    return {"type": "reasoning_text", "text": text}


def function_call_item(
    item_id: str, call_id: str, name: str, arguments: str, status: str = "completed"
) -> Json:
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def _error(error: ApiError | None) -> Json | None:
    if error is None:
        return None
    return {"code": "server_error", "message": error.message}
