"""Hermes-style calls (Hermes, Qwen2.5, Qwen3): JSON inside <tool_call> tags.

    <tool_call>
    {"name": "get_weather", "arguments": {"city": "Paris"}}
    </tool_call>

Several blocks may follow each other; one block may also hold several objects or a list.
"""

from __future__ import annotations

import json

from workers.parsing.tool_calls.arguments import calls_from_json
from workers.parsing.tool_calls.blocks import (
    BlockReader,
    BlockResult,
    BlockToolParser,
    TagReader,
    Verdict,
)
from workers.parsing.tool_calls.text import MarkerSet

START = "<tool_call>"
END = "</tool_call>"


class HermesParser(BlockToolParser):
    markers = MarkerSet(START)

    def _open_reader(self, marker: str) -> BlockReader:
        return TagReader(START, END, parse_json_calls)


def parse_json_calls(body: str) -> BlockResult:
    """One or more JSON calls, whitespace between them.

    JSON cut off inside a string or at the end of the body is INCOMPLETE: the closing
    tag that ended it was part of an argument.
    """
    body = body.rstrip()
    decoder = json.JSONDecoder()
    values = []
    pos = _skip_space(body, 0)
    while pos < len(body):
        try:
            value, pos = decoder.raw_decode(body, pos)
        except json.JSONDecodeError as error:
            cut = error.pos >= len(body) or error.msg.startswith("Unterminated string")
            return Verdict.INCOMPLETE if cut else Verdict.INVALID
        values.append(value)
        pos = _skip_space(body, pos)
    calls = calls_from_json(values[0] if len(values) == 1 else values) if values else None
    return calls if calls else Verdict.INVALID


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos].isspace():
        pos += 1
    return pos
