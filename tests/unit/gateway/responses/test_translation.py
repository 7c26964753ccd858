"""Responses API <-> OpenAI chat translation, checked by calling the functions directly.

What the official `openai` SDK sees through the real /v1/responses route, with workers
behind it, is tested in tests/integration/gateway/test_responses_sdk.py."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.responses import Draft, ResponsesStream, chat_request, parse_request, to_response
from workers.contract.errors import ApiError

Json = dict[str, Any]


def _chat(body: Json) -> Json:
    request = parse_request({"model": "m", **body})
    return chat_request(request, request.input)


def _events(frames: list[bytes]) -> list[Json]:
    return [json.loads(frame.decode().split("data: ", 1)[1]) for frame in frames]


def test_a_string_input_is_one_user_message_after_the_instructions() -> None:
    chat = _chat({"input": "Hi", "instructions": "Be brief."})

    assert chat["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
    ]
    assert "stream" not in chat


def test_an_assistant_turn_of_several_items_is_one_chat_message() -> None:
    chat = _chat(
        {
            "input": [
                {"role": "user", "content": "Weather?"},
                {
                    "type": "reasoning",
                    "id": "rs_1",
                    "summary": [],
                    "content": [{"type": "reasoning_text", "text": "Look it up."}],
                },
                {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "Checking."}],
                },
                {"type": "function_call", "call_id": "c1", "name": "w", "arguments": "{}"},
                {"type": "function_call", "call_id": "c2", "name": "w", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "c1", "output": "sun"},
                {
                    "type": "function_call_output",
                    "call_id": "c2",
                    "output": [{"type": "input_text", "text": "rain"}],
                },
                {"role": "assistant", "content": "Sun and rain."},
                {"role": "assistant", "content": "Anything else?"},
            ]
        }
    )

    calls = [
        {"id": c, "type": "function", "function": {"name": "w", "arguments": "{}"}}
        for c in ("c1", "c2")
    ]
    assert chat["messages"] == [
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": "Checking.",
            "reasoning_content": "Look it up.",
            "tool_calls": calls,
        },
        {"role": "tool", "tool_call_id": "c1", "content": "sun"},
        {"role": "tool", "tool_call_id": "c2", "content": "rain"},
        {"role": "assistant", "content": "Sun and rain.Anything else?"},
    ]


def test_an_item_going_back_in_turn_order_starts_the_next_assistant_turn() -> None:
    chat = _chat(
        {
            "input": [
                {"role": "user", "content": "Go"},
                {"type": "function_call", "call_id": "c1", "name": "w", "arguments": "{}"},
                {"role": "assistant", "content": "Done."},
            ]
        }
    )

    assert [m["role"] for m in chat["messages"]] == ["user", "assistant", "assistant"]
    assert chat["messages"][2] == {"role": "assistant", "content": "Done."}


def test_images_become_image_url_parts() -> None:
    chat = _chat(
        {
            "input": [
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "What is this?"},
                        {"type": "input_image", "image_url": "data:image/png;base64,AAAA"},
                    ],
                }
            ]
        }
    )

    assert chat["messages"][0]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
    ]


def test_options_map_onto_the_chat_request() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    chat = _chat(
        {
            "input": "Hi",
            "stream": True,
            "max_output_tokens": 12,
            "temperature": 0,
            "top_p": 0.5,
            "tools": [{"type": "function", "name": "w", "parameters": schema, "strict": True}],
            "tool_choice": {"type": "function", "name": "w"},
            "parallel_tool_calls": False,
            "text": {"format": {"type": "json_schema", "name": "city", "schema": schema}},
            "reasoning": {"effort": "none"},
            "service_tier": "auto",  # OpenAI's business: accepted, ignored
        }
    )

    assert {k: v for k, v in chat.items() if k != "messages"} == {
        "model": "m",
        "max_tokens": 12,
        "temperature": 0,
        "top_p": 0.5,
        "tools": [
            {"type": "function", "function": {"name": "w", "parameters": schema, "strict": True}}
        ],
        "tool_choice": {"type": "function", "function": {"name": "w"}},
        "parallel_tool_calls": False,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"schema": schema, "name": "city"},
        },
        "chat_template_kwargs": {"enable_thinking": False},
        "stream": True,
        "stream_options": {"include_usage": True},
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"input": "Hi", "conversation": "conv_1"}, "conversation: the Conversations API"),
        ({"input": "Hi", "prompt": {"id": "p"}}, "prompt: stored prompt templates"),
        ({"input": "Hi", "top_logprobs": 3}, "top_logprobs: not supported here"),
        ({"input": "Hi", "tool_choice": {"type": "function", "name": "x"}}, "tool_choice.name"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input.0.type: item references"),
        ({"input": [{"role": "robot", "content": "x"}]}, "input.0.role: must be"),
        ({"input": [{"type": "function_call", "call_id": "c"}]}, "input.0.name: field required"),
        ({"input": "Hi", "reasoning": {"effort": "extreme"}}, "reasoning.effort: must be one of"),
        ({"input": "Hi", "max_output_tokens": 0}, "max_output_tokens: must be an integer"),
        ({"input": "Hi", "metadata": {"k": 1}}, "metadata.k: must be a string"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
            "input.0.content.0.file_id: file ids are not supported",
        ),
    ],
)
def test_refusals_name_the_field(body: Json, message: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_request({"model": "m", **body})

    assert caught.value.status == 400
    assert caught.value.message.startswith(message)


def test_a_whole_answer_becomes_reasoning_message_and_calls_in_that_order() -> None:
    chat = {
        "choices": [
            {
                "message": {
                    "content": "Checking.",
                    "reasoning_content": "Hmm.",
                    "tool_calls": [
                        {"id": "call_1", "function": {"name": "w", "arguments": '{"a": 1}'}}
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {
            "prompt_tokens": 10,
            "completion_tokens": 4,
            "prompt_tokens_details": {"cached_tokens": 6},
        },
    }

    response = to_response(chat, Draft("m", {}))

    assert [item["type"] for item in response["output"]] == [
        "reasoning",
        "message",
        "function_call",
    ]
    assert response["output"][2]["call_id"] == "call_1"
    assert response["status"] == "completed"
    assert response["usage"] == {
        "input_tokens": 10,
        "input_tokens_details": {"cached_tokens": 6},
        "output_tokens": 4,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 14,
    }


def test_a_stream_that_fails_before_any_chunk_still_opens_with_response_created() -> None:
    stream = ResponsesStream(Draft("m", {}))

    events = _events(stream.error(ApiError(503, "load failed", code="load_failed")))

    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        "error",
        "response.failed",
    ]
    assert events[2]["code"] == "load_failed" and events[2]["message"] == "load failed"
    assert events[3]["response"]["error"] == {"code": "server_error", "message": "load failed"}
    assert [e["sequence_number"] for e in events] == [0, 1, 2, 3]


def test_a_tool_call_resumed_after_the_next_began_is_refused() -> None:
    stream = ResponsesStream(Draft("m", {}))
    start = {"index": 0, "id": "c0", "function": {"name": "w", "arguments": "{"}}
    stream.feed({"choices": [{"index": 0, "delta": {"tool_calls": [start]}}]})
    stream.feed({"choices": [{"index": 0, "delta": {"tool_calls": [{**start, "index": 1}]}}]})

    with pytest.raises(ApiError, match="tool call 0 resumed"):
        stream.feed({"choices": [{"index": 0, "delta": {"tool_calls": [start]}}]})
