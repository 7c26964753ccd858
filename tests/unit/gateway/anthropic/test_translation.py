"""Anthropic Messages <-> OpenAI chat translation, checked by calling the functions directly.

What the official `anthropic` SDK sees through the real /v1/messages route, with workers
behind it, is tested in tests/integration/gateway/test_anthropic_sdk.py."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.anthropic import (
    AnthropicStream,
    anthropic_error_body,
    anthropic_error_response,
    to_anthropic_message,
    to_openai_count_request,
    to_openai_request,
)
from workers.contract.errors import ApiError

Json = dict[str, Any]

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def _body(**overrides: Any) -> Json:
    body: Json = {
        "model": "local",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "Hi"}],
    }
    body.update(overrides)
    return body


# -- OpenAI chunks and completions, as a worker sends them -----------------------------


def _chunk(finish: str | None = None, stop_sequence: str | None = None, **delta: Any) -> Json:
    choice: Json = {"index": 0, "delta": delta, "finish_reason": finish}
    if stop_sequence is not None:
        choice["stop_sequence"] = stop_sequence
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "choices": [choice],
    }


def _tool_chunk(
    index: int, arguments: str, id_: str | None = None, name: str | None = None
) -> Json:
    call: Json = {"index": index, "function": {"arguments": arguments}}
    if id_ is not None:
        call.update(id=id_, type="function")
        call["function"]["name"] = name
    return _chunk(tool_calls=[call])


def _usage_chunk(prompt: int, completion: int) -> Json:
    usage = {"prompt_tokens": prompt, "completion_tokens": completion}
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [], "usage": usage}


def _completion(message: Json, finish: str, stop_sequence: str | None = None) -> Json:
    choice: Json = {
        "index": 0,
        "message": {"role": "assistant", **message},
        "finish_reason": finish,
    }
    if stop_sequence is not None:
        choice["stop_sequence"] = stop_sequence
    usage = {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16}
    return {"id": "chatcmpl-abc", "object": "chat.completion", "choices": [choice], "usage": usage}


def _tool_call(id_: str, name: str, arguments: str) -> Json:
    return {"id": id_, "type": "function", "function": {"name": name, "arguments": arguments}}


# -- requests ------------------------------------------------------------------------------


def test_text_conversation_becomes_openai_messages_with_system_first() -> None:
    body = _body(
        system=[{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Be kind."}],
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "Capital of France?"},
        ],
        stop_sequences=["\n\n"],
        temperature=0.2,
        top_p=0.9,
        top_k=40,
        metadata={"user_id": "u1"},
    )

    assert to_openai_request(body) == {
        "model": "local",
        "max_tokens": 64,
        "messages": [
            {"role": "system", "content": "Be brief.\nBe kind."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "Capital of France?"},
        ],
        "stop": ["\n\n"],
        "temperature": 0.2,
        "top_p": 0.9,
    }


def test_streaming_request_asks_the_worker_for_usage() -> None:
    request = to_openai_request(_body(stream=True))

    assert request["stream"] is True
    assert request["stream_options"] == {"include_usage": True}
    assert "stream" not in to_openai_request(_body(stream=False))


def test_image_blocks_become_image_url_parts_beside_the_text() -> None:
    content = [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAA="}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
        {"type": "text", "text": "What is this?"},
    ]
    request = to_openai_request(_body(messages=[{"role": "user", "content": content}]))

    assert request["messages"][0]["content"] == [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA="}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}},
        {"type": "text", "text": "What is this?"},
    ]


def test_tool_use_history_becomes_tool_calls_and_tool_messages() -> None:
    messages = [
        {"role": "user", "content": "Weather in Paris and Oslo?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
                {
                    "type": "tool_use",
                    "id": "toolu_2",
                    "name": "get_weather",
                    "input": {"city": "Oslo"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "content": [{"type": "text", "text": "city not found"}],
                    "is_error": True,
                },
                {"type": "text", "text": "Thanks"},
            ],
        },
    ]

    converted = to_openai_request(_body(messages=messages))["messages"]

    assert converted[1] == {
        "role": "assistant",
        "content": "Checking.",
        "tool_calls": [
            {
                "id": "toolu_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
            },
            {
                "id": "toolu_2",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
            },
        ],
    }
    assert converted[2:] == [
        {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"},
        {"role": "tool", "tool_call_id": "toolu_2", "content": "Error: city not found"},
        {"role": "user", "content": "Thanks"},
    ]


def test_thinking_history_is_passed_on_as_reasoning_content() -> None:
    assistant = {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "Paris, surely.", "signature": "sig"},
            {"type": "redacted_thinking", "data": "opaque"},
            {"type": "text", "text": "Paris."},
        ],
    }
    messages = [{"role": "user", "content": "Capital?"}, assistant]

    converted = to_openai_request(_body(messages=messages))["messages"][1]

    assert converted == {
        "role": "assistant",
        "content": "Paris.",
        "reasoning_content": "Paris, surely.",
    }


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, {"tool_choice": "auto"}),
        ({"type": "any"}, {"tool_choice": "required"}),
        ({"type": "none"}, {"tool_choice": "none"}),
        (
            {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
            {
                "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
                "parallel_tool_calls": False,
            },
        ),
    ],
)
def test_tools_and_tool_choice_map_to_openai_functions(choice: Json, expected: Json) -> None:
    request = to_openai_request(_body(tools=[WEATHER_TOOL], tool_choice=choice))

    assert request["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": WEATHER_TOOL["input_schema"],
                "description": "Current weather for a city",
            },
        }
    ]
    assert {key: request[key] for key in expected} == expected


@pytest.mark.parametrize(("kind", "enabled"), [("enabled", True), ("disabled", False)])
def test_thinking_switch_is_accepted_and_passed_to_the_chat_template(
    kind: str, enabled: bool
) -> None:
    thinking = {"type": kind, "budget_tokens": 1024} if enabled else {"type": kind}

    request = to_openai_request(_body(thinking=thinking))

    assert request["chat_template_kwargs"] == {"enable_thinking": enabled}


def test_count_tokens_request_needs_no_max_tokens() -> None:
    body = {
        "model": "local",
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "Hi"}],
        "tools": [WEATHER_TOOL],
    }

    request = to_openai_count_request(body)

    assert request["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
    ]
    assert request["tools"][0]["function"]["name"] == "get_weather"
    assert "max_tokens" not in request


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"max_tokens": 5, "messages": [{"role": "user", "content": "Hi"}]}, "model"),
        (_body(max_tokens=None), "max_tokens"),
        (_body(max_tokens=0), "max_tokens"),
        (_body(max_tokens="64"), "max_tokens"),
        (_body(messages=[]), "messages"),
        (_body(messages="Hi"), "messages"),
        (_body(messages=[{"role": "system", "content": "x"}]), "messages.0.role"),
        (_body(messages=[{"role": "user", "content": 5}]), "messages.0.content"),
        (
            _body(messages=[{"role": "user", "content": [{"type": "text"}]}]),
            "messages.0.content.0.text",
        ),
        (
            _body(
                messages=[
                    {
                        "role": "user",
                        "content": [{"type": "tool_use", "id": "t", "name": "n", "input": {}}],
                    }
                ]
            ),
            "messages.0.content.0.type",
        ),
        (
            _body(
                messages=[
                    {"role": "user", "content": [{"type": "image", "source": {"type": "file"}}]}
                ]
            ),
            "messages.0.content.0.source.type",
        ),
        (
            _body(
                messages=[{"role": "user", "content": [{"type": "tool_result", "content": "x"}]}]
            ),
            "messages.0.content.0.tool_use_id",
        ),
        (
            _body(messages=[{"role": "user", "content": [{"type": "document", "source": {}}]}]),
            "messages.0.content.0.type",
        ),
        (
            _body(messages=[{"role": "assistant", "content": [{"type": "image", "source": {}}]}]),
            "messages.0.content.0.type",
        ),
        (_body(system=[{"type": "image"}]), "system.0.type"),
        (_body(stop_sequences=["ok", 3]), "stop_sequences.1"),
        (_body(temperature="hot"), "temperature"),
        (_body(tools=[{"name": "f"}]), "tools.0.input_schema"),
        (_body(tools=[{"type": "web_search_20250305", "name": "web_search"}]), "tools.0.type"),
        (_body(tools=[WEATHER_TOOL], tool_choice={"type": "sometimes"}), "tool_choice.type"),
        (
            _body(tools=[WEATHER_TOOL], tool_choice={"type": "tool", "name": "nope"}),
            "tool_choice.name",
        ),
        (_body(thinking={"type": "maybe"}), "thinking.type"),
        (_body(thinking={"type": "enabled", "budget_tokens": -1}), "thinking.budget_tokens"),
    ],
)
def test_invalid_request_is_a_400_naming_the_field(body: Json, param: str) -> None:
    with pytest.raises(ApiError) as caught:
        to_openai_request(body)

    assert caught.value.status == 400
    assert caught.value.param == param
    assert caught.value.message.startswith(f"{param}: ")


# -- responses -----------------------------------------------------------------------------


def test_completion_becomes_a_message_with_thinking_text_and_tool_use_blocks() -> None:
    response = _completion(
        {
            "reasoning_content": "Need the weather.",
            "content": "Checking.",
            "tool_calls": [_tool_call("call_1", "get_weather", '{"city": "Paris"}')],
        },
        "tool_calls",
    )

    message = to_anthropic_message(response, "my-alias")

    assert message == {
        "id": "msg_abc",
        "type": "message",
        "role": "assistant",
        "model": "my-alias",
        "content": [
            {"type": "thinking", "thinking": "Need the weather.", "signature": ""},
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 11,
            "output_tokens": 5,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
    }


@pytest.mark.parametrize(
    ("finish", "stop_sequence", "stop_reason"),
    [
        ("stop", None, "end_turn"),
        ("stop", "###", "stop_sequence"),
        ("length", None, "max_tokens"),
        ("tool_calls", None, "tool_use"),
    ],
)
def test_finish_reason_maps_to_stop_reason(
    finish: str, stop_sequence: str | None, stop_reason: str
) -> None:
    message = to_anthropic_message(_completion({"content": "x"}, finish, stop_sequence), "m")

    assert (message["stop_reason"], message["stop_sequence"]) == (stop_reason, stop_sequence)


def test_tool_arguments_that_are_not_a_json_object_are_a_502() -> None:
    response = _completion({"tool_calls": [_tool_call("c", "f", "{not json")]}, "tool_calls")

    with pytest.raises(ApiError) as caught:
        to_anthropic_message(response, "m")

    assert caught.value.status == 502


# -- stream --------------------------------------------------------------------------------


def _parse(events: list[bytes]) -> list[Json]:
    parsed = []
    for event in events:
        head, data, tail = event.decode().split("\n", 2)
        assert tail == "\n" and head.startswith("event: ") and data.startswith("data: ")
        payload = json.loads(data.removeprefix("data: "))
        assert payload["type"] == head.removeprefix("event: ")
        parsed.append(payload)
    return parsed


def _run_stream(chunks: list[Json], hint: int = 0) -> list[Json]:
    stream = AnthropicStream("my-alias")
    events = stream.start(hint)
    for chunk in chunks:
        events += stream.feed(chunk)
    return _parse(events + stream.finish())


def _shape(event: Json) -> str:
    if event["type"] == "content_block_start":
        return f"start:{event['index']}:{event['content_block']['type']}"
    if event["type"] == "content_block_delta":
        return f"delta:{event['index']}:{event['delta']['type']}"
    if event["type"] == "content_block_stop":
        return f"stop:{event['index']}"
    return str(event["type"])


def test_stream_opens_a_new_block_whenever_the_kind_of_delta_changes() -> None:
    chunks = [
        _chunk(reasoning_content="Hmm"),
        _chunk(content="Sure."),
        _tool_chunk(0, '{"city":', "call_1", "get_weather"),
        _tool_chunk(0, '"Paris"}'),
        _tool_chunk(1, "{}", "call_2", "get_time"),
        _chunk(finish="tool_calls"),
        _usage_chunk(12, 9),
    ]

    events = _run_stream(chunks, hint=10)

    assert [_shape(e) for e in events] == [
        "message_start",
        "ping",
        "start:0:thinking",
        "delta:0:thinking_delta",
        "delta:0:signature_delta",
        "stop:0",
        "start:1:text",
        "delta:1:text_delta",
        "stop:1",
        "start:2:tool_use",
        "delta:2:input_json_delta",
        "delta:2:input_json_delta",
        "stop:2",
        "start:3:tool_use",
        "delta:3:input_json_delta",
        "stop:3",
        "message_delta",
        "message_stop",
    ]
    assert events[9]["content_block"] == {
        "type": "tool_use",
        "id": "call_1",
        "name": "get_weather",
        "input": {},
    }
    assert events[-2]["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    assert events[-2]["usage"] == {
        "input_tokens": 12,
        "output_tokens": 9,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }


def test_stream_message_start_is_empty_with_the_input_token_count() -> None:
    start = _parse(AnthropicStream("my-alias").start(42))[0]

    assert start["message"]["content"] == []
    assert start["message"]["model"] == "my-alias"
    assert start["message"]["id"].startswith("msg_")
    assert start["message"]["usage"]["input_tokens"] == 42
    assert start["message"]["usage"]["output_tokens"] == 0


def test_stream_reports_the_matched_stop_sequence() -> None:
    events = _run_stream([_chunk(content="1, 2, 3"), _chunk(finish="stop", stop_sequence="4")])

    assert events[-2]["delta"] == {"stop_reason": "stop_sequence", "stop_sequence": "4"}


def test_stream_without_a_usage_chunk_counts_chunks_and_keeps_the_hint() -> None:
    events = _run_stream([_chunk(content="a"), _chunk(content="b"), _chunk(finish="stop")], hint=7)

    assert events[-2]["usage"] == {
        "input_tokens": 7,
        "output_tokens": 2,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }


def test_stream_without_content_still_ends_with_message_delta_and_stop() -> None:
    events = _run_stream([_chunk(role="assistant", content=""), _chunk(finish="length")])

    assert [e["type"] for e in events] == ["message_start", "ping", "message_delta", "message_stop"]
    assert events[-2]["delta"]["stop_reason"] == "max_tokens"


def test_stream_error_is_one_error_event_and_nothing_after_it() -> None:
    stream = AnthropicStream("m")
    stream.start()
    stream.feed(_chunk(content="Hal"))

    events = _parse(stream.error(ApiError(503, "worker died")))

    assert events == [
        {"type": "error", "error": {"type": "overloaded_error", "message": "worker died"}}
    ]
    assert stream.feed(_chunk(content="f")) == []
    assert stream.finish() == []


def test_stream_refuses_a_tool_call_that_resumes_after_the_next_began() -> None:
    stream = AnthropicStream("m")
    stream.feed(_tool_chunk(0, "{", "call_1", "a"))
    stream.feed(_tool_chunk(1, "{}", "call_2", "b"))

    with pytest.raises(ApiError):
        stream.feed(_tool_chunk(0, "}"))


# -- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "type_"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
        (422, "invalid_request_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (502, "api_error"),
        (503, "overloaded_error"),
        (504, "timeout_error"),
        (529, "overloaded_error"),
    ],
)
def test_error_status_maps_to_anthropic_error_type(status: int, type_: str) -> None:
    body = anthropic_error_body(ApiError(status, "boom", type="upstream_error"))

    assert body == {"type": "error", "error": {"type": type_, "message": "boom"}}


def test_error_response_keeps_status_and_headers() -> None:
    response = anthropic_error_response(ApiError(429, "queue full", headers={"Retry-After": "2"}))

    assert response.status_code == 429
    assert response.headers["retry-after"] == "2"
    assert json.loads(bytes(response.body))["error"]["type"] == "rate_limit_error"
