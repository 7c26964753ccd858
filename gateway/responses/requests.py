"""POST /v1/responses bodies, checked once and turned into the chat request a worker
understands, so tools, reasoning, structured output, presets and aliases behave as they
do on /v1/chat/completions.

Every refusal is a 400 naming the field by its dotted path. What this server cannot do
(built-in tools, background runs, stored prompts, conversations) is refused by name;
fields that only tune OpenAI's service (`service_tier`, `prompt_cache_key`, `include`,
`user`, ...) are accepted and ignored, as unknown fields are on the chat route.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.request_fields import (
    Json,
    as_object,
    check,
    invalid,
    number,
    optional,
    positive_int,
    required,
)
from gateway.responses.items import chat_messages, input_items

_TOOL_CHOICES = ("auto", "none", "required")
_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
_SUMMARIES = ("auto", "concise", "detailed")
_TRUNCATIONS = ("auto", "disabled")
# Refused when set at all: each needs a part of OpenAI's service this server does not have.
_UNSUPPORTED = {
    "conversation": "the Conversations API is not supported here; use previous_response_id",
    "prompt": "stored prompt templates are not supported here",
    "context_management": "server-side compaction is not supported here",
}


@dataclass(frozen=True)
class ResponsesRequest:
    model: str
    input: list[Json]  # canonical items (gateway.responses.items)
    instructions: str | None = None
    previous_response_id: str | None = None
    store: bool = True
    stream: bool = False
    chat_options: Json = field(default_factory=dict)  # what the chat request adds
    echo: Json = field(default_factory=dict)  # what the response object repeats


def parse_request(body: Json) -> ResponsesRequest:
    model = required(body, "model", str)
    if not model:
        raise invalid("model", "must not be empty")
    _refuse_unsupported(body)
    tools = _tools(body)
    return ResponsesRequest(
        model=model,
        input=input_items(body.get("input")),
        instructions=optional(body, "instructions", str),
        previous_response_id=optional(body, "previous_response_id", str),
        store=_flag(body, "store", default=True),
        stream=_flag(body, "stream", default=False),
        chat_options=_chat_options(body, tools),
        echo=_echo(body, tools),
    )


def chat_request(request: ResponsesRequest, items: list[Json]) -> Json:
    """The chat completion request for `items`, the whole conversation so far."""
    system = [{"role": "system", "content": request.instructions}] if request.instructions else []
    payload: Json = {
        "model": request.model,
        "messages": system + chat_messages(items),
        **request.chat_options,
    }
    if request.stream:
        payload["stream"] = True
        payload["stream_options"] = {"include_usage": True}
    return payload


def _refuse_unsupported(body: Json) -> None:
    for key, problem in _UNSUPPORTED.items():
        if body.get(key) is not None:
            raise invalid(key, problem)
    if body.get("background"):
        raise invalid("background", "background responses are not supported here")
    top_logprobs = body.get("top_logprobs")
    if top_logprobs:
        raise invalid("top_logprobs", "not supported here; /v1/chat/completions has logprobs")
    truncation = body.get("truncation")
    if truncation is not None and truncation not in _TRUNCATIONS:
        raise invalid("truncation", "must be 'auto' or 'disabled'")
    _optional_list(body, "include")


def _flag(body: Json, key: str, default: bool) -> bool:
    value = optional(body, key, bool)
    return default if value is None else value


def _optional_list(body: Json, key: str) -> list[Any]:
    return optional(body, key, list) or []


# -- what the chat request gets -------------------------------------------------------------


def _chat_options(body: Json, tools: list[Json]) -> Json:
    options: Json = {}
    for key in ("temperature", "top_p"):
        value = number(body, key)
        if value is not None:
            options[key] = value
    if body.get("max_output_tokens") is not None:
        options["max_tokens"] = positive_int(body, "max_output_tokens")
    if tools:
        options["tools"] = [_chat_tool(tool) for tool in tools]
    options.update(_tool_choice(body, {tool["name"] for tool in tools}))
    parallel = optional(body, "parallel_tool_calls", bool)
    if parallel is not None:
        options["parallel_tool_calls"] = parallel
    options.update(_text_format(body))
    thinking = _thinking(body)
    if thinking is not None:
        # The switch Qwen3-style chat templates read; templates without it ignore it.
        options["chat_template_kwargs"] = {"enable_thinking": thinking}
    return options


def _tools(body: Json) -> list[Json]:
    """The function tools, in the Responses API's flat shape."""
    tools = _optional_list(body, "tools")
    return [_tool(as_object(tool, f"tools.{i}"), f"tools.{i}.") for i, tool in enumerate(tools)]


def _tool(tool: Json, prefix: str) -> Json:
    kind = required(tool, "type", str, prefix)
    if kind != "function":
        raise invalid(f"{prefix}type", f"{kind!r} tools are not supported here; only 'function'")
    parameters = optional(tool, "parameters", dict, prefix)
    return {
        "type": "function",
        "name": required(tool, "name", str, prefix),
        "description": optional(tool, "description", str, prefix),
        "parameters": parameters if parameters is not None else {"type": "object"},
        "strict": optional(tool, "strict", bool, prefix),
    }


def _chat_tool(tool: Json) -> Json:
    function = {"name": tool["name"], "parameters": tool["parameters"]}
    if tool["description"]:
        function["description"] = tool["description"]
    if tool["strict"] is not None:
        function["strict"] = tool["strict"]
    return {"type": "function", "function": function}


def _tool_choice(body: Json, names: set[str]) -> Json:
    choice = body.get("tool_choice")
    if choice is None:
        return {}
    if isinstance(choice, str):
        if choice not in _TOOL_CHOICES:
            raise invalid("tool_choice", "must be 'auto', 'none', 'required' or a function")
        return {"tool_choice": choice}
    choice = as_object(choice, "tool_choice")
    kind = required(choice, "type", str, "tool_choice.")
    if kind != "function":
        raise invalid("tool_choice.type", f"{kind!r} is not supported here; only 'function'")
    name = required(choice, "name", str, "tool_choice.")
    if name not in names:
        raise invalid("tool_choice.name", f"no function named {name!r} in tools")
    return {"tool_choice": {"type": "function", "function": {"name": name}}}


def _text_format(body: Json) -> Json:
    text = optional(body, "text", dict)
    text_format = optional(text or {}, "format", dict, "text.")
    if text_format is None:
        return {}
    kind = required(text_format, "type", str, "text.format.")
    if kind == "text":
        return {}
    if kind == "json_object":
        return {"response_format": {"type": "json_object"}}
    if kind != "json_schema":
        raise invalid("text.format.type", "must be 'text', 'json_object' or 'json_schema'")
    schema: Json = {"schema": required(text_format, "schema", dict, "text.format.")}
    schema["name"] = optional(text_format, "name", str, "text.format.") or "response"
    strict = optional(text_format, "strict", bool, "text.format.")
    if strict is not None:
        schema["strict"] = strict
    return {"response_format": {"type": "json_schema", "json_schema": schema}}


def _thinking(body: Json) -> bool | None:
    reasoning = optional(body, "reasoning", dict)
    if reasoning is None:
        return None
    summary = reasoning.get("summary")
    if summary is not None and summary not in _SUMMARIES:
        raise invalid("reasoning.summary", "must be 'auto', 'concise' or 'detailed'")
    effort = reasoning.get("effort")
    if effort is None:
        return None
    if effort not in _EFFORTS:
        raise invalid("reasoning.effort", f"must be one of {', '.join(_EFFORTS)}")
    return effort != "none"


# -- what the response object repeats -------------------------------------------------------


def _echo(body: Json, tools: list[Json]) -> Json:
    """Called after every field was checked."""
    reasoning = body.get("reasoning") or {}
    text = body.get("text") or {}
    return {
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "metadata": _metadata(body),
        "parallel_tool_calls": _flag(body, "parallel_tool_calls", default=True),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "store": _flag(body, "store", default=True),
        "temperature": body.get("temperature"),
        "text": {"format": text.get("format") or {"type": "text"}},
        "tool_choice": body.get("tool_choice") or "auto",
        "tools": tools,
        "top_p": body.get("top_p"),
        "truncation": body.get("truncation") or "disabled",
        "user": body.get("user") if isinstance(body.get("user"), str) else None,
    }


def _metadata(body: Json) -> dict[str, str]:
    metadata = optional(body, "metadata", dict) or {}
    for key, value in metadata.items():
        check(value, f"metadata.{key}", str)
    return dict(metadata)
