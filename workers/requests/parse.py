"""Request bodies parsed once, at the edge, into typed objects.

Unknown fields (`user`, vendor extensions) are accepted and ignored. Every refusal is a
400 that names the offending field, so a client can fix its request from the message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from workers.contract.body import parse_json_object
from workers.contract.errors import ApiError, bad_request
from workers.requests.fields import Fields, parse_messages

ToolChoiceMode = Literal["auto", "none", "required", "named"]


@dataclass(frozen=True)
class ToolChoice:
    mode: ToolChoiceMode = "auto"
    name: str | None = None  # the one function a "named" choice forces


@dataclass(frozen=True)
class GenerationOptions:
    stream: bool = False
    include_usage: bool = False
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()
    top_logprobs: int | None = None  # None: no logprobs wanted


@dataclass(frozen=True)
class ChatRequest:
    messages: tuple[dict[str, Any], ...]
    options: GenerationOptions
    tools: tuple[dict[str, Any], ...] = ()
    tool_choice: ToolChoice = ToolChoice()
    response_schema: dict[str, Any] | None = None
    image_param: str | None = None  # where the first image part is, when there is one
    # Extra variables for the chat template (Qwen3's enable_thinking, ...), as vLLM takes them.
    template_kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CompletionRequest:
    prompt: str
    options: GenerationOptions


@dataclass(frozen=True)
class EmbeddingRequest:
    inputs: tuple[str, ...]
    encoding_format: Literal["float", "base64"] = "float"


def parse_chat_request(body: bytes, defaults: Mapping[str, Any]) -> ChatRequest:
    fields = Fields(_json_object(body, defaults))
    _require_single_choice(fields)
    messages, image_param = parse_messages(fields.required("messages"))
    tools = _tools(fields)
    return ChatRequest(
        messages=messages,
        options=_options(fields, _chat_logprobs(fields)),
        tools=tools,
        tool_choice=_tool_choice(fields, tools),
        response_schema=_response_schema(fields),
        image_param=image_param,
        template_kwargs=fields.optional_object("chat_template_kwargs") or {},
    )


def parse_completion_request(body: bytes, defaults: Mapping[str, Any]) -> CompletionRequest:
    fields = Fields(_json_object(body, defaults))
    _require_single_choice(fields)
    if fields.optional_int("best_of", minimum=1) not in (None, 1):
        raise bad_request("best_of must be 1: this worker returns one choice", "best_of")
    if fields.optional_bool("echo"):
        raise bad_request("echo is not supported", "echo")
    return CompletionRequest(
        prompt=_prompt(fields.required("prompt")),
        options=_options(fields, fields.optional_int("logprobs", minimum=0, maximum=20)),
    )


def parse_embedding_request(body: bytes) -> EmbeddingRequest:
    fields = Fields(_json_object(body, {}))
    raw = fields.required("input")
    inputs = (raw,) if isinstance(raw, str) else raw
    if not isinstance(inputs, list | tuple) or not inputs:
        raise bad_request("input must be a string or a non-empty list of strings", "input")
    if not all(isinstance(item, str) for item in inputs):
        raise bad_request(
            "input must contain only strings (token arrays are not supported)", "input"
        )
    for i, item in enumerate(inputs):
        if not item:
            param = "input" if isinstance(raw, str) else f"input[{i}]"
            raise bad_request("input texts must not be empty", param)
    encoding = fields.optional_str("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise bad_request("encoding_format must be 'float' or 'base64'", "encoding_format")
    return EmbeddingRequest(tuple(inputs), "base64" if encoding == "base64" else "float")


def _json_object(body: bytes, defaults: Mapping[str, Any]) -> dict[str, Any]:
    data = parse_json_object(body)
    _refuse_invalid_text(data)
    return {**defaults, **{key: value for key, value in data.items() if value is not None}}


def _refuse_invalid_text(data: dict[str, Any]) -> None:
    """JSON may carry lone UTF-16 surrogates ("\\ud800") that no tokenizer can encode:
    refused here, naming the field, before any backend sees them."""
    pending: list[tuple[str, Any]] = list(data.items())
    while pending:
        path, value = pending.pop()
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise bad_request(f"{path} is not valid text (a lone surrogate)", path) from None
        elif isinstance(value, dict):
            pending.extend((f"{path}.{key}", item) for key, item in value.items())
        elif isinstance(value, list):
            pending.extend((f"{path}[{i}]", item) for i, item in enumerate(value))


def _require_single_choice(fields: Fields) -> None:
    if fields.optional_int("n", minimum=1) not in (None, 1):
        raise bad_request("n must be 1: this worker returns one choice per request", "n")


def _options(fields: Fields, top_logprobs: int | None) -> GenerationOptions:
    stream = bool(fields.optional_bool("stream"))
    stream_options = fields.optional_object("stream_options") or {}
    return GenerationOptions(
        stream=stream,
        include_usage=stream and stream_options.get("include_usage") is True,
        max_tokens=_max_tokens(fields),
        temperature=fields.optional_float("temperature", minimum=0.0, maximum=2.0),
        top_p=fields.optional_float("top_p", minimum=0.0, maximum=1.0),
        seed=fields.optional_int("seed"),
        stop=_stop(fields),
        top_logprobs=top_logprobs,
    )


def _max_tokens(fields: Fields) -> int | None:
    value = fields.optional_int("max_completion_tokens", minimum=1)
    return value if value is not None else fields.optional_int("max_tokens", minimum=1)


def _stop(fields: Fields) -> tuple[str, ...]:
    raw = fields.get("stop")
    if raw is None:
        return ()
    stops = [raw] if isinstance(raw, str) else raw
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise bad_request("stop must be a string or a list of strings", "stop")
    if len(stops) > 16:
        raise bad_request("stop takes at most 16 sequences", "stop")
    return tuple(s for s in stops if s)


def _chat_logprobs(fields: Fields) -> int | None:
    wanted = fields.optional_bool("logprobs")
    top = fields.optional_int("top_logprobs", minimum=0, maximum=20)
    if top is not None and not wanted:
        raise bad_request("top_logprobs needs logprobs: true", "top_logprobs")
    return (top or 0) if wanted else None


def _prompt(raw: Any) -> str:
    if isinstance(raw, list) and len(raw) == 1:
        raw = raw[0]
    if not isinstance(raw, str):
        raise bad_request("prompt must be a string (one prompt per request)", "prompt")
    if not raw:
        raise bad_request("prompt must not be empty", "prompt")
    return raw


def _tools(fields: Fields) -> tuple[dict[str, Any], ...]:
    raw = fields.get("tools")
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise bad_request("tools must be a list", "tools")
    return tuple(_tool(item, f"tools[{i}]") for i, item in enumerate(raw))


def _tool(raw: Any, param: str) -> dict[str, Any]:
    if not isinstance(raw, dict) or raw.get("type", "function") != "function":
        raise bad_request("each tool must be {'type': 'function', 'function': {...}}", param)
    function = raw.get("function")
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise bad_request("tool function needs a string name", f"{param}.function.name")
    parameters = function.get("parameters", {"type": "object", "properties": {}})
    if not isinstance(parameters, dict):
        raise bad_request("tool parameters must be a JSON schema object", f"{param}.function")
    return {"type": "function", "function": {**function, "parameters": parameters}}


def _tool_choice(fields: Fields, tools: tuple[dict[str, Any], ...]) -> ToolChoice:
    raw = fields.get("tool_choice")
    if raw is None:
        return ToolChoice("auto")
    choice = _tool_choice_value(raw)
    names = {tool["function"]["name"] for tool in tools}
    if choice.mode in ("required", "named") and not tools:
        raise bad_request(f"tool_choice '{choice.mode}' needs tools", "tool_choice")
    if choice.name is not None and choice.name not in names:
        raise bad_request(f"tool_choice names unknown tool '{choice.name}'", "tool_choice")
    return choice


def _tool_choice_value(raw: Any) -> ToolChoice:
    if raw in ("auto", "none", "required"):
        return ToolChoice(raw)
    function = raw.get("function") if isinstance(raw, dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(name, str):
        raise bad_request(
            "tool_choice must be 'auto', 'none', 'required' or "
            "{'type': 'function', 'function': {'name': ...}}",
            "tool_choice",
        )
    return ToolChoice("named", name)


def _response_schema(fields: Fields) -> dict[str, Any] | None:
    raw = fields.optional_object("response_format")
    kind = raw.get("type", "text") if raw else "text"
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "object"}
    if kind == "json_schema":
        spec = raw.get("json_schema") if raw else None
        schema = spec.get("schema", {"type": "object"}) if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise bad_request("json_schema.schema must be an object", "response_format.json_schema")
        return schema
    raise ApiError(
        400,
        "response_format.type must be 'text', 'json_object' or 'json_schema'",
        code="invalid_request",
        param="response_format.type",
    )
