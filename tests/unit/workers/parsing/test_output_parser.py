"""The OutputParser contract the worker relies on: reasoning and tools together, whole or fed."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from workers.parsing.events import (
    OutputEvent,
    ReasoningDelta,
    TextDelta,
    ToolCallArguments,
    ToolCallStart,
)
from workers.parsing.output import TOOL_PARSERS, OutputParser, merge_events, parse_whole

TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "write_file",
            "description": "Write a file.",
            "parameters": {
                "type": "object",
                "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
            },
        },
    }
]
QWEN3_OUTPUT = (
    "<think>\nThe user wants a greeting file.\n</think>\n\nWriting it now.\n"
    '<tool_call>\n{"name": "write_file", "arguments": {"path": "hi.txt", "content": "hej 👋"}}\n'
    "</tool_call>"
)


def feed_all(parser: OutputParser, pieces: list[str]) -> list[OutputEvent]:
    events: list[OutputEvent] = []
    for piece in pieces:
        events += parser.feed(piece)
    return merge_events(events + parser.finish())


def test_whole_parse_gives_reasoning_text_and_a_call_in_order() -> None:
    events = parse_whole(QWEN3_OUTPUT, tool_parser="hermes", reasoning_parser="think", tools=TOOLS)
    assert events[:2] == [
        ReasoningDelta("The user wants a greeting file."),
        TextDelta("Writing it now."),
    ]
    start, arguments = events[2:]
    assert isinstance(start, ToolCallStart) and start.index == 0 and start.name == "write_file"
    assert re.fullmatch(r"call_[0-9a-f]{24}", start.id)
    assert arguments == ToolCallArguments(0, '{"path": "hi.txt", "content": "hej 👋"}')


def test_feeding_token_by_token_equals_the_whole_parse() -> None:
    options: dict[str, Any] = {"tool_parser": "hermes", "reasoning_parser": "think", "tools": TOOLS}
    whole = parse_whole(QWEN3_OUTPUT, new_id=lambda: "call_x", **options)
    tokens = re.findall(r"\s*\S{1,4}|\s+", QWEN3_OUTPUT)
    assert feed_all(OutputParser(new_id=lambda: "call_x", **options), tokens) == whole


def test_saw_tool_calls_turns_true_when_a_call_is_emitted() -> None:
    parser = OutputParser(tool_parser="hermes", reasoning_parser="think", tools=TOOLS)
    parser.feed(QWEN3_OUTPUT[:-5])
    assert not parser.saw_tool_calls
    parser.feed(QWEN3_OUTPUT[-5:])
    assert parser.saw_tool_calls


def test_text_only_answer_reports_no_tool_calls() -> None:
    parser = OutputParser(tool_parser="hermes", reasoning_parser="think", tools=TOOLS)
    assert feed_all(parser, ["Just ", "text."]) == [TextDelta("Just text.")]
    assert not parser.saw_tool_calls


def test_without_parsers_text_passes_through_unchanged_and_at_once() -> None:
    parser = OutputParser(tool_parser=None, reasoning_parser=None, tools=TOOLS)
    assert parser.feed("<think>x</think><tool") == [TextDelta("<think>x</think><tool")]
    assert parser.feed("_call>\n") == [TextDelta("_call>\n")]
    assert parser.finish() == []


def test_tool_markup_inside_reasoning_stays_reasoning() -> None:
    text = "<think>Maybe <tool_call>{}</tool_call>? No.</think>Fine."
    events = parse_whole(text, tool_parser="hermes", reasoning_parser="think", tools=TOOLS)
    assert events == [ReasoningDelta("Maybe <tool_call>{}</tool_call>? No."), TextDelta("Fine.")]


def test_empty_feed_gives_no_events() -> None:
    parser = OutputParser(tool_parser="mistral", reasoning_parser="think", tools=TOOLS)
    assert parser.feed("") == []
    assert parser.finish() == []


def test_unknown_parser_names_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown reasoning parser"):
        OutputParser(tool_parser=None, reasoning_parser="harmony", tools=None)
    with pytest.raises(ValueError, match="unknown tool parser"):
        OutputParser(tool_parser="xml", reasoning_parser=None, tools=None)


def test_configurable_tool_parser_names() -> None:
    assert TOOL_PARSERS == ("hermes", "minimax", "qwen3_coder", "mistral", "llama3")


def test_merge_joins_neighbours_of_one_kind_only() -> None:
    events: list[OutputEvent] = [
        TextDelta("a"),
        TextDelta("b"),
        ToolCallStart(0, "call_1", "f"),
        ToolCallArguments(0, "{"),
        ToolCallArguments(0, "}"),
        ToolCallStart(1, "call_2", "f"),
        ToolCallArguments(1, "{}"),
        ReasoningDelta("r"),
        ReasoningDelta("s"),
    ]
    assert merge_events(events) == [
        TextDelta("ab"),
        ToolCallStart(0, "call_1", "f"),
        ToolCallArguments(0, "{}"),
        ToolCallStart(1, "call_2", "f"),
        ToolCallArguments(1, "{}"),
        ReasoningDelta("rs"),
    ]


@pytest.mark.parametrize("tool_parser", TOOL_PARSERS)
def test_feeding_a_long_call_one_character_at_a_time_stays_linear(tool_parser: str) -> None:
    content = "x = '</tool' + 'call>' \\n" * 4000  # ~100 KB with marker look-alikes
    text = _long_call(tool_parser, content)
    parser = OutputParser(tool_parser=tool_parser, reasoning_parser="think", tools=TOOLS)
    started = time.perf_counter()
    events = feed_all(parser, list(text))
    elapsed = time.perf_counter() - started
    assert parser.saw_tool_calls
    assert isinstance(events[-1], ToolCallArguments) and len(events[-1].fragment) > len(content)
    assert elapsed < 5.0, f"{len(text)} one-character feeds took {elapsed:.2f}s"


def _long_call(tool_parser: str, content: str) -> str:
    arguments = '{"path": "a.py", "content": "' + content + '"}'
    return {
        "hermes": f'<tool_call>{{"name": "write_file", "arguments": {arguments}}}</tool_call>',
        "mistral": f"[TOOL_CALLS]write_file[ARGS]{arguments}",
        "llama3": f'{{"name": "write_file", "parameters": {arguments}}}',
        "qwen3_coder": (
            "<tool_call>\n<function=write_file>\n<parameter=content>\n"
            f"{content}\n</parameter>\n</function>\n</tool_call>"
        ),
        "minimax": (
            '<minimax:tool_call><invoke name="write_file"><parameter name="content">'
            f"{content}</parameter></invoke></minimax:tool_call>"
        ),
    }[tool_parser]
