"""Tool-call parsing for every format, on recorded outputs, whole and streamed at any split."""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from workers.parsing.events import (
    OutputEvent,
    ReasoningDelta,
    TextDelta,
    ToolCallArguments,
    ToolCallStart,
)
from workers.parsing.output import OutputParser, merge_events, parse_whole
from workers.parsing.tool_calls import TOOL_PARSERS, detect_tool_parser, make_tool_parser
from workers.parsing.tool_calls.arguments import coerce_value

RECORDED = Path(__file__).parent / "recorded"
TOOLS: list[dict[str, Any]] = json.loads((RECORDED / "tools.json").read_text("utf-8"))
CASES: list[dict[str, Any]] = json.loads((RECORDED / "cases.json").read_text("utf-8"))["cases"]


def recorded_output(case: dict[str, Any]) -> str:
    return (RECORDED / case["file"]).read_text("utf-8").removesuffix("\n")


def options(case: dict[str, Any]) -> dict[str, Any]:
    return {
        "tool_parser": case["tool_parser"],
        "reasoning_parser": case["reasoning_parser"],
        "starts_in_reasoning": case["starts_in_reasoning"],
        "tools": TOOLS,
    }


def counting_ids() -> Callable[[], str]:
    counter = itertools.count()
    return lambda: f"call_{next(counter):024x}"


def parse_pieces(pieces: Iterable[str], **kwargs: Any) -> list[OutputEvent]:
    parser = OutputParser(new_id=counting_ids(), **kwargs)
    events: list[OutputEvent] = []
    for piece in pieces:
        events += parser.feed(piece)
    return merge_events(events + parser.finish())


def summary(events: list[OutputEvent]) -> list[dict[str, Any]]:
    """Events as the recorded cases write them: no ids, arguments decoded."""
    out: list[dict[str, Any]] = []
    for event in events:
        if isinstance(event, TextDelta):
            out.append({"text": event.text})
        elif isinstance(event, ReasoningDelta):
            out.append({"reasoning": event.text})
        elif isinstance(event, ToolCallStart):
            out.append({"call": event.name, "arguments": ""})
        else:
            out[-1]["arguments"] += event.fragment
    for item in out:
        if "call" in item:
            item["arguments"] = json.loads(item["arguments"])
    return out


def calls(text: str, parser: str, tools: list[dict[str, Any]] | None = None) -> list[Any]:
    events = parse_whole(text, tool_parser=parser, reasoning_parser=None, tools=tools or TOOLS)
    return [item for item in summary(events) if "call" in item]


def texts(text: str, parser: str, tools: list[dict[str, Any]] | None = TOOLS) -> list[str]:
    events = parse_whole(text, tool_parser=parser, reasoning_parser=None, tools=tools)
    return [e.text for e in events if isinstance(e, TextDelta)]


CASE_IDS = [case["file"].removesuffix(".txt") for case in CASES]


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_recorded_output_parses_to_the_expected_events(case: dict[str, Any]) -> None:
    events = parse_whole(recorded_output(case), **options(case))
    assert summary(events) == case["events"]


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_recorded_output_split_anywhere_in_two_parses_the_same(case: dict[str, Any]) -> None:
    text = recorded_output(case)
    whole = parse_pieces([text], **options(case))
    for cut in range(len(text) + 1):
        assert parse_pieces([text[:cut], text[cut:]], **options(case)) == whole, cut


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_recorded_output_fed_one_character_at_a_time_parses_the_same(
    case: dict[str, Any],
) -> None:
    text = recorded_output(case)
    assert parse_pieces(text, **options(case)) == parse_pieces([text], **options(case))


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_recorded_output_fed_in_token_sized_pieces_parses_the_same(case: dict[str, Any]) -> None:
    text = recorded_output(case)
    rng = random.Random(case["file"])
    for _ in range(20):
        cuts = sorted(rng.sample(range(1, len(text)), k=min(len(text) - 1, len(text) // 4)))
        pieces = [text[a:b] for a, b in itertools.pairwise([0, *cuts, len(text)])]
        assert parse_pieces(pieces, **options(case)) == parse_pieces([text], **options(case))


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_tool_call_events_are_numbered_with_fresh_ids(case: dict[str, Any]) -> None:
    events = parse_whole(recorded_output(case), **options(case))
    starts = [e for e in events if isinstance(e, ToolCallStart)]
    assert [s.index for s in starts] == list(range(len(starts)))
    assert all(s.id.startswith("call_") and len(s.id) == 29 for s in starts)
    assert len({s.id for s in starts}) == len(starts)
    arguments = [e for e in events if isinstance(e, ToolCallArguments)]
    assert [a.index for a in arguments] == [s.index for s in starts]
    assert all(isinstance(json.loads(a.fragment), dict) for a in arguments)


def test_text_streams_out_before_the_output_ends() -> None:
    parser = make_tool_parser("hermes", TOOLS)
    assert parser.feed("The weather") == [TextDelta("The weather")]
    assert parser.feed(" in Paris is") == [TextDelta(" in Paris is")]


def test_a_marker_split_across_pieces_never_leaks_as_text() -> None:
    parser = make_tool_parser("hermes", TOOLS, new_id=lambda: "call_1")
    assert parser.feed("Sure.<tool") == [TextDelta("Sure.")]
    assert parser.feed("_ca") == []
    assert parser.feed('ll>{"name": "get_weather", "arguments": {}}</tool_call>') == [
        ToolCallStart(0, "call_1", "get_weather"),
        ToolCallArguments(0, "{}"),
    ]


def test_a_held_back_marker_prefix_that_is_not_a_marker_comes_out_as_text() -> None:
    parser = make_tool_parser("hermes", TOOLS)
    assert parser.feed("if a <tool") == [TextDelta("if a")]
    assert parser.feed("s then b") == [TextDelta(" <tools then b")]
    assert parser.feed(" <") == []
    assert parser.finish() == [TextDelta(" <")]


def test_whitespace_between_calls_gives_no_text_events() -> None:
    call = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>'
    events = parse_whole(
        f"\n\n{call}\n\n  \n{call}\n\n", tool_parser="hermes", reasoning_parser=None, tools=TOOLS
    )
    assert not [e for e in events if isinstance(e, TextDelta)]
    assert [e.index for e in events if isinstance(e, ToolCallStart)] == [0, 1]


def test_hermes_block_that_is_not_json_is_text_and_later_calls_still_parse() -> None:
    text = (
        "<tool_call>not json</tool_call>\n"
        '<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>'
    )
    assert texts(text, "hermes") == ["<tool_call>not json</tool_call>"]
    assert calls(text, "hermes") == [{"call": "get_weather", "arguments": {"city": "Oslo"}}]


def test_hermes_call_complete_but_never_closed_is_still_a_call() -> None:
    text = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n'
    assert calls(text, "hermes") == [{"call": "get_weather", "arguments": {"city": "Oslo"}}]


def test_hermes_arguments_given_as_a_json_string_are_decoded() -> None:
    text = '<tool_call>{"name": "get_weather", "arguments": "{\\"days\\": \\"4\\"}"}</tool_call>'
    assert calls(text, "hermes") == [{"call": "get_weather", "arguments": {"days": 4}}]


def test_hermes_unfinished_call_with_a_close_tag_in_an_argument_is_text_unchanged() -> None:
    text = '<tool_call>{"name": "write_file", "arguments": {"content": "a</tool_call> b'
    assert texts(text, "hermes") == [text]
    assert calls(text, "hermes") == []


def test_hermes_calls_with_names_outside_the_request_are_still_calls() -> None:
    text = '<tool_call>{"name": "lookup", "arguments": {"n": "1"}}</tool_call>'
    assert calls(text, "hermes", tools=[]) == [{"call": "lookup", "arguments": {"n": "1"}}]


def test_qwen3_coder_reads_a_missing_parameter_close_and_a_bare_function() -> None:
    text = (
        "<function=get_weather>\n<parameter=city>\nOslo\n<parameter=days>\n2\n</function>\n"
        "<tool_call>\n<function=run_tests>\n<parameter=verbose>\nfalse\n</parameter>\n"
        "</function>\n</tool_call>"
    )
    assert calls(text, "qwen3_coder") == [
        {"call": "get_weather", "arguments": {"city": "Oslo", "days": 2}},
        {"call": "run_tests", "arguments": {"verbose": False}},
    ]


def test_qwen3_coder_reads_a_hermes_json_body_too() -> None:
    text = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>'
    assert calls(text, "qwen3_coder") == [{"call": "get_weather", "arguments": {"city": "Oslo"}}]


def test_minimax_reads_unquoted_and_single_quoted_names() -> None:
    text = (
        "<minimax:tool_call><invoke name=get_weather><parameter name='days'>5</parameter>"
        "</invoke></minimax:tool_call>"
    )
    assert calls(text, "minimax") == [{"call": "get_weather", "arguments": {"days": 5}}]


def test_minimax_block_cut_inside_an_invoke_is_text() -> None:
    text = '<minimax:tool_call>\n<invoke name="get_weather">\n<parameter name="city">Os'
    assert texts(text, "minimax") == [text]


def test_mistral_text_after_the_marker_that_is_no_call_is_text() -> None:
    assert texts("[TOOL_CALLS] I cannot call tools here.", "mistral") == [
        "[TOOL_CALLS] I cannot call tools here."
    ]


def test_mistral_json_cut_by_max_tokens_is_text() -> None:
    text = '[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Os'
    assert texts(text, "mistral") == [text]


def test_llama3_object_naming_no_known_tool_is_text() -> None:
    text = '{"name": "get_weather", "parameters": {"city": "Oslo"}}'
    assert texts(text, "llama3", tools=None) == [text]
    assert texts(text, "llama3", tools=TOOLS[1:]) == [text]


def test_llama3_text_after_a_call_stays_text() -> None:
    text = '{"name": "get_weather", "parameters": {"city": "Oslo"}}\n\nChecking now.'
    assert calls(text, "llama3") == [{"call": "get_weather", "arguments": {"city": "Oslo"}}]
    assert texts(text, "llama3") == ["Checking now."]


def test_llama3_answer_that_merely_contains_json_is_text() -> None:
    text = 'Use {"name": "get_weather", "parameters": {}} to call it.'
    assert texts(text, "llama3") == [text]


def test_llama3_python_tag_is_dropped_from_a_non_call() -> None:
    assert texts('<|python_tag|>print("hi")', "llama3") == ['print("hi")']


@pytest.mark.parametrize(
    ("value", "schema", "expected"),
    [
        ("5", {"type": "integer"}, 5),
        ("5.0", {"type": "integer"}, 5),
        ("5.5", {"type": "integer"}, "5.5"),
        ("-2.5e3", {"type": "number"}, -2500.0),
        ("7", {"type": "number"}, 7),
        ("nan", {"type": "number"}, "nan"),
        ("True", {"type": "boolean"}, True),
        ("false", {"type": "boolean"}, False),
        ("yes", {"type": "boolean"}, "yes"),
        ('{"a": [1, 2]}', {"type": "object"}, {"a": [1, 2]}),
        ("{'a': 1}", {"type": "object"}, {"a": 1}),
        ("[1, 2]", {"type": "array"}, [1, 2]),
        ("[1, 2", {"type": "array"}, "[1, 2"),
        ('{"a": 1}', {"type": "array"}, '{"a": 1}'),
        ("null", {"type": ["integer", "null"]}, None),
        ("3", {"anyOf": [{"type": "integer"}, {"type": "null"}]}, 3),
        ("3", {"type": ["string", "integer"]}, "3"),
        ("3", {"enum": ["3", "4"]}, "3"),
        ("3", None, "3"),
        (3, {"type": "string"}, 3),
    ],
)
def test_argument_values_are_coerced_to_the_schema_type(
    value: Any, schema: Any, expected: Any
) -> None:
    assert coerce_value(value, schema) == expected


def test_unknown_parameters_pass_through_as_strings() -> None:
    text = "<tool_call><function=get_weather><parameter=hours>12</parameter></function></tool_call>"
    assert calls(text, "qwen3_coder") == [{"call": "get_weather", "arguments": {"hours": "12"}}]


def test_arguments_json_keeps_unicode_readable() -> None:
    text = '<tool_call>{"name": "get_weather", "arguments": {"city": "Zürich"}}</tool_call>'
    events = parse_whole(text, tool_parser="hermes", reasoning_parser=None, tools=TOOLS)
    assert ToolCallArguments(0, '{"city": "Zürich"}') in events


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        (
            "{% for tool in tools %}<tool_call>\n<function={{ tool.name }}>{% endfor %}",
            "qwen3_coder",
        ),
        ('{{- "<tool_call>\\n" }}{{ tool_call.arguments | tojson }}', "hermes"),
        ("{{- '<minimax:tool_call>\\n' }}<invoke name=", "minimax"),
        ("{%- if message.tool_calls %}[TOOL_CALLS]{{ calls | tojson }}", "mistral"),
        ("{%- if builtin_tools %}<|python_tag|>{{ code }}", "llama3"),
        ("{%- if message.role == 'ipython' %}", "llama3"),
        ("<|im_start|>{{ message.role }}\n{{ message.content }}<|im_end|>", None),
        (None, None),
    ],
)
def test_tool_parser_is_detected_from_chat_template_markers(
    template: str | None, expected: str | None
) -> None:
    assert detect_tool_parser(template) == expected


def test_every_configured_name_makes_a_parser_and_others_are_refused() -> None:
    for name in TOOL_PARSERS:
        assert make_tool_parser(name, TOOLS).finish() == []
    with pytest.raises(ValueError, match="unknown tool parser"):
        make_tool_parser("gpt-oss", TOOLS)
