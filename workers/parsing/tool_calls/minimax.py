"""MiniMax-M2 calls: invokes with named parameters inside <minimax:tool_call> tags.

    <minimax:tool_call>
    <invoke name="get_weather">
    <parameter name="city">Paris</parameter>
    </invoke>
    </minimax:tool_call>

One block may hold several invokes. Names may be quoted with " or ' or not at all, and
values are trimmed, as MiniMax's own tool-calling guide does.
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
from workers.parsing.tool_calls.text import MarkerSet

START = "<minimax:tool_call>"
END = "</minimax:tool_call>"
INVOKE_END = "</invoke>"
PARAMETER_END = "</parameter>"
_NAME = r"""\s+name\s*=\s*("[^"]*"|'[^']*'|[^\s>]*)\s*>"""
_INVOKE = re.compile(r"<invoke" + _NAME)
_PARAMETER = re.compile(r"<parameter" + _NAME)


class MinimaxParser(BlockToolParser):
    markers = MarkerSet(START)

    def _open_reader(self, marker: str) -> BlockReader:
        return TagReader(START, END, parse_invokes)


def parse_invokes(body: str) -> BlockResult:
    """Every <invoke ...>...</invoke> in `body`."""
    return tagged_calls(body, _INVOKE, INVOKE_END, _unquote, _parameters)


def _parameters(body: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    pos = 0
    while (match := _PARAMETER.search(body, pos)) is not None:
        close = body.find(PARAMETER_END, match.end())
        end = close if close >= 0 else len(body)
        found[_unquote(match.group(1))] = body[match.end() : end].strip()
        pos = end + len(PARAMETER_END)
    return found


def _unquote(name: str) -> str:
    name = name.strip()
    if len(name) >= 2 and name[0] == name[-1] and name[0] in "\"'":
        return name[1:-1].strip()
    return name
