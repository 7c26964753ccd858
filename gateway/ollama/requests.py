"""Ollama request bodies, checked and rewritten as the OpenAI requests a worker serves.

/api/chat and /api/generate become a streamed chat completion (a raw generate, a text
completion): the route always streams from the worker, to time the answer, and folds
the stream when its client wants one object. /api/embed and /api/embeddings become an
embeddings request. A request with nothing to generate or embed only loads (or, with
`keep_alive: 0`, unloads) the model, as in Ollama. Every refusal is a 400 naming the
field (gateway.request_fields).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from gateway.ollama.keep_alive import parse_keep_alive
from gateway.request_fields import (
    Json,
    as_object,
    check,
    integer,
    invalid,
    number,
    optional,
    required,
)

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"
EMBEDDINGS = "/v1/embeddings"

_ROLES = ("system", "user", "assistant", "tool")
_THINK_LEVELS = ("high", "medium", "low")
# Options a worker has no use for, checked for shape and dropped, as Ollama does with
# options a model does not take.
_IGNORED_NUMBERS = (
    "top_k", "min_p", "typical_p", "tfs_z", "repeat_last_n", "repeat_penalty",
    "presence_penalty", "frequency_penalty", "mirostat", "mirostat_tau", "mirostat_eta",
    "num_keep", "num_batch", "num_gpu", "main_gpu", "num_thread",
)  # fmt: skip
# Base64 starts of the image types a client may send, for the data URL's media type.
_IMAGE_TYPES = {
    "/9j/": "image/jpeg",
    "iVBOR": "image/png",
    "R0lG": "image/gif",
    "UklG": "image/webp",
}


@dataclass(frozen=True)
class OllamaRequest:
    model: str
    path: str  # the worker route the payload is for
    payload: Json = field(default_factory=dict)  # empty: only load or unload the model
    stream: bool = False  # what the client wants back, not what the worker is asked for
    keep_alive: float | None = None  # seconds, math.inf: forever, None: not said
    dimensions: int | None = None  # /api/embed: cut each vector to this many

    @property
    def load_only(self) -> bool:
        return not self.payload


def chat_request(body: Any) -> OllamaRequest:
    body = as_object(body, "body")
    model, stream, keep_alive = _common(body)
    messages = optional(body, "messages", list) or []
    if not messages:
        return OllamaRequest(model, CHAT, {}, stream, keep_alive)
    payload = {"model": model, "messages": _messages(messages), **_tools(body)}
    payload.update(_generation(body, chat=True))
    return OllamaRequest(model, CHAT, payload, stream, keep_alive)


def generate_request(body: Any) -> OllamaRequest:
    body = as_object(body, "body")
    model, stream, keep_alive = _common(body)
    prompt = optional(body, "prompt", str) or ""
    images = _images(body, "")
    if optional(body, "suffix", str):
        raise invalid("suffix", "is not supported: no model here fills in the middle")
    if optional(body, "template", str):
        raise invalid("template", "is not supported; a model's chat_template is set in the config")
    optional(body, "context", list)  # deprecated in Ollama; there is no token context to resume
    system = optional(body, "system", str)
    raw = optional(body, "raw", bool)
    if not prompt and not images:
        return OllamaRequest(model, CHAT, {}, stream, keep_alive)
    if raw:
        payload = {"model": model, "prompt": prompt, **_generation(body, chat=False)}
        return OllamaRequest(model, COMPLETIONS, payload, stream, keep_alive)
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": _content(prompt, images)})
    payload = {"model": model, "messages": messages, **_generation(body, chat=True)}
    return OllamaRequest(model, CHAT, payload, stream, keep_alive)


def embed_request(body: Any) -> OllamaRequest:
    """/api/embed: `input` a string or a list of strings."""
    body = as_object(body, "body")
    model, _, keep_alive = _common(body)
    value = body.get("input")
    inputs = [value] if isinstance(value, str) else value
    if inputs is not None and not isinstance(inputs, list):
        raise invalid("input", "must be a string or a list of strings")
    inputs = [check(text, f"input.{i}", str) for i, text in enumerate(inputs or [])]
    optional(body, "truncate", bool)
    dimensions = integer(body, "dimensions")
    if dimensions is not None and dimensions < 1:
        raise invalid("dimensions", "must be an integer of at least 1")
    _options(body)
    payload = {"model": model, "input": inputs} if any(inputs) else {}
    return OllamaRequest(model, EMBEDDINGS, payload, False, keep_alive, dimensions)


def embeddings_request(body: Any) -> OllamaRequest:
    """/api/embeddings, the older one: `prompt`, one string."""
    body = as_object(body, "body")
    model, _, keep_alive = _common(body)
    prompt = optional(body, "prompt", str) or ""
    _options(body)
    payload = {"model": model, "input": [prompt]} if prompt else {}
    return OllamaRequest(model, EMBEDDINGS, payload, False, keep_alive)


def _common(body: Json) -> tuple[str, bool, float | None]:
    model = required(body, "model", str)
    if not model:
        raise invalid("model", "must not be empty")
    stream = optional(body, "stream", bool)
    # Ollama streams unless told not to.
    return model, stream is not False, parse_keep_alive(body.get("keep_alive"))


# -- generation options -------------------------------------------------------------------


def _generation(body: Json, chat: bool) -> Json:
    request: Json = {"stream": True, "stream_options": {"include_usage": True}}
    request.update(_options(body))
    request.update(_format(body.get("format")))
    if chat:
        request.update(_think(body.get("think")))
    elif body.get("think") is not None:
        raise invalid("think", "does not apply to a raw prompt")
    return request


def _options(body: Json) -> Json:
    options = optional(body, "options", dict) or {}
    prefix = "options."
    sampling: Json = {}
    for key in ("temperature", "top_p"):
        value = number(options, key, prefix)
        if value is not None:
            sampling[key] = value
    seed = integer(options, "seed", prefix)
    if seed is not None:
        sampling["seed"] = seed
    num_predict = integer(options, "num_predict", prefix)
    if num_predict is not None and num_predict > 0:  # -1 (no limit), -2 (fill the context)
        sampling["max_tokens"] = num_predict
    integer(options, "num_ctx", prefix)  # a model's context is its context_length in the config
    for key in _IGNORED_NUMBERS:
        number(options, key, prefix)
    stop = _stop(options.get("stop"))
    if stop:
        sampling["stop"] = stop
    return sampling


def _stop(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    stops = check(value, "options.stop", list)
    return [check(s, f"options.stop.{i}", str) for i, s in enumerate(stops)]


def _format(value: Any) -> Json:
    if value is None or value == "":
        return {}
    if value == "json":
        return {"response_format": {"type": "json_object"}}
    if isinstance(value, dict):
        schema = {"name": "format", "schema": value}
        return {"response_format": {"type": "json_schema", "json_schema": schema}}
    raise invalid("format", 'must be "json" or a JSON schema object')


def _think(value: Any) -> Json:
    """`think` as the switch Qwen3-style templates read; a level as gpt-oss's variable too."""
    if value is None:
        return {}
    if isinstance(value, bool):
        return {"chat_template_kwargs": {"enable_thinking": value}}
    if value in _THINK_LEVELS:
        return {"chat_template_kwargs": {"enable_thinking": True, "reasoning_effort": value}}
    raise invalid("think", "must be true, false, 'high', 'medium' or 'low'")


def _tools(body: Json) -> Json:
    tools = optional(body, "tools", list) or []
    checked = []
    for i, tool in enumerate(tools):
        tool = as_object(tool, f"tools.{i}")
        function = required(tool, "function", dict, f"tools.{i}.")
        required(function, "name", str, f"tools.{i}.function.")
        checked.append({"type": "function", "function": function})
    return {"tools": checked} if checked else {}


# -- messages -----------------------------------------------------------------------------


def _messages(messages: list[Any]) -> list[Json]:
    converted: list[Json] = []
    pending: list[tuple[str, str]] = []  # (id, name) of tool calls not yet answered
    for i, message in enumerate(messages):
        path = f"messages.{i}"
        message = as_object(message, path)
        role = message.get("role")
        if role not in _ROLES:
            raise invalid(f"{path}.role", f"must be one of {', '.join(_ROLES)}")
        content = optional(message, "content", str, f"{path}.") or ""
        if role == "assistant":
            converted.append(_assistant(message, content, path, pending, len(converted)))
        elif role == "tool":
            converted.append(_tool_result(message, content, path, pending))
        else:
            converted.append({"role": role, "content": _content(content, _images(message, path))})
    return converted


def _assistant(
    message: Json, content: str, path: str, pending: list[tuple[str, str]], turn: int
) -> Json:
    converted: Json = {"role": "assistant", "content": content}
    thinking = optional(message, "thinking", str, f"{path}.")
    if thinking:
        converted["reasoning_content"] = thinking
    calls = optional(message, "tool_calls", list, f"{path}.") or []
    pending.clear()
    converted_calls = []
    for j, call in enumerate(calls):
        call_path = f"{path}.tool_calls.{j}"
        call = as_object(call, call_path)
        function = required(call, "function", dict, f"{call_path}.")
        name = required(function, "name", str, f"{call_path}.function.")
        # OpenAI pairs a tool result with its call by id; Ollama clients send none.
        call_id = optional(call, "id", str, f"{call_path}.") or f"call_{turn}_{j}"
        pending.append((call_id, name))
        converted_calls.append(
            {
                "id": call_id,
                "type": "function",
                "function": {"name": name, "arguments": _arguments(function, call_path)},
            }
        )
    if converted_calls:
        converted["tool_calls"] = converted_calls
    return converted


def _arguments(function: Json, path: str) -> str:
    arguments = function.get("arguments")
    if arguments is None:
        return "{}"
    if isinstance(arguments, str):
        return arguments
    return json.dumps(check(arguments, f"{path}.function.arguments", dict), ensure_ascii=False)


def _tool_result(message: Json, content: str, path: str, pending: list[tuple[str, str]]) -> Json:
    name = optional(message, "tool_name", str, f"{path}.") or optional(
        message, "name", str, f"{path}."
    )
    converted: Json = {"role": "tool", "content": content}
    if name:
        converted["name"] = name
    call_id = optional(message, "tool_call_id", str, f"{path}.")
    if call_id is None and pending:
        # The first unanswered call of that name, else the first unanswered call.
        match = next((p for p in pending if p[1] == name), pending[0])
        pending.remove(match)
        call_id = match[0]
    if call_id:
        converted["tool_call_id"] = call_id
    return converted


def _images(message: Json, path: str) -> list[str]:
    prefix = f"{path}." if path else ""
    images = optional(message, "images", list, prefix) or []
    return [check(image, f"{prefix}images.{i}", str) for i, image in enumerate(images)]


def _content(text: str, images: list[str]) -> str | list[Json]:
    """Plain text stays a string (every chat template renders that); images become parts."""
    if not images:
        return text
    parts: list[Json] = [{"type": "text", "text": text}] if text else []
    for image in images:
        media = next((t for start, t in _IMAGE_TYPES.items() if image.startswith(start)), "")
        url = f"data:{media or 'image/png'};base64,{image}"
        parts.append({"type": "image_url", "image_url": {"url": url}})
    return parts
