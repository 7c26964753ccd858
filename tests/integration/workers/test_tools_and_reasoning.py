"""Tool calls and <think> reasoning, parsed the same way streaming and whole."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from tests.integration.workers.conftest import StartScripted

REPLY = (
    "<think>The user wants weather. I should call the tool.</think>"
    "<tool_call>\n"
    '{"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}\n'
    "</tool_call>"
)
TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]
MESSAGES: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]


def _worker(start_scripted: StartScripted) -> Any:
    return start_scripted(
        {"default": REPLY}, tool_parser="hermes", reasoning_parser="think"
    ).client()


def test_whole_answer_has_reasoning_and_tool_call(start_scripted: StartScripted) -> None:
    reply = _worker(start_scripted).chat.completions.create(
        model="m", messages=MESSAGES, tools=TOOLS
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.model_extra is not None
    reasoning = choice.message.model_extra["reasoning_content"]
    assert reasoning == "The user wants weather. I should call the tool."
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris", "unit": "celsius"}
    assert call.id


def test_streamed_answer_matches_whole(start_scripted: StartScripted) -> None:
    client = _worker(start_scripted)
    whole = client.chat.completions.create(model="m", messages=MESSAGES, tools=TOOLS)
    chunks = list(
        client.chat.completions.create(model="m", messages=MESSAGES, tools=TOOLS, stream=True)
    )
    reasoning, content, names, arguments = "", "", [], ""
    for chunk in chunks:
        delta = chunk.choices[0].delta
        reasoning += (delta.model_extra or {}).get("reasoning_content") or ""
        content += delta.content or ""
        for call in delta.tool_calls or []:
            assert call.index == 0
            if call.function and call.function.name:
                names.append(call.function.name)
                assert call.id and call.type == "function"
            arguments += (call.function.arguments or "") if call.function else ""
    message = whole.choices[0].message
    assert message.tool_calls is not None
    assert reasoning == (message.model_extra or {})["reasoning_content"]
    assert content == (message.content or "")
    assert names == [message.tool_calls[0].function.name]
    assert arguments == message.tool_calls[0].function.arguments
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_tool_call_history_is_accepted(start_scripted: StartScripted) -> None:
    client = start_scripted({"default": "It is 21 degrees."}).client()
    history: list[Any] = [
        *MESSAGES,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "21C"},
    ]
    reply = client.chat.completions.create(model="m", messages=history, tools=TOOLS)
    assert reply.choices[0].message.content == "It is 21 degrees."


def test_required_tool_choice_is_refused_where_output_cannot_be_constrained(
    start_scripted: StartScripted,
) -> None:
    client = start_scripted({"default": "x"}).client()
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(
            model="m", messages=MESSAGES, tools=TOOLS, tool_choice="required"
        )
    assert "cannot constrain" in str(refused.value)
    with pytest.raises(openai.BadRequestError) as refused_json:
        client.chat.completions.create(
            model="m", messages=MESSAGES, response_format={"type": "json_object"}
        )
    assert "cannot constrain" in str(refused_json.value)


def test_template_without_tools_gets_them_described_in_the_system_message(
    start_scripted: StartScripted,
) -> None:
    # The scripted model has no template (ChatML fallback, which cannot show tools): it
    # only answers with a call when the tool's signature reached its prompt.
    call = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
    client = start_scripted(
        {"replies": [{"match": '<tools>\n{"name": "get_weather"', "text": call}], "default": "?"}
    ).client()
    reply = client.chat.completions.create(model="m", messages=MESSAGES, tools=TOOLS)
    assert reply.choices[0].finish_reason == "tool_calls"
    assert reply.choices[0].message.tool_calls is not None
    without_tools = client.chat.completions.create(model="m", messages=MESSAGES)
    assert without_tools.choices[0].message.content == "?"
