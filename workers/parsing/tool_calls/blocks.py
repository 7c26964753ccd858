"""The streaming engine shared by formats whose calls sit in marked blocks.

Text flows out as it comes, except a tail that could still become a start marker. A
start marker opens a block; its text is kept (as pieces, joined only when a possible end
shows up) until the format's reader finds where it ends and parses it:

- a list of calls: the calls are emitted and whitespace around them is dropped;
- INVALID: the block was not a call after all and goes out as text;
- INCOMPLETE: that end was inside the call (say `</tool_call>` inside a string
  argument), so reading goes on to the next possible end.

At finish() an open block is parsed as if it had closed (a model may stop right after
the call's body). If that fails it is text: a call cut off by max_tokens reaches the
client as the raw text the model wrote, with finish_reason "length" saying why, rather
than vanishing. Decisions depend only on the text, never on how it was split into
pieces, so streaming and whole parsing agree.
"""

from __future__ import annotations

import enum
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from workers.parsing.events import OutputEvent, TextDelta
from workers.parsing.tool_calls.arguments import CallEmitter, ParsedCall
from workers.parsing.tool_calls.text import MarkerSet, Trimmer


class Verdict(enum.Enum):
    INCOMPLETE = "incomplete"
    INVALID = "invalid"


BlockResult = list[ParsedCall] | Verdict


def tagged_calls(
    body: str,
    opening: re.Pattern[str],
    closing: str,
    name_of: Callable[[str], str],
    arguments_of: Callable[[str], dict[str, Any]],
) -> BlockResult:
    """Every call written as `opening` ... `closing` in `body` (the opening pattern's group 1
    holds the name); INCOMPLETE if one is not closed yet, INVALID if there is none."""
    calls: list[ParsedCall] = []
    pos = 0
    while (match := opening.search(body, pos)) is not None:
        close = body.find(closing, match.end())
        if close < 0:
            return Verdict.INCOMPLETE
        name = name_of(match.group(1))
        calls.append(ParsedCall(name=name, arguments=arguments_of(body[match.end() : close])))
        pos = close + len(closing)
    return calls if calls and all(call.name for call in calls) else Verdict.INVALID


class BlockReader(ABC):
    """Follows one block from just after its start marker; offsets count from the block start."""

    @abstractmethod
    def push(self, text: str) -> None: ...

    @abstractmethod
    def next_end(self) -> int | None:
        """Offset just past the next place the block may end, once per place, or None."""

    @abstractmethod
    def parse(self, block: str) -> BlockResult:
        """Judge `block` (start marker included), ended at a place next_end gave or cut short."""


class TagReader(BlockReader):
    """A block that ends with a closing tag; `parse_body` judges the text between the tags.

    With `keep_tags`, `parse_body` gets the whole block instead (for a start marker that
    is the opening of the markup itself, like `<function=`).
    """

    def __init__(
        self,
        start: str,
        end: str,
        parse_body: Callable[[str], BlockResult],
        *,
        keep_tags: bool = False,
    ) -> None:
        self._start = start
        self._end = end
        self._parse_body = parse_body
        self._keep_tags = keep_tags
        self._window = ""
        self._offset = len(start)

    def push(self, text: str) -> None:
        self._window += text

    def next_end(self) -> int | None:
        i = self._window.find(self._end)
        if i < 0:
            # Keep only what could be the beginning of a split closing tag.
            self._advance(max(0, len(self._window) - len(self._end) + 1))
            return None
        self._advance(i + len(self._end))
        return self._offset

    def _advance(self, n: int) -> None:
        self._offset += n
        self._window = self._window[n:]

    def parse(self, block: str) -> BlockResult:
        if self._keep_tags:
            return self._parse_body(block)
        body = block[len(self._start) :]
        if body.endswith(self._end):
            body = body[: -len(self._end)]
        return self._parse_body(body)


class BlockToolParser(ABC):
    """Text with call blocks in it; a subclass names the markers and how to read a block."""

    markers: MarkerSet

    def __init__(self, emitter: CallEmitter) -> None:
        self._emitter = emitter
        self._trim = Trimmer()
        self._pending = ""
        self._parts: list[str] | None = None
        self._reader: BlockReader | None = None
        self._incomplete_ends: list[int] = []

    @abstractmethod
    def _open_reader(self, marker: str) -> BlockReader: ...

    def feed(self, text: str) -> list[OutputEvent]:
        out: list[OutputEvent] = []
        self._consume(text, out)
        return out

    def finish(self) -> list[OutputEvent]:
        out: list[OutputEvent] = []
        while self._parts is not None:
            self._finish_block(out)
        pending, self._pending = self._pending, ""
        self._text(pending, out)
        self._text_out(self._trim.flush(), out)
        return out

    def _consume(self, text: str, out: list[OutputEvent]) -> None:
        while text:
            if self._parts is None:
                text = self._scan_text(text, out)
            else:
                text = self._scan_block(text, out)

    def _scan_text(self, text: str, out: list[OutputEvent]) -> str:
        """Emit plain text; return what follows a start marker (a block is then open)."""
        if not self._pending and not self.markers.may_start_in(text):
            self._text(text, out)  # most tokens: no marker can start here
            return ""
        buf = self._pending + text
        found = self.markers.find(buf)
        if found is None:
            held = self.markers.held_start(buf)
            self._pending = buf[held:]
            self._text(buf[:held], out)
            return ""
        index, marker = found
        self._pending = ""
        self._text(buf[:index], out)
        self._parts = [marker]
        self._reader = self._open_reader(marker)
        self._incomplete_ends = []
        return buf[index + len(marker) :]

    def _scan_block(self, text: str, out: list[OutputEvent]) -> str:
        """Read into the open block; return the text after it once it has ended."""
        assert self._parts is not None and self._reader is not None
        self._parts.append(text)
        self._reader.push(text)
        while (end := self._reader.next_end()) is not None:
            block = "".join(self._parts)
            self._parts = [block]
            result = self._reader.parse(block[:end])
            if result is not Verdict.INCOMPLETE:
                self._close_block(block[:end], result, out)
                return block[end:]
            self._incomplete_ends.append(end)
        return ""

    def _finish_block(self, out: list[OutputEvent]) -> None:
        assert self._parts is not None and self._reader is not None
        block = "".join(self._parts)
        result = self._reader.parse(block)
        if isinstance(result, list) or not self._incomplete_ends:
            self._close_block(block, result, out)
            return
        # Nothing parsed past the first possible end: end the block there after all.
        first = self._incomplete_ends[0]
        self._close_block(block[:first], Verdict.INVALID, out)
        self._consume(block[first:], out)

    def _close_block(self, block: str, result: BlockResult, out: list[OutputEvent]) -> None:
        self._parts = None
        self._reader = None
        if isinstance(result, list):
            self._trim.boundary()
            for call in result:
                out.extend(self._emitter.emit(call))
        else:
            self._text(block, out)

    def _text(self, text: str, out: list[OutputEvent]) -> None:
        self._text_out(self._trim.push(text), out)

    @staticmethod
    def _text_out(text: str, out: list[OutputEvent]) -> None:
        if text:
            out.append(TextDelta(text))
