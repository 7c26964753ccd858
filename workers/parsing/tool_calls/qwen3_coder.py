"""Qwen3-Coder calls: XML-ish functions and parameters inside <tool_call> tags.

    <tool_call>
    <function=write_file>
    <parameter=path>
    notes.txt
    </parameter>
    </function>
    </tool_call>

The model sometimes leaves out the <tool_call> wrapper, a </parameter>, or writes JSON
(Hermes style) instead; all of those are read too. One newline on each side of a value
belongs to the layout, not the value.
"""

from __future__ import annotations

import re
from typing import Any

from workers.parsing.tool_calls.blocks import (
    BlockReader,
    BlockResult,
    BlockToolParser,
    TagReader,
    tagged_calls,
)
from workers.parsing.tool_calls.hermes import END, START, parse_json_calls
from workers.parsing.tool_calls.text import MarkerSet

BARE_START = "<function="
FUNCTION_END = "</function>"
PARAMETER_END = "</parameter>"
_FUNCTION = re.compile(r"<function=([^>\n]*)>")
_PARAMETER = re.compile(r"<parameter=([^>\n]*)>")


class Qwen3CoderParser(BlockToolParser):
    markers = MarkerSet(START, BARE_START)

    def _open_reader(self, marker: str) -> BlockReader:
        if marker == BARE_START:
            return TagReader(BARE_START, FUNCTION_END, parse_functions, keep_tags=True)
        return TagReader(START, END, parse_tool_call_body)


def parse_tool_call_body(body: str) -> BlockResult:
    if body.lstrip().startswith(("{", "[")):
        return parse_json_calls(body)
    return parse_functions(body)


def parse_functions(body: str) -> BlockResult:
    """Every <function=...>...</function> in `body`."""
    return tagged_calls(body, _FUNCTION, FUNCTION_END, str.strip, _parameters)


def _parameters(body: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    pos = 0
    while (match := _PARAMETER.search(body, pos)) is not None:
        end, pos = _value_end(body, match.end())
        found[match.group(1).strip()] = _strip_layout(body[match.end() : end])
    return found


def _value_end(body: str, start: int) -> tuple[int, int]:
    """(end of the value, where to look for the next parameter)."""
    close = body.find(PARAMETER_END, start)
    if close >= 0:
        return close, close + len(PARAMETER_END)
    following = _PARAMETER.search(body, start)
    end = following.start() if following else len(body)
    return end, end


def _strip_layout(value: str) -> str:
    if value.startswith("\n"):
        value = value[1:]
    if value.endswith("\n"):
        value = value[:-1]
    return value
