"""OpenAI chat completions from a worker, rewritten as Anthropic messages.

The helpers for ids, stop reasons and usage are shared with `stream`, so a streamed
answer and a whole one end the same way.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from workers.contract.errors import ApiError
from workers.contract.finish import FinishReason

Json = dict[str, Any]

_STOP_REASONS = {
    FinishReason.STOP: "end_turn",
    FinishReason.LENGTH: "max_tokens",
    FinishReason.TOOL_CALLS: "tool_use",
}


def to_anthropic_message(openai_response: Json, requested_model: str) -> Json:
    choices = openai_response.get("choices") or []
    if not choices:
        raise ApiError(502, "the worker's response has no choices", type="api_error")
    choice = choices[0]
    message = choice.get("message") or {}
    content = _content_blocks(message)
    used_tools = any(block["type"] == "tool_use" for block in content)
    stop_reason, stop_sequence = stop_details(
        choice.get("finish_reason"), choice.get("stop_sequence"), used_tools
    )
    return {
        "id": message_id(openai_response.get("id")),
        "type": "message",
        "role": "assistant",
        "model": requested_model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "usage": usage(openai_response.get("usage")),
    }


def message_id(openai_id: Any = None) -> str:
    """`msg_` plus the worker's completion id, so logs on both sides can be matched."""
    if isinstance(openai_id, str) and openai_id:
        return "msg_" + openai_id.removeprefix("chatcmpl-")
    return "msg_" + uuid.uuid4().hex


def tool_use_id() -> str:
    return "toolu_" + uuid.uuid4().hex


def stop_details(finish_reason: Any, stop_sequence: Any, used_tools: bool) -> tuple[str, Any]:
    """Anthropic's (stop_reason, stop_sequence) for an OpenAI finish_reason."""
    if used_tools and finish_reason in (None, FinishReason.STOP):
        return "tool_use", None
    if finish_reason == FinishReason.STOP and isinstance(stop_sequence, str):
        return "stop_sequence", stop_sequence
    return _STOP_REASONS.get(finish_reason, "end_turn"), None


def usage(openai_usage: Any, input_tokens_hint: int = 0) -> Json:
    """Anthropic counts prompt tokens read from the cache apart from the rest, as
    `cache_read_input_tokens`; `input_tokens` are those prefilled anew."""
    openai_usage = openai_usage or {}
    prompt = int(openai_usage.get("prompt_tokens") or input_tokens_hint)
    details = openai_usage.get("prompt_tokens_details") or {}
    cached = min(prompt, int(details.get("cached_tokens") or 0))
    return {
        "input_tokens": prompt - cached,
        "output_tokens": int(openai_usage.get("completion_tokens") or 0),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
    }


def tool_input(arguments: Any, name: str) -> Json:
    """A tool call's JSON arguments string as the object Anthropic's `input` must be."""
    if isinstance(arguments, dict):
        return arguments
    if arguments is None or not str(arguments).strip():
        return {}
    try:
        parsed = json.loads(arguments)
    except json.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        message = f"the model called tool {name!r} with arguments that are not a JSON object"
        raise ApiError(502, message, type="api_error")
    return parsed


def _content_blocks(message: Json) -> list[Json]:
    blocks: list[Json] = []
    reasoning = message.get("reasoning_content")
    if reasoning:
        blocks.append({"type": "thinking", "thinking": reasoning, "signature": ""})
    text = message.get("content")
    if text:
        blocks.append({"type": "text", "text": text})
    blocks.extend(_tool_use_block(call) for call in message.get("tool_calls") or [])
    return blocks


def _tool_use_block(call: Json) -> Json:
    function = call.get("function") or {}
    name = function.get("name") or ""
    return {
        "type": "tool_use",
        "id": call.get("id") or tool_use_id(),
        "name": name,
        "input": tool_input(function.get("arguments"), name),
    }
