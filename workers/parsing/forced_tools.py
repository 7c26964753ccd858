"""tool_choice "required" or a named function, enforced with a JSON-schema grammar.

The grammar makes the model write JSON only, so no model-specific markup is involved:
a named choice writes the arguments object, "required" writes {"name", "arguments"}.
`ForcedToolCallParser` turns that JSON into the same events the markup parsers emit.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from workers.parsing.events import OutputEvent, TextDelta, ToolCallArguments, ToolCallStart
from workers.parsing.tool_calls import new_call_id


def tool_call_schema(tools: Sequence[dict[str, Any]], name: str | None) -> dict[str, Any]:
    parameters = {tool["function"]["name"]: tool["function"]["parameters"] for tool in tools}
    if name is not None:
        return parameters[name]
    return {
        "anyOf": [
            {
                "type": "object",
                "properties": {"name": {"const": tool_name}, "arguments": schema},
                "required": ["name", "arguments"],
            }
            for tool_name, schema in parameters.items()
        ]
    }


class ForcedToolCallParser:
    """A named call streams its arguments as they come; "required" must see the whole
    object to learn the name, so it emits at finish."""

    def __init__(self, name: str | None) -> None:
        self._name = name
        self._buffer: list[str] = []
        self._started = False
        self.saw_tool_calls = name is not None

    def feed(self, text: str) -> list[OutputEvent]:
        if self._name is None:
            self._buffer.append(text)
            return []
        events: list[OutputEvent] = []
        if not self._started:
            self._started = True
            events.append(ToolCallStart(0, new_call_id(), self._name))
        if text:
            events.append(ToolCallArguments(0, text))
        return events

    def finish(self) -> list[OutputEvent]:
        if self._name is not None:
            return [] if self._started else self.feed("{}")
        text = "".join(self._buffer)
        try:
            call = json.loads(text)
            name, arguments = call["name"], call["arguments"]
        except (json.JSONDecodeError, KeyError, TypeError):
            return [TextDelta(text)]  # cut short (max_tokens): show what came, not a broken call
        self.saw_tool_calls = True
        return [
            ToolCallStart(0, new_call_id(), name),
            ToolCallArguments(0, json.dumps(arguments, ensure_ascii=False)),
        ]
