"""Conversation items of the Responses API: what a request's `input` may hold, checked
once and written in one canonical shape (the shape stored and listed by
`GET /v1/responses/{id}/input_items`), and those items as chat messages for a worker.

Canonical items, each with an `id`:
  message        {role: user|system|developer, content: [input_text|input_image parts]}
                 {role: assistant, content: [output_text|refusal parts]}
  function_call  {call_id, name, arguments}
  function_call_output  {call_id, output: str}
  reasoning      {summary: [summary_text], content: [reasoning_text]}
A model's output items are already in this shape, so a stored conversation is its input
items followed by its output items, whichever request they came from.
"""

from __future__ import annotations

import uuid
from typing import Any

from gateway.request_fields import Json, as_object, check, invalid, optional, required

_INPUT_ROLES = ("user", "system", "developer")
_TEXT_PARTS = ("input_text", "output_text", "text")
_NOT_HERE = {
    "input_file": "file inputs are not supported here",
    "input_audio": "audio inputs are not supported here",
    "item_reference": "item references are not supported here; send the item itself",
}


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def input_items(value: Any) -> list[Json]:
    """A request's `input`: a string is one user message."""
    if isinstance(value, str):
        return [_message({"role": "user", "content": value}, "input")]
    if not isinstance(value, list) or not value:
        raise invalid("input", "must be a string or a list of at least one item")
    return [_item(as_object(item, f"input.{i}"), f"input.{i}") for i, item in enumerate(value)]


def _item(item: Json, path: str) -> Json:
    kind = optional(item, "type", str, f"{path}.") or "message"
    if kind == "message":
        return _message(item, path)
    if kind == "function_call":
        return _function_call(item, path)
    if kind == "function_call_output":
        return _function_call_output(item, path)
    if kind == "reasoning":
        return _reasoning(item, path)
    problem = _NOT_HERE.get(kind, f"{kind!r} items are not supported here")
    raise invalid(f"{path}.type", problem)


def _id(item: Json, path: str, prefix: str) -> str:
    return optional(item, "id", str, f"{path}.") or new_id(prefix)


def _message(item: Json, path: str) -> Json:
    role = item.get("role")
    if role not in (*_INPUT_ROLES, "assistant"):
        raise invalid(f"{path}.role", "must be 'user', 'assistant', 'system' or 'developer'")
    parts = _parts(item.get("content"), f"{path}.content", role == "assistant")
    return {
        "type": "message",
        "id": _id(item, path, "msg"),
        "role": role,
        "status": "completed",
        "content": parts,
    }


def _parts(content: Any, path: str, assistant: bool) -> list[Json]:
    if isinstance(content, str):
        return [_text_part(content, assistant)]
    parts = check(content, path, list) if content is not None else None
    if parts is None:
        raise invalid(path, "field required")
    return [
        _part(as_object(p, f"{path}.{i}"), f"{path}.{i}", assistant) for i, p in enumerate(parts)
    ]


def _text_part(text: str, assistant: bool) -> Json:
    if assistant:
        return {"type": "output_text", "text": text, "annotations": []}
    return {"type": "input_text", "text": text}


def _part(part: Json, path: str, assistant: bool) -> Json:
    kind = required(part, "type", str, f"{path}.")
    if kind in _TEXT_PARTS:
        return _text_part(required(part, "text", str, f"{path}."), assistant)
    if kind == "refusal" and assistant:
        return {"type": "refusal", "refusal": required(part, "refusal", str, f"{path}.")}
    if kind == "input_image" and not assistant:
        return _image(part, path)
    problem = _NOT_HERE.get(kind, f"{kind!r} content is not supported here")
    raise invalid(f"{path}.type", problem)


def _image(part: Json, path: str) -> Json:
    if part.get("file_id") is not None:
        raise invalid(f"{path}.file_id", "file ids are not supported here; send image_url")
    url = required(part, "image_url", str, f"{path}.")
    return {"type": "input_image", "image_url": url, "detail": part.get("detail") or "auto"}


def _function_call(item: Json, path: str) -> Json:
    prefix = f"{path}."
    return {
        "type": "function_call",
        "id": _id(item, path, "fc"),
        "call_id": required(item, "call_id", str, prefix),
        "name": required(item, "name", str, prefix),
        "arguments": required(item, "arguments", str, prefix),
        "status": "completed",
    }


def _function_call_output(item: Json, path: str) -> Json:
    output = item.get("output")
    if isinstance(output, list):
        parts = [as_object(p, f"{path}.output.{i}") for i, p in enumerate(output)]
        output = "".join(_output_text(p, f"{path}.output.{i}") for i, p in enumerate(parts))
    return {
        "type": "function_call_output",
        "id": _id(item, path, "fco"),
        "call_id": required(item, "call_id", str, f"{path}."),
        "output": check(output, f"{path}.output", str),
        "status": "completed",
    }


def _part_text(part: Any, path: str) -> str:
    text: str = required(as_object(part, path), "text", str, f"{path}.")
    return text


def _output_text(part: Json, path: str) -> str:
    kind = required(part, "type", str, f"{path}.")
    if kind not in _TEXT_PARTS:
        raise invalid(f"{path}.type", f"{kind!r} tool output is not supported here; send text")
    text: str = required(part, "text", str, f"{path}.")
    return text


def _reasoning(item: Json, path: str) -> Json:
    texts = {}
    for key, part_type in (("summary", "summary_text"), ("content", "reasoning_text")):
        parts = optional(item, key, list, f"{path}.") or []
        texts[key] = [
            {"type": part_type, "text": _part_text(p, f"{path}.{key}.{i}")}
            for i, p in enumerate(parts)
        ]
    return {"type": "reasoning", "id": _id(item, path, "rs"), **texts}


# -- items as chat messages -------------------------------------------------------------------


def chat_messages(items: list[Json]) -> list[Json]:
    """The conversation as OpenAI chat messages. An assistant turn is one message, whatever
    items it came as: reasoning, then text, then function calls; an item that goes back in
    that order starts the next turn."""
    messages: list[Json] = []
    turn: Json | None = None
    stage = 0
    for item in items:
        item_stage = _turn_stage(item)
        if item_stage is None:
            turn = None
            messages.append(_chat_message(item))
            continue
        if turn is None or item_stage < stage:
            turn = {"role": "assistant", "content": ""}
            messages.append(turn)
        stage = item_stage
        _add_to_turn(turn, item)
    return messages


def _turn_stage(item: Json) -> int | None:
    """Where an item stands in an assistant turn; None for the items of other turns."""
    if item["type"] == "message":
        return 1 if item["role"] == "assistant" else None
    return {"reasoning": 0, "function_call": 2}.get(item["type"])


def _chat_message(item: Json) -> Json:
    if item["type"] == "function_call_output":
        return {"role": "tool", "tool_call_id": item["call_id"], "content": item["output"]}
    return {"role": item["role"], "content": _chat_content(item["content"])}


def _add_to_turn(turn: Json, item: Json) -> None:
    kind = item["type"]
    if kind == "reasoning":
        parts = item["content"] or item["summary"]
        turn["reasoning_content"] = turn.get("reasoning_content", "") + _joined(parts)
    elif kind == "function_call":
        call = {"name": item["name"], "arguments": item["arguments"]}
        turn.setdefault("tool_calls", []).append(
            {"id": item["call_id"], "type": "function", "function": call}
        )
    else:
        texts = [p.get("text") or p.get("refusal") or "" for p in item["content"]]
        turn["content"] += "".join(texts)


def _joined(parts: list[Json]) -> str:
    return "".join(part["text"] for part in parts)


def _chat_content(parts: list[Json]) -> str | list[Json]:
    # Plain text stays a string: every chat template renders that.
    if all(part["type"] == "input_text" for part in parts):
        return "\n".join(part["text"] for part in parts)
    return [_chat_part(part) for part in parts]


def _chat_part(part: Json) -> Json:
    if part["type"] == "input_image":
        return {"type": "image_url", "image_url": {"url": part["image_url"]}}
    return {"type": "text", "text": part["text"]}
