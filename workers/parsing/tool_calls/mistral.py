"""Mistral calls, after the [TOOL_CALLS] token, in either of its two shapes.

    [TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Paris"}}]
    [TOOL_CALLS]get_weather[ARGS]{"city": "Paris"}

The newer shape repeats [TOOL_CALLS] per call and may carry [CALL_ID]<id> before
[ARGS]. Nothing closes the block: it ends where its JSON ends.
"""

from __future__ import annotations

import json
import re

from workers.parsing.tool_calls.arguments import calls_from_json
from workers.parsing.tool_calls.blocks import BlockReader, BlockResult, BlockToolParser, Verdict
from workers.parsing.tool_calls.jsonscan import JsonValueEnd
from workers.parsing.tool_calls.text import MarkerSet

START = "[TOOL_CALLS]"
ARGS = "[ARGS]"
_NAMED = re.compile(r"\s*([\w.\-:]+)(?:\[CALL_ID\][\w\-]*)?\s*\[ARGS\](.*)", re.DOTALL)
_NAME_SO_FAR = re.compile(r"\s*\S*")
_LONGEST_NAME = 256


class MistralParser(BlockToolParser):
    markers = MarkerSet(START)

    def _open_reader(self, marker: str) -> BlockReader:
        return MistralReader()


class MistralReader(BlockReader):
    """Reads the head (a name and [ARGS], or nothing) and then one JSON value."""

    def __init__(self) -> None:
        self._head = ""
        self._json: JsonValueEnd | None = None
        self._json_offset = len(START)  # block offset of the next text the JSON scan reads
        self._end: int | None = None

    def push(self, text: str) -> None:
        if self._end is not None:
            return
        if self._json is None:
            text = self._read_head(text)
        if self._json is not None and text:
            self._read_json(self._json, text)

    def _read_head(self, text: str) -> str:
        """Add to the head; once the JSON's start is known, return the text from there."""
        self._head += text
        start = self._json_start()
        if start is not None:
            self._json = JsonValueEnd()
            self._json_offset = len(START) + start
            return self._head[start:]
        if not self._head_may_continue():
            self._end = len(START) + len(self._head)
        return ""

    def _json_start(self) -> int | None:
        stripped = self._head.lstrip()
        if stripped[:1] in ("[", "{"):
            return len(self._head) - len(stripped)
        args = self._head.find(ARGS)
        return args + len(ARGS) if args >= 0 and _NAMED.fullmatch(self._head) else None

    def _head_may_continue(self) -> bool:
        head = self._head
        return (
            ARGS not in head and len(head) <= _LONGEST_NAME and bool(_NAME_SO_FAR.fullmatch(head))
        )

    def _read_json(self, scan: JsonValueEnd, text: str) -> None:
        end = scan.scan(text)
        if end is None:
            self._json_offset += len(text)
        else:
            self._end = self._json_offset + end

    def next_end(self) -> int | None:
        end, self._end = self._end, None
        return end

    def parse(self, block: str) -> BlockResult:
        body = block[len(START) :]
        named = _NAMED.fullmatch(body)
        text = named.group(2) if named else body
        try:
            value = json.loads(text)
        except ValueError:
            return Verdict.INVALID
        if named:
            calls = calls_from_json({"name": named.group(1), "arguments": value})
        else:
            calls = calls_from_json(value)
        return calls if calls else Verdict.INVALID
