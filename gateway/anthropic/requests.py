"""Anthropic Messages request bodies, checked and rewritten as OpenAI chat requests.

Every refusal is a 400 naming the field by its dotted path (gateway.body_fields). Fields
the workers have no use for (`top_k`, `metadata`, `cache_control`, ...) are checked for
shape where cheap and then dropped.
"""

from __future__ import annotations

import json
from typing import Any

from gateway.body_fields import (
    Json,
    as_object,
    check,
    invalid,
    number,
    optional,
    positive_int,
    required,
)

_TOOL_CHOICES = {"auto": "auto", "any": "required", "none": "none"}
_THINKING_TYPES = ("enabled", "disabled", "adaptive")


def to_openai_request(body: Any) -> Json:
    """A /v1/messages body as the chat completion request a worker understands."""
    body = as_object(body, "body")
    request = _conversation(body)
    request["max_tokens"] = positive_int(body, "max_tokens")
    request.update(_sampling(body))
    if optional(body, "stream", bool):
        request["stream"] = True
        request["stream_options"] = {"include_usage": True}
    return request


def to_openai_count_request(body: Any) -> Json:
    """A /v1/messages/count_tokens body as a chat request: the prompt, tools, no sampling."""
    return _conversation(as_object(body, "body"))


def _conversation(body: Json) -> Json:
    model = required(body, "model", str)
    if not model:
        raise invalid("model", "must not be empty")
    request: Json = {"model": model, "messages": _system(body) + _messages(body)}
    request.update(_tools(body))
    thinking = _thinking(body)
    if thinking is not None:
        # The switch Qwen3-style chat templates read; templates without it ignore it.
        request["chat_template_kwargs"] = {"enable_thinking": thinking}
    return request


# -- top-level options --------------------------------------------------------------------


def _sampling(body: Json) -> Json:
    options: Json = {}
    for key in ("temperature", "top_p"):
        value = number(body, key)
        if value is not None:
            options[key] = value
    number(body, "top_k")  # checked for shape; the workers sample without it
    optional(body, "metadata", dict)
    stops = optional(body, "stop_sequences", list)
    if stops:
        options["stop"] = [check(s, f"stop_sequences.{i}", str) for i, s in enumerate(stops)]
    return options


def _thinking(body: Json) -> bool | None:
    thinking = optional(body, "thinking", dict)
    if thinking is None:
        return None
    kind = thinking.get("type")
    if kind not in _THINKING_TYPES:
        raise invalid("thinking.type", "must be 'enabled', 'disabled' or 'adaptive'")
    if "budget_tokens" in thinking:
        positive_int(thinking, "budget_tokens", "thinking.")
    return kind != "disabled"


def _tools(body: Json) -> Json:
    tools = optional(body, "tools", list) or []
    converted = [_tool(as_object(t, f"tools.{i}"), f"tools.{i}.") for i, t in enumerate(tools)]
    choice = optional(body, "tool_choice", dict)
    options: Json = {"tools": converted} if converted else {}
    if choice is not None:
        names = {t["function"]["name"] for t in converted}
        options.update(_tool_choice(choice, names))
    return options


def _tool(tool: Json, prefix: str) -> Json:
    kind = tool.get("type")
    if kind not in (None, "custom"):
        raise invalid(f"{prefix}type", f"server tool {kind!r} is not supported here")
    name = required(tool, "name", str, prefix)
    function: Json = {"name": name, "parameters": required(tool, "input_schema", dict, prefix)}
    description = optional(tool, "description", str, prefix)
    if description:
        function["description"] = description
    return {"type": "function", "function": function}


def _tool_choice(choice: Json, names: set[str]) -> Json:
    kind = choice.get("type")
    options: Json = {}
    if choice.get("disable_parallel_tool_use") is True:
        options["parallel_tool_calls"] = False
    if kind in _TOOL_CHOICES:
        options["tool_choice"] = _TOOL_CHOICES[kind]
    elif kind == "tool":
        name = required(choice, "name", str, "tool_choice.")
        if name not in names:
            raise invalid("tool_choice.name", f"no tool named {name!r} in tools")
        options["tool_choice"] = {"type": "function", "function": {"name": name}}
    else:
        raise invalid("tool_choice.type", "must be one of 'auto', 'any', 'tool', 'none'")
    return options


def _system(body: Json) -> list[Json]:
    system = body.get("system")
    if system is None or system == "":
        return []
    if isinstance(system, str):
        return [{"role": "system", "content": system}]
    blocks = check(system, "system", list)
    texts = [_text(_block(b, f"system.{i}"), f"system.{i}") for i, b in enumerate(blocks)]
    return [{"role": "system", "content": "\n".join(texts)}] if texts else []


# -- messages -----------------------------------------------------------------------------


def _messages(body: Json) -> list[Json]:
    messages = required(body, "messages", list)
    if not messages:
        raise invalid("messages", "must contain at least one message")
    converted: list[Json] = []
    for i, message in enumerate(messages):
        path = f"messages.{i}"
        message = as_object(message, path)
        role = message.get("role")
        blocks = _content(message, path)
        if role == "user":
            converted.extend(_user_messages(blocks))
        elif role == "assistant":
            converted.append(_assistant_message(blocks))
        else:
            hint = "; system prompts go in the top-level 'system' field" if role == "system" else ""
            raise invalid(f"{path}.role", f"must be 'user' or 'assistant'{hint}")
    return converted


def _content(message: Json, path: str) -> list[tuple[str, Json]]:
    """The message's content as (path, block) pairs; a plain string is one text block."""
    content = message.get("content")
    if isinstance(content, str):
        return [(f"{path}.content", {"type": "text", "text": content})]
    if not isinstance(content, list):
        raise invalid(f"{path}.content", "must be a string or a list of content blocks")
    return [
        (f"{path}.content.{i}", _block(b, f"{path}.content.{i}")) for i, b in enumerate(content)
    ]


def _block(block: Any, path: str) -> Json:
    block = as_object(block, path)
    required(block, "type", str, f"{path}.")
    return block


def _text(block: Json, path: str) -> str:
    if block["type"] != "text":
        raise invalid(f"{path}.type", "must be 'text'")
    return required(block, "text", str, f"{path}.")


def _user_messages(blocks: list[tuple[str, Json]]) -> list[Json]:
    # OpenAI wants tool results right after the assistant turn that called the tools,
    # so they go first; Anthropic requires them first in the user turn anyway.
    tool_messages: list[Json] = []
    parts: list[Json] = []
    for block_path, block in blocks:
        kind = block["type"]
        if kind == "tool_result":
            tool_messages.append(_tool_result(block, block_path))
        elif kind == "text":
            parts.append({"type": "text", "text": _text(block, block_path)})
        elif kind == "image":
            parts.append(_image(block, block_path))
        else:
            raise invalid(f"{block_path}.type", f"{kind!r} blocks are not supported in user turns")
    if parts or not tool_messages:
        tool_messages.append({"role": "user", "content": _user_content(parts)})
    return tool_messages


def _user_content(parts: list[Json]) -> str | list[Json]:
    # Plain text stays a string: every chat template renders that.
    if all(part["type"] == "text" for part in parts):
        return "\n".join(part["text"] for part in parts)
    return parts


def _image(block: Json, path: str) -> Json:
    source = required(block, "source", dict, f"{path}.")
    prefix = f"{path}.source."
    kind = source.get("type")
    if kind == "base64":
        media_type = required(source, "media_type", str, prefix)
        url = f"data:{media_type};base64,{required(source, 'data', str, prefix)}"
    elif kind == "url":
        url = required(source, "url", str, prefix)
    else:
        raise invalid(f"{prefix}type", "must be 'base64' or 'url'")
    return {"type": "image_url", "image_url": {"url": url}}


def _tool_result(block: Json, path: str) -> Json:
    tool_use_id = required(block, "tool_use_id", str, f"{path}.")
    content = block.get("content")
    if content is None:
        text = ""
    elif isinstance(content, str):
        text = content
    else:
        items = check(content, f"{path}.content", list)
        text = "\n".join(
            _text(_block(b, f"{path}.content.{i}"), f"{path}.content.{i}")
            for i, b in enumerate(items)
        )
    if optional(block, "is_error", bool, f"{path}."):
        # OpenAI tool messages have no error flag; the model learns it from the text.
        text = f"Error: {text}" if text else "Error"
    return {"role": "tool", "tool_call_id": tool_use_id, "content": text}


def _assistant_message(blocks: list[tuple[str, Json]]) -> Json:
    texts: list[str] = []
    reasoning: list[str] = []
    tool_calls: list[Json] = []
    for block_path, block in blocks:
        kind = block["type"]
        if kind == "text":
            texts.append(_text(block, block_path))
        elif kind == "thinking":
            reasoning.append(required(block, "thinking", str, f"{block_path}."))
        elif kind == "tool_use":
            tool_calls.append(_tool_call(block, block_path))
        elif kind != "redacted_thinking":  # encrypted for Claude only: nothing to pass on
            raise invalid(
                f"{block_path}.type", f"{kind!r} blocks are not supported in assistant turns"
            )
    message: Json = {"role": "assistant", "content": "".join(texts)}
    if tool_calls:
        message["tool_calls"] = tool_calls
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
    return message


def _tool_call(block: Json, path: str) -> Json:
    prefix = f"{path}."
    arguments = required(block, "input", dict, prefix)
    return {
        "id": required(block, "id", str, prefix),
        "type": "function",
        "function": {
            "name": required(block, "name", str, prefix),
            "arguments": json.dumps(arguments, ensure_ascii=False),
        },
    }
