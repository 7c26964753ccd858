"""Ollama <-> OpenAI translation, checked by calling the functions directly.

What the official `ollama` client sees through the real routes, with workers behind them,
is tested in tests/integration/gateway/test_ollama_api.py."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from gateway.ollama.answers import OllamaAnswer
from gateway.ollama.keep_alive import parse_keep_alive
from gateway.ollama.requests import (
    CHAT,
    COMPLETIONS,
    chat_request,
    embed_request,
    embeddings_request,
    generate_request,
)
from gateway.proxy.timing import Timing
from workers.contract.errors import ApiError

Json = dict[str, Any]
ASK = [{"role": "user", "content": "Hi"}]


def _refused(call: Any, *args: Any) -> str:
    with pytest.raises(ApiError) as caught:
        call(*args)
    assert caught.value.status == 400
    return caught.value.message


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("1.5h", 5400.0),
        ("250ms", 0.25),
        ("0", 0.0),
        ("0s", 0.0),
        (10, 10.0),
        (2.5, 2.5),
        ("300", 300.0),
        (-1, math.inf),
        ("-1", math.inf),
        ("-5m", math.inf),
        (None, None),
    ],
)
def test_keep_alive_durations(value: Any, seconds: float | None) -> None:
    assert parse_keep_alive(value) == seconds


@pytest.mark.parametrize("value", ["soon", "5 minutes", "m", True, [], {}, "nan", ""])
def test_keep_alive_refuses_what_is_not_a_duration(value: Any) -> None:
    assert _refused(parse_keep_alive, value).startswith("keep_alive:")


def test_chat_streams_unless_told_not_to_and_always_streams_from_the_worker() -> None:
    streamed = chat_request({"model": "m", "messages": ASK})
    whole = chat_request({"model": "m", "messages": ASK, "stream": False})
    assert (streamed.stream, whole.stream) == (True, False)
    for request in (streamed, whole):
        assert request.path == CHAT
        assert request.payload["stream"] is True
        assert request.payload["stream_options"] == {"include_usage": True}


def test_nothing_to_generate_only_loads() -> None:
    assert chat_request({"model": "m"}).load_only
    assert chat_request({"model": "m", "messages": [], "keep_alive": 0}).keep_alive == 0
    assert generate_request({"model": "m", "prompt": ""}).load_only
    assert embed_request({"model": "m", "input": []}).load_only
    assert embeddings_request({"model": "m"}).load_only


def test_options_become_sampling_fields() -> None:
    options = {
        "temperature": 0.2,
        "top_p": 0.9,
        "seed": 4,
        "num_predict": 7,
        "stop": "END",
        "num_ctx": 8192,
        "top_k": 40,
        "repeat_penalty": 1.1,
    }
    payload = chat_request({"model": "m", "messages": ASK, "options": options}).payload
    assert {k: payload[k] for k in ("temperature", "top_p", "seed", "max_tokens", "stop")} == {
        "temperature": 0.2,
        "top_p": 0.9,
        "seed": 4,
        "max_tokens": 7,
        "stop": ["END"],
    }
    assert "top_k" not in payload and "num_ctx" not in payload
    unlimited = chat_request({"model": "m", "messages": ASK, "options": {"num_predict": -1}})
    assert "max_tokens" not in unlimited.payload


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"temperature": "hot"}, "options.temperature"),
        ({"seed": 1.5}, "options.seed"),
        ({"stop": [1]}, "options.stop.0"),
        ({"top_k": "many"}, "options.top_k"),
    ],
)
def test_bad_options_name_the_field(options: Json, field: str) -> None:
    body = {"model": "m", "messages": ASK, "options": options}
    assert _refused(chat_request, body).startswith(f"{field}:")


def test_format_and_think() -> None:
    def payload(**fields: Any) -> Json:
        return chat_request({"model": "m", "messages": ASK, **fields}).payload

    assert payload(format="json")["response_format"] == {"type": "json_object"}
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    assert payload(format=schema)["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "format", "schema": schema},
    }
    assert "response_format" not in payload(format="")
    assert payload(think=False)["chat_template_kwargs"] == {"enable_thinking": False}
    assert payload(think="high")["chat_template_kwargs"] == {
        "enable_thinking": True,
        "reasoning_effort": "high",
    }
    assert _refused(chat_request, {"model": "m", "messages": ASK, "format": "yaml"})
    assert _refused(chat_request, {"model": "m", "messages": ASK, "think": "maybe"})


def test_tool_calls_get_ids_and_tool_results_are_paired_by_name() -> None:
    messages = [
        *ASK,
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"function": {"name": "weather", "arguments": {"city": "Paris"}}},
                {"function": {"name": "time", "arguments": {"zone": "CET"}}},
            ],
        },
        {"role": "tool", "tool_name": "time", "content": "12:00"},
        {"role": "tool", "tool_name": "weather", "content": "Sunny"},
    ]
    converted = chat_request({"model": "m", "messages": messages}).payload["messages"]
    calls = converted[1]["tool_calls"]
    assert [c["id"] for c in calls] == ["call_1_0", "call_1_1"]
    assert json.loads(calls[0]["function"]["arguments"]) == {"city": "Paris"}
    assert [(m["name"], m["tool_call_id"]) for m in converted[2:]] == [
        ("time", "call_1_1"),
        ("weather", "call_1_0"),
    ]


def test_images_become_image_parts_with_their_type() -> None:
    message = {"role": "user", "content": "What is this?", "images": ["/9j/4AAQ"]}
    (converted,) = chat_request({"model": "m", "messages": [message]}).payload["messages"]
    assert converted["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}},
    ]


def test_generate_prompt_system_raw_and_what_is_refused() -> None:
    chat = generate_request({"model": "m", "prompt": "Hi", "system": "Be brief."}).payload
    assert chat["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
    ]
    raw = generate_request({"model": "m", "prompt": "<s>Hi", "raw": True})
    assert raw.path == COMPLETIONS and raw.payload["prompt"] == "<s>Hi"
    assert _refused(generate_request, {"model": "m", "prompt": "a", "suffix": "b"})
    assert _refused(generate_request, {"model": "m", "prompt": "a", "template": "{{ .Prompt }}"})
    assert _refused(generate_request, {"model": "m", "prompt": "a", "raw": True, "think": True})


def test_embed_inputs_and_dimensions() -> None:
    assert embed_request({"model": "m", "input": "a"}).payload["input"] == ["a"]
    assert embed_request({"model": "m", "input": ["a", "b"], "dimensions": 2}).dimensions == 2
    assert _refused(embed_request, {"model": "m", "input": 5}).startswith("input:")
    assert _refused(embed_request, {"model": "m", "input": ["a", 1]}).startswith("input.1:")
    assert _refused(embed_request, {"model": "m", "input": "a", "dimensions": 0})
    assert embeddings_request({"model": "m", "prompt": "a"}).payload["input"] == ["a"]


@pytest.mark.parametrize("body", [[], "x", {"messages": ASK}, {"model": ""}, {"model": 5}])
def test_bodies_without_a_model_are_refused(body: Any) -> None:
    assert _refused(chat_request, body)


# -- answers --------------------------------------------------------------------------------


def _chunk(delta: Json, finish: str | None = None) -> Json:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [choice],
    }


CHUNKS = [
    _chunk({"role": "assistant", "content": ""}),
    _chunk({"reasoning_content": "Hmm."}),
    _chunk({"content": "Let me check."}),
    _chunk(
        {
            "tool_calls": [
                {"index": 0, "id": "call_a", "function": {"name": "weather", "arguments": ""}}
            ]
        }
    ),
    _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]}),
    _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
    _chunk({}, "length"),
    {
        "id": "c",
        "object": "chat.completion.chunk",
        "choices": [],
        "usage": {"prompt_tokens": 9, "completion_tokens": 6},
    },
]
CALL = {"id": "call_a", "function": {"index": 0, "name": "weather", "arguments": {"city": "Paris"}}}


def test_a_whole_answer_holds_everything_in_its_last_object() -> None:
    answer = OllamaAnswer("chat", "m:latest", False, Timing())
    assert all(answer.feed(chunk) == [] for chunk in CHUNKS)
    (last,) = answer.finish()
    assert last["message"] == {
        "role": "assistant",
        "content": "Let me check.",
        "thinking": "Hmm.",
        "tool_calls": [CALL],
    }
    assert (last["done"], last["done_reason"], last["model"]) == (True, "length", "m:latest")
    assert (last["prompt_eval_count"], last["eval_count"]) == (9, 6)
    assert all(isinstance(last[k], int) for k in ("total_duration", "eval_duration"))


def test_a_streamed_answer_sends_pieces_then_whole_tool_calls_then_done() -> None:
    answer = OllamaAnswer("chat", "m", True, Timing())
    pieces = [piece["message"] for chunk in CHUNKS for piece in answer.feed(chunk)]
    assert pieces == [
        {"role": "assistant", "content": "", "thinking": "Hmm."},
        {"role": "assistant", "content": "Let me check."},
    ]
    calls, last = answer.finish()
    assert calls["done"] is False and calls["message"]["tool_calls"] == [CALL]
    assert last["done"] is True and last["message"] == {"role": "assistant", "content": ""}


def test_generate_answers_in_response_and_thinking() -> None:
    answer = OllamaAnswer("generate", "m", True, Timing())
    pieces = [piece for chunk in CHUNKS[:3] for piece in answer.feed(chunk)]
    assert [(p.get("thinking"), p["response"]) for p in pieces] == [
        ("Hmm.", ""),
        (None, "Let me check."),
    ]
    (last,) = answer.finish()
    assert last["done"] is True and last["response"] == ""
