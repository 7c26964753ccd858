"""From a model's raw text to OutputEvents: reasoning first, then tool calls.

The worker feeds each generated piece of text and frames the events it gets back; the
same code serves streaming and whole responses, so both say the same thing:
`merge_events(feed(a) + feed(b) + finish())` equals `parse_whole(a + b)`.

Raw text -> ReasoningSplitter (if a reasoning parser is set) -> its answer text -> the
tool parser (if one is set). Tool markup inside reasoning stays reasoning.

With a tool parser set, markup is parsed whether or not the request listed tools (so
it never reaches the client raw); only llama3, which has no markup, needs the tools'
names. A call whose markup never closes (max_tokens) reaches the client as text: see
workers.parsing.tool_calls.blocks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from workers.parsing.events import (
    OutputEvent,
    ReasoningDelta,
    TextDelta,
    ToolCallArguments,
    ToolCallStart,
)
from workers.parsing.reasoning import REASONING_PARSERS, ReasoningSplitter, detect_reasoning_parser
from workers.parsing.tool_calls import (
    TOOL_PARSERS,
    detect_tool_parser,
    make_tool_parser,
    new_call_id,
)

__all__ = [
    "REASONING_PARSERS",
    "TOOL_PARSERS",
    "OutputParser",
    "detect_reasoning_parser",
    "detect_tool_parser",
    "merge_events",
    "parse_whole",
]


class OutputParser:
    """One response's parser; `new_id` makes tool call ids (a seam for tests)."""

    def __init__(
        self,
        *,
        tool_parser: str | None,
        reasoning_parser: str | None,
        tools: list[dict[str, Any]] | None,
        starts_in_reasoning: bool = False,
        new_id: Callable[[], str] = new_call_id,
    ) -> None:
        self._reasoning = _make_splitter(reasoning_parser, starts_in_reasoning)
        self._tools = make_tool_parser(tool_parser, tools, new_id) if tool_parser else None
        self._saw_tool_calls = False

    @property
    def saw_tool_calls(self) -> bool:
        return self._saw_tool_calls

    def feed(self, text: str) -> list[OutputEvent]:
        if not text:
            return []
        if self._reasoning is None:
            return self._answer(text)
        return self._route(self._reasoning.feed(text))

    def finish(self) -> list[OutputEvent]:
        events = self._route(self._reasoning.finish()) if self._reasoning else []
        if self._tools is not None:
            events += self._note(self._tools.finish())
        return merge_events(events)

    def _answer(self, text: str) -> list[OutputEvent]:
        if self._tools is None:
            return [TextDelta(text)]
        return self._note(self._tools.feed(text))

    def _route(self, events: list[OutputEvent]) -> list[OutputEvent]:
        """Answer text from the reasoning splitter goes on through the tool parser."""
        routed: list[OutputEvent] = []
        for event in events:
            routed += self._answer(event.text) if isinstance(event, TextDelta) else [event]
        return merge_events(routed)

    def _note(self, events: list[OutputEvent]) -> list[OutputEvent]:
        if not self._saw_tool_calls:
            self._saw_tool_calls = any(isinstance(e, ToolCallStart) for e in events)
        return events


def _make_splitter(name: str | None, starts_in_reasoning: bool) -> ReasoningSplitter | None:
    if name is None:
        return None
    if name not in REASONING_PARSERS:
        raise ValueError(f"unknown reasoning parser {name!r}; expected one of {REASONING_PARSERS}")
    return ReasoningSplitter(starts_in_reasoning=starts_in_reasoning)


def parse_whole(
    text: str,
    *,
    tool_parser: str | None,
    reasoning_parser: str | None,
    tools: list[dict[str, Any]] | None,
    starts_in_reasoning: bool = False,
    new_id: Callable[[], str] = new_call_id,
) -> list[OutputEvent]:
    """The events of a whole response at once, merged."""
    parser = OutputParser(
        tool_parser=tool_parser,
        reasoning_parser=reasoning_parser,
        tools=tools,
        starts_in_reasoning=starts_in_reasoning,
        new_id=new_id,
    )
    return merge_events(parser.feed(text) + parser.finish())


def merge_events(events: list[OutputEvent]) -> list[OutputEvent]:
    """Join neighbouring text, reasoning, and same-call argument events into one each."""
    merged: list[OutputEvent] = []
    for event in events:
        joined = _join(merged[-1], event) if merged else None
        if joined is None:
            merged.append(event)
        else:
            merged[-1] = joined
    return merged


def _join(a: OutputEvent, b: OutputEvent) -> OutputEvent | None:
    if isinstance(a, TextDelta) and isinstance(b, TextDelta):
        return TextDelta(a.text + b.text)
    if isinstance(a, ReasoningDelta) and isinstance(b, ReasoningDelta):
        return ReasoningDelta(a.text + b.text)
    if isinstance(a, ToolCallArguments) and isinstance(b, ToolCallArguments) and a.index == b.index:
        return ToolCallArguments(a.index, a.fragment + b.fragment)
    return None
