"""Tool calls as parsed, their arguments coerced to the tool's schema, and their events.

XML-style formats give every value as a string; the tool's JSON schema says what it
should be ("5" -> 5 for an integer). A value the schema does not describe, or that does
not convert cleanly, stays as the model wrote it.
"""

from __future__ import annotations

import ast
import json
import math
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from workers.parsing.events import OutputEvent, ToolCallArguments, ToolCallStart

Schema = dict[str, Any]
_INTEGER = re.compile(r"[+-]?\d+")


@dataclass(frozen=True)
class ParsedCall:
    name: str
    arguments: dict[str, Any]


def new_call_id() -> str:
    return "call_" + secrets.token_hex(12)


def tool_properties(tools: list[dict[str, Any]] | None) -> dict[str, dict[str, Schema]]:
    """Tool name -> its parameters' property schemas, from OpenAI tool definitions."""
    found: dict[str, dict[str, Schema]] = {}
    for tool in tools or []:
        fn = tool.get("function", tool) if isinstance(tool, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            continue
        params = fn.get("parameters")
        props = params.get("properties") if isinstance(params, dict) else None
        found[fn["name"]] = props if isinstance(props, dict) else {}
    return found


def coerce_arguments(arguments: dict[str, Any], properties: dict[str, Schema]) -> dict[str, Any]:
    return {key: coerce_value(value, properties.get(key)) for key, value in arguments.items()}


def coerce_value(value: Any, schema: Any) -> Any:
    if not isinstance(value, str) or not isinstance(schema, dict):
        return value
    types = schema_types(schema)
    if "string" in types:
        return value
    for kind in types:
        convert = _CONVERTERS.get(kind)
        converted = convert(value.strip()) if convert else _NO
        if converted is not _NO:
            return converted
    return value


def schema_types(schema: Schema) -> list[str]:
    declared = schema.get("type")
    if isinstance(declared, str):
        return [declared]
    if isinstance(declared, list):
        return [t for t in declared if isinstance(t, str)]
    types: list[str] = []
    for key in ("anyOf", "oneOf"):
        for sub in schema.get(key) or []:
            if isinstance(sub, dict):
                types.extend(schema_types(sub))
    if not types and "properties" in schema:
        types.append("object")
    if not types and "items" in schema:
        types.append("array")
    return types


_NO = object()


def _to_integer(text: str) -> Any:
    if _INTEGER.fullmatch(text):
        return int(text)
    number = _to_number(text)
    if isinstance(number, float) and number.is_integer():
        return int(number)
    return _NO


def _to_number(text: str) -> Any:
    if _INTEGER.fullmatch(text):
        return int(text)
    try:
        number = float(text)
    except ValueError:
        return _NO
    return number if math.isfinite(number) else _NO


def _to_boolean(text: str) -> Any:
    lowered = text.lower()
    return {"true": True, "false": False}.get(lowered, _NO)


def _to_null(text: str) -> Any:
    return None if text.lower() in ("null", "none") else _NO


def _structured(kind: type) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        try:
            value = json.loads(text)
        except ValueError:
            value = _python_literal(text)
        return value if isinstance(value, kind) else _NO

    return convert


def _python_literal(text: str) -> Any:
    # Models sometimes write Python reprs ({'a': 1}) where JSON was asked for.
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return _NO


_CONVERTERS: dict[str, Callable[[str], Any]] = {
    "integer": _to_integer,
    "number": _to_number,
    "boolean": _to_boolean,
    "null": _to_null,
    "object": _structured(dict),
    "array": _structured(list),
}


class CallEmitter:
    """Numbers a response's tool calls and turns each into its two events."""

    def __init__(self, tools: list[dict[str, Any]] | None, new_id: Callable[[], str]) -> None:
        self._properties = tool_properties(tools)
        self._new_id = new_id
        self._count = 0

    def knows(self, name: str) -> bool:
        return name in self._properties

    @property
    def has_tools(self) -> bool:
        return bool(self._properties)

    def emit(self, call: ParsedCall) -> list[OutputEvent]:
        index, self._count = self._count, self._count + 1
        arguments = coerce_arguments(call.arguments, self._properties.get(call.name, {}))
        return [
            ToolCallStart(index=index, id=self._new_id(), name=call.name),
            ToolCallArguments(index=index, fragment=json.dumps(arguments, ensure_ascii=False)),
        ]


def calls_from_json(value: Any) -> list[ParsedCall] | None:
    """Calls from decoded JSON: one {"name", "arguments"|"parameters"} object or a list."""
    items = value if isinstance(value, list) else [value]
    calls = [call_from_json(item) for item in items]
    if not calls or any(call is None for call in calls):
        return None
    return [call for call in calls if call is not None]


def call_from_json(item: Any) -> ParsedCall | None:
    if not isinstance(item, dict):
        return None
    if isinstance(item.get("function"), dict) and "name" not in item:
        item = item["function"]
    name = item.get("name")
    arguments = _arguments_object(item.get("arguments", item.get("parameters")))
    if not isinstance(name, str) or not name.strip() or arguments is None:
        return None
    return ParsedCall(name=name.strip(), arguments=arguments)


def _arguments_object(raw: Any) -> dict[str, Any] | None:
    """Arguments as a dict: given as an object, as JSON text, or absent."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return None
    return raw if isinstance(raw, dict) else None
