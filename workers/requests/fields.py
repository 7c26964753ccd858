"""Typed reads of a JSON request body, each failure a 400 naming the field."""

from __future__ import annotations

import json
from typing import Any

from workers.contract.errors import bad_request

_ROLES = ("system", "developer", "user", "assistant", "tool")
_IMAGE_PARTS = ("image_url", "input_image", "image")


class Fields:
    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def get(self, name: str) -> Any:
        return self._data.get(name)

    def required(self, name: str) -> Any:
        if name not in self._data:
            raise bad_request(f"'{name}' is required", name, code="missing_field")
        return self._data[name]

    def optional_bool(self, name: str) -> bool | None:
        value = self._data.get(name)
        if value is not None and not isinstance(value, bool):
            raise bad_request(f"'{name}' must be true or false", name)
        return value

    def optional_str(self, name: str) -> str | None:
        value = self._data.get(name)
        if value is not None and not isinstance(value, str):
            raise bad_request(f"'{name}' must be a string", name)
        return value

    def optional_object(self, name: str) -> dict[str, Any] | None:
        value = self._data.get(name)
        if value is not None and not isinstance(value, dict):
            raise bad_request(f"'{name}' must be an object", name)
        return value

    def optional_int(
        self, name: str, minimum: int | None = None, maximum: int | None = None
    ) -> int | None:
        value = self._data.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad_request(f"'{name}' must be an integer", name)
        _check_range(name, value, minimum, maximum)
        return value

    def optional_float(
        self, name: str, minimum: float | None = None, maximum: float | None = None
    ) -> float | None:
        value = self._data.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad_request(f"'{name}' must be a number", name)
        _check_range(name, value, minimum, maximum)
        return float(value)


def _check_range(name: str, value: float, minimum: float | None, maximum: float | None) -> None:
    if minimum is not None and value < minimum:
        raise bad_request(f"'{name}' must be at least {minimum}", name)
    if maximum is not None and value > maximum:
        raise bad_request(f"'{name}' must be at most {maximum}", name)


def parse_messages(raw: Any) -> tuple[tuple[dict[str, Any], ...], str | None]:
    """Messages ready for a chat template, and the param of the first image part, if any."""
    if not isinstance(raw, list) or not raw:
        raise bad_request("messages must be a non-empty list", "messages")
    messages: list[dict[str, Any]] = []
    first_image: str | None = None
    for index, item in enumerate(raw):
        message, image = _message(item, f"messages[{index}]")
        messages.append(message)
        first_image = first_image or image
    return tuple(messages), first_image


def _message(raw: Any, param: str) -> tuple[dict[str, Any], str | None]:
    if not isinstance(raw, dict):
        raise bad_request("each message must be an object", param)
    role = raw.get("role")
    if role not in _ROLES:
        raise bad_request(f"role must be one of {', '.join(_ROLES)}", f"{param}.role")
    content, image = _content(raw.get("content"), f"{param}.content")
    message: dict[str, Any] = {"role": role, "content": content}
    for key in ("name", "tool_call_id", "reasoning_content"):
        if isinstance(raw.get(key), str):
            message[key] = raw[key]
    if role == "assistant" and raw.get("tool_calls"):
        message["tool_calls"] = _tool_calls(raw["tool_calls"], f"{param}.tool_calls")
    return message, image


def _content(raw: Any, param: str) -> tuple[str, str | None]:
    if raw is None:
        return "", None
    if isinstance(raw, str):
        return raw, None
    if not isinstance(raw, list):
        raise bad_request("content must be a string or a list of parts", param)
    texts: list[str] = []
    first_image: str | None = None
    for index, part in enumerate(raw):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind in _IMAGE_PARTS:
            first_image = first_image or f"{param}[{index}]"
        else:
            raise bad_request("content parts must be text or image parts", f"{param}[{index}]")
    return "\n".join(texts), first_image


def _tool_calls(raw: Any, param: str) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise bad_request("tool_calls must be a list", param)
    return [_tool_call(item, f"{param}[{i}]") for i, item in enumerate(raw)]


def _tool_call(raw: Any, param: str) -> dict[str, Any]:
    function = raw.get("function") if isinstance(raw, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise bad_request("a tool call needs function.name", f"{param}.function")
    return {
        "id": raw.get("id") or "",
        "type": "function",
        "function": {"name": function["name"], "arguments": _arguments(function.get("arguments"))},
    }


def _arguments(raw: Any) -> Any:
    # Chat templates render arguments with `| tojson`, which wants the object, not its text.
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw
    return raw if raw is not None else {}
