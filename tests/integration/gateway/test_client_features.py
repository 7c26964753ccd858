"""What agents and chat UIs rely on, through the real gateway and worker processes with the
official `openai` and `anthropic` SDKs: tool calls, reasoning, Anthropic Messages (whole and
streamed), presets, API keys. The scripted backend replays exact model markup."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tests.integration.stack import Stack, base_config, running_stack

pytestmark = pytest.mark.slow

KEY = "test-key-123"
TOOL_REPLY = (
    "<think>The user wants weather; call the tool.</think>"
    'Let me check.<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris", "days": "3"}}'
    "\n</tool_call>"
)
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather forecast",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                "required": ["city"],
            },
        },
    }
]
ANTHROPIC_TOOLS: Any = [
    {
        "name": "get_weather",
        "description": "Weather forecast",
        "input_schema": TOOLS[0]["function"]["parameters"],
    }
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("features")
    models_dir = tmp / "models"
    models_dir.mkdir()
    script = {
        "default": "<think>Short thought.</think>Plain answer.",
        "replies": [{"match": "weather", "text": TOOL_REPLY}],
        "token_delay_s": 0.0,
    }
    (models_dir / "agent.json").write_text(json.dumps(script))
    model = {
        "id": "agent",
        "path": "agent.json",
        "backend": "scripted",
        "tool_parser": "hermes",
        "reasoning_parser": "think",
        "embeddings": True,
    }
    config = base_config(
        [model],
        models_dir,
        security={"api_keys": [KEY]},
        routing={"presets": {"terse": {"model": "agent", "params": {"max_tokens": 3}}}},
    )
    with running_stack(tmp, config) as running:
        yield running


def oai(stack: Stack) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack.url + "/v1", api_key=KEY, max_retries=0)


def claude(stack: Stack, key: str = KEY) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=stack.url, api_key=key, max_retries=0)


def test_missing_or_wrong_api_key_is_401(stack: Stack) -> None:
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=stack.url + "/v1", api_key="wrong", max_retries=0).models.list()
    with pytest.raises(anthropic.AuthenticationError):
        claude(stack, key="wrong").messages.create(
            model="agent", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
        )


def test_openai_tool_call_and_reasoning_whole(stack: Stack) -> None:
    reply = oai(stack).chat.completions.create(
        model="agent", messages=[{"role": "user", "content": "weather?"}], tools=TOOLS
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "Let me check."
    call = choice.message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"city": "Paris", "days": 3}  # type: ignore[union-attr]
    assert choice.message.model_dump()["reasoning_content"] == (
        "The user wants weather; call the tool."
    )


def test_openai_tool_call_streamed_matches_whole(stack: Stack) -> None:
    chunks = list(
        oai(stack).chat.completions.create(
            model="agent",
            messages=[{"role": "user", "content": "weather?"}],
            tools=TOOLS,
            stream=True,
        )
    )
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    content = "".join(d.content or "" for d in deltas)
    reasoning = "".join(d.model_dump().get("reasoning_content") or "" for d in deltas)
    calls = [tc for d in deltas for tc in (d.tool_calls or [])]
    assert content == "Let me check."
    assert reasoning == "The user wants weather; call the tool."
    assert calls[0].function.name == "get_weather"  # type: ignore[union-attr]
    arguments = "".join(tc.function.arguments or "" for tc in calls)  # type: ignore[union-attr]
    assert json.loads(arguments) == {"city": "Paris", "days": 3}
    assert "<tool_call>" not in content and "<think>" not in content
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"


def test_anthropic_messages_whole_with_thinking_and_tool_use(stack: Stack) -> None:
    message = claude(stack).messages.create(
        model="agent",
        max_tokens=200,
        tools=ANTHROPIC_TOOLS,
        messages=[{"role": "user", "content": "weather?"}],
    )
    kinds = [block.type for block in message.content]
    assert kinds == ["thinking", "text", "tool_use"]
    tool_use = message.content[2]
    assert tool_use.type == "tool_use"
    assert tool_use.name == "get_weather" and tool_use.input == {"city": "Paris", "days": 3}
    assert message.stop_reason == "tool_use"
    assert message.usage.output_tokens > 0


def test_anthropic_messages_streamed_gives_the_same_message(stack: Stack) -> None:
    with claude(stack).messages.stream(
        model="agent",
        max_tokens=200,
        tools=ANTHROPIC_TOOLS,
        messages=[{"role": "user", "content": "weather?"}],
    ) as stream:
        final = stream.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "text", "tool_use"]
    assert final.content[1].type == "text" and final.content[1].text == "Let me check."
    assert final.content[2].type == "tool_use" and final.content[2].input["days"] == 3
    assert final.stop_reason == "tool_use"


def test_anthropic_tool_result_round_trip_and_plain_text(stack: Stack) -> None:
    message = claude(stack).messages.create(
        model="agent",
        max_tokens=50,
        system="Be brief.",
        messages=[
            {"role": "user", "content": "hello"},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"}
            ]},
        ],
    )  # fmt: skip
    assert [b.type for b in message.content] == ["thinking", "text"]
    assert message.content[1].type == "text" and message.content[1].text == "Plain answer."
    assert message.stop_reason == "end_turn"


def test_anthropic_count_tokens(stack: Stack) -> None:
    count = claude(stack).messages.count_tokens(
        model="agent", messages=[{"role": "user", "content": "hello there"}]
    )
    assert count.input_tokens > 0


def test_anthropic_errors_come_in_anthropics_shape(stack: Stack) -> None:
    with pytest.raises(anthropic.NotFoundError):
        claude(stack).messages.create(
            model="nope", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
        )
    response = httpx.post(
        stack.url + "/v1/messages",
        headers={"x-api-key": KEY},
        json={"model": "agent", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert response.status_code == 400
    assert response.json()["type"] == "error"
    assert "max_tokens" in response.json()["error"]["message"]


def test_preset_applies_its_defaults_and_request_values_win(stack: Stack) -> None:
    short = oai(stack).chat.completions.create(
        model="preset:terse", messages=[{"role": "user", "content": "hello"}]
    )
    longer = oai(stack).chat.completions.create(
        model="terse", messages=[{"role": "user", "content": "hello"}], max_tokens=50
    )
    assert short.choices[0].finish_reason == "length"
    assert short.usage is not None and short.usage.completion_tokens == 3
    assert longer.choices[0].finish_reason == "stop"


def test_embeddings_through_gateway(stack: Stack) -> None:
    result = oai(stack).embeddings.create(model="agent", input=["one", "two"])
    assert len(result.data) == 2
    assert len(result.data[0].embedding) > 0
    assert result.usage.prompt_tokens > 0
