"""Checking the fields of a translated API's request body (Anthropic Messages, OpenAI
Responses, Ollama) before it becomes a chat request.

Every refusal is a 400 whose message and `param` name the field by its dotted path
(`messages.2.content.0.source.type`), so a client sees which part of its body was wrong.
"""

from __future__ import annotations

from typing import Any

from workers.contract.errors import ApiError

Json = dict[str, Any]

_TYPE_NAMES = {str: "a string", bool: "a boolean", list: "a list", dict: "an object"}


def invalid(path: str, problem: str) -> ApiError:
    return ApiError(400, f"{path}: {problem}", code="invalid_request", param=path)


def check(value: Any, path: str, type_: type) -> Any:
    if not isinstance(value, type_):
        raise invalid(path, f"must be {_TYPE_NAMES.get(type_, type_.__name__)}")
    return value


def required(obj: Json, key: str, type_: type, prefix: str = "") -> Any:
    path = f"{prefix}{key}"
    if obj.get(key) is None:
        raise invalid(path, "field required")
    return check(obj[key], path, type_)


def optional(obj: Json, key: str, type_: type, prefix: str = "") -> Any:
    value = obj.get(key)
    return None if value is None else check(value, f"{prefix}{key}", type_)


def as_object(value: Any, path: str) -> Json:
    return check(value, path, dict)


def number(obj: Json, key: str, prefix: str = "") -> float | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise invalid(f"{prefix}{key}", "must be a number")
    return value


def integer(obj: Json, key: str, prefix: str = "") -> int | None:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(f"{prefix}{key}", "must be an integer")
    return value


def positive_int(obj: Json, key: str, prefix: str = "") -> int:
    value = obj.get(key)
    if value is None:
        raise invalid(f"{prefix}{key}", "field required")
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise invalid(f"{prefix}{key}", "must be an integer of at least 1")
    return value
