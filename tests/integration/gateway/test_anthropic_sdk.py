"""The official `anthropic` SDK against the real gateway's /v1/messages route, with real
supervisord and scripted worker processes behind it: what a user of the SDK sees, whole
and streamed, when all goes well and when it does not.

One stack serves the whole module. Each behaviour gets its own scripted reply, picked by
a substring of the prompt the worker renders, or its own model where the behaviour
belongs to the worker (failing mid-answer, loading slowly, failing to load).
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from tests.integration.stack import Stack, base_config, running_stack, scripted_models
from workers.backends.scripted import split_tokens

pytestmark = pytest.mark.slow

Json = dict[str, Any]

WEATHER_TOOL: Any = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}

CAPITAL = "The capital of France is Paris."
COUNT = "1, 2, 3, 4, 5, 6, 7, 8, 9, 10"
THINKING_REPLY = "<think>France... Paris.</think>Paris."
TOOL_REPLY = (
    'Checking.<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
    '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>'
)
# ChatML that lists the tools in a system turn of its own, and adds a line only when the
# request switches thinking off (enable_thinking=False among the template's variables).
# Replies are scripted on those parts of the prompt, so they show what reached the model.
TOOLS_IN_PROMPT = '<tools>\n{"type": "function", "function": {"name": "get_weather"'
THINKING_OFF = "(thinking is off)"
CHAT_TEMPLATE = (
    "{% if tools %}{{ '<|im_start|>system\\n<tools>\\n' }}"
    "{% for tool in tools %}{{ tool | tojson }}{{ '\\n' }}{% endfor %}"
    "{{ '</tools><|im_end|>\\n' }}{% endif %}"
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if enable_thinking is defined and not enable_thinking %}"
    "{{ '" + THINKING_OFF + "\\n' }}"
    "{% endif %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
HALF_AN_ANSWER = "Half an answer, and then the worker fails."
LOAD_FAILURE = "weights file is corrupt (test)"

SCRIPTS: dict[str, Json] = {
    "local": {
        "chat_template": CHAT_TEMPLATE,
        "replies": [
            {"match": TOOLS_IN_PROMPT, "text": TOOL_REPLY},
            {"match": THINKING_OFF, "text": "No thinking here."},
            {"match": "Think it over", "text": THINKING_REPLY},
            {"match": "Count to ten", "text": COUNT},
        ],
        "default": CAPITAL,
    },
    # Fails after four tokens: "Hal", "f", " an", " ans".
    "flaky": {"default": HALF_AN_ANSWER, "fail_after_tokens": 4},
    "slow": {"default": "tick " * 300, "token_delay_s": 0.02},
    "sleepy": {"default": "Awake at last.", "load_delay_s": 1.0},
    "drowsy": {"default": "Awake at last.", "load_delay_s": 1.0},
    # Fails to load, after longer than the gateway's keepalive interval (0.2 s below).
    "broken": {"fail_load": LOAD_FAILURE, "load_delay_s": 0.5},
}
MODEL_OPTIONS: dict[str, Json] = {"local": {"tool_parser": "hermes", "reasoning_parser": "think"}}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("anthropic-sdk")
    models_dir = tmp / "models"
    models = scripted_models(models_dir, SCRIPTS, MODEL_OPTIONS)
    config = base_config(
        models,
        models_dir,
        gateway={"loading_keepalive_s": 0.2},
        routing={"aliases": {"claude-local": ["local"]}},
    )
    with running_stack(tmp, config) as running:
        yield running


@pytest.fixture
def client(stack: Stack) -> Iterator[anthropic.Anthropic]:
    sdk = anthropic.Anthropic(base_url=stack.url, api_key="x", max_retries=0, timeout=60)
    try:
        yield sdk
    finally:
        sdk.close()


def _ask(model: str, question: str = "What is the capital of France?", **extra: Any) -> Json:
    return {
        "model": model,
        "max_tokens": 64,
        "messages": [{"role": "user", "content": question}],
        **extra,
    }


def _blocks(message: anthropic.types.Message) -> list[Json]:
    """The content blocks as the user's code sees them, without the SDK's unset extras."""
    return [block.model_dump(exclude_none=True) for block in message.content]


def _tool_uses(message: anthropic.types.Message) -> list[Json]:
    """The tool_use blocks without their ids (the worker makes those up)."""
    blocks = [b for b in _blocks(message) if b["type"] == "tool_use"]
    ids = [b.pop("id") for b in blocks]
    assert all(ids) and len(set(ids)) == len(ids), ids
    return blocks


def _error_of(caught: pytest.ExceptionInfo[Any]) -> Json:
    body = caught.value.body
    assert isinstance(body, dict), body
    assert body["type"] == "error"
    error: Json = body["error"]
    return error


PARIS_AND_OSLO = [
    {"type": "tool_use", "name": "get_weather", "input": {"city": "Paris"}},
    {"type": "tool_use", "name": "get_weather", "input": {"city": "Oslo"}},
]


# -- whole answers ---------------------------------------------------------------------------


def test_sdk_create_reads_a_text_message(client: anthropic.Anthropic) -> None:
    message = client.messages.create(**_ask("local"))

    assert _blocks(message) == [{"type": "text", "text": CAPITAL}]
    assert message.stop_reason == "end_turn"
    assert message.stop_sequence is None
    assert message.model == "local"
    assert message.id.startswith("msg_")
    assert message.usage.input_tokens > 0
    assert message.usage.output_tokens == len(split_tokens(CAPITAL))


def test_sdk_create_reads_thinking_then_text(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        **_ask(
            "local", "Think it over: capital?", thinking={"type": "enabled", "budget_tokens": 1024}
        )
    )

    assert _blocks(message) == [
        {"type": "thinking", "thinking": "France... Paris.", "signature": ""},
        {"type": "text", "text": "Paris."},
    ]
    assert message.stop_reason == "end_turn"


def test_sdk_thinking_disabled_reaches_the_chat_template(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        **_ask("local", "Think it over: capital?", thinking={"type": "disabled"})
    )

    assert _blocks(message) == [{"type": "text", "text": "No thinking here."}]


def test_sdk_create_reads_tool_use_blocks(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        **_ask(
            "local",
            "Weather in Paris and Oslo?",
            tools=[WEATHER_TOOL],
            tool_choice={"type": "auto"},
        )
    )

    assert [b.type for b in message.content] == ["text", "tool_use", "tool_use"]
    assert _blocks(message)[0] == {"type": "text", "text": "Checking."}
    assert _tool_uses(message) == PARIS_AND_OSLO
    assert message.stop_reason == "tool_use"


def test_sdk_tool_choice_none_keeps_the_tools_from_the_model(client: anthropic.Anthropic) -> None:
    message = client.messages.create(
        **_ask("local", "Weather in Paris?", tools=[WEATHER_TOOL], tool_choice={"type": "none"})
    )

    assert _blocks(message) == [{"type": "text", "text": CAPITAL}]
    assert message.stop_reason == "end_turn"


def test_sdk_create_reports_the_stop_sequence(client: anthropic.Anthropic) -> None:
    message = client.messages.create(**_ask("local", "Count to ten", stop_sequences=["4"]))

    assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", "4")
    assert _blocks(message) == [{"type": "text", "text": "1, 2, 3, "}]


def test_sdk_create_stops_at_max_tokens(client: anthropic.Anthropic) -> None:
    message = client.messages.create(**_ask("local", "Count to ten", max_tokens=3))

    assert _blocks(message) == [{"type": "text", "text": "".join(split_tokens(COUNT)[:3])}]
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 3


def test_sdk_whole_answer_names_the_answering_model_in_x_lmx_model(
    client: anthropic.Anthropic,
) -> None:
    raw = client.messages.with_raw_response.create(**_ask("claude-local"))
    message = raw.parse()

    assert raw.status_code == 200
    assert raw.headers["x-lmx-model"] == "local"
    assert message.model == "claude-local"
    assert _blocks(message) == [{"type": "text", "text": CAPITAL}]


def test_sdk_count_tokens_matches_the_input_tokens_of_the_answer(
    client: anthropic.Anthropic,
) -> None:
    question = "What is the capital of France, and why?"
    count = client.messages.count_tokens(
        model="local", messages=[{"role": "user", "content": question}]
    )
    with_system = client.messages.count_tokens(
        model="local",
        system="Be brief, be kind, be accurate.",
        messages=[{"role": "user", "content": question}],
    )
    message = client.messages.create(**_ask("local", question))

    assert count.input_tokens > 0
    assert count.input_tokens == message.usage.input_tokens
    assert with_system.input_tokens > count.input_tokens


# -- streamed answers ------------------------------------------------------------------------


def _stream(client: anthropic.Anthropic, **body: Any) -> tuple[Json, anthropic.types.Message]:
    """The message_start event's message and the SDK's accumulated final message."""
    started: list[Json] = []
    with client.messages.stream(**body) as stream:
        for event in stream:
            if event.type == "message_start":
                started.append(event.message.model_dump())
        final = stream.get_final_message()
    assert len(started) == 1
    return started[0], final


def test_sdk_text_stream_and_final_message_match_the_whole_answer(
    client: anthropic.Anthropic,
) -> None:
    whole = client.messages.create(**_ask("local"))
    with client.messages.stream(**_ask("local")) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()

    assert len(pieces) > 1  # streamed as it came, not in one piece
    assert "".join(pieces) == CAPITAL
    assert _blocks(final) == _blocks(whole) == [{"type": "text", "text": CAPITAL}]
    assert final.stop_reason == "end_turn"
    assert final.usage.input_tokens == whole.usage.input_tokens > 0
    assert final.usage.output_tokens == whole.usage.output_tokens


def test_sdk_stream_reports_input_tokens_from_message_start(client: anthropic.Anthropic) -> None:
    start, final = _stream(client, **_ask("local"))

    assert start["content"] == [] and start["model"] == "local"
    assert start["usage"]["input_tokens"] > 0
    assert start["usage"]["input_tokens"] == final.usage.input_tokens
    assert start["usage"]["output_tokens"] == 0
    assert final.usage.output_tokens == len(split_tokens(CAPITAL))


def test_sdk_stream_accumulates_thinking_with_its_signature(client: anthropic.Anthropic) -> None:
    _, final = _stream(
        client,
        **_ask(
            "local", "Think it over: capital?", thinking={"type": "enabled", "budget_tokens": 1024}
        ),
    )

    assert _blocks(final) == [
        {"type": "thinking", "thinking": "France... Paris.", "signature": ""},
        {"type": "text", "text": "Paris."},
    ]
    assert final.stop_reason == "end_turn"


def test_sdk_stream_accumulates_tool_input_from_partial_json(client: anthropic.Anthropic) -> None:
    partial_json: dict[int, list[str]] = {}
    with client.messages.stream(
        **_ask("local", "Weather in Paris and Oslo?", tools=[WEATHER_TOOL])
    ) as stream:
        for event in stream:
            if event.type == "content_block_delta" and event.delta.type == "input_json_delta":
                partial_json.setdefault(event.index, []).append(event.delta.partial_json)
        final = stream.get_final_message()

    assert [b.type for b in final.content] == ["text", "tool_use", "tool_use"]
    assert _blocks(final)[0] == {"type": "text", "text": "Checking."}
    assert _tool_uses(final) == PARIS_AND_OSLO
    assert final.stop_reason == "tool_use"
    # The input the SDK built is exactly what the input_json_delta events carried.
    sent = {index: json.loads("".join(parts)) for index, parts in partial_json.items()}
    assert sent == {1: {"city": "Paris"}, 2: {"city": "Oslo"}}


def test_sdk_stream_reports_the_stop_sequence(client: anthropic.Anthropic) -> None:
    _, final = _stream(client, **_ask("local", "Count to ten", stop_sequences=["4"]))

    assert (final.stop_reason, final.stop_sequence) == ("stop_sequence", "4")
    assert _blocks(final) == [{"type": "text", "text": "1, 2, 3, "}]


def test_sdk_stream_stops_at_max_tokens(client: anthropic.Anthropic) -> None:
    start, final = _stream(client, **_ask("local", "Count to ten", max_tokens=3))

    assert _blocks(final) == [{"type": "text", "text": "".join(split_tokens(COUNT)[:3])}]
    assert final.stop_reason == "max_tokens"
    assert final.usage.output_tokens == 3
    assert final.usage.input_tokens == start["usage"]["input_tokens"] > 0


def test_sdk_streamed_answer_names_the_answering_model_in_x_lmx_model(
    client: anthropic.Anthropic,
) -> None:
    types: list[str] = []
    with client.messages.with_streaming_response.create(
        **_ask("claude-local"), stream=True
    ) as response:
        assert response.status_code == 200
        assert response.headers["x-lmx-model"] == "local"
        assert response.headers["content-type"].startswith("text/event-stream")
        for event in response.parse():
            types.append(event.type)
            if event.type == "message_start":
                assert event.message.model == "claude-local"

    assert types[0] == "message_start"
    assert types[-2:] == ["message_delta", "message_stop"]
    assert "content_block_delta" in types


# -- a model that is still loading, or cannot load ------------------------------------------


def test_sdk_create_waits_for_a_model_still_loading(
    client: anthropic.Anthropic, stack: Stack
) -> None:
    assert stack.status("drowsy")["status"] == "unloaded"

    raw = client.messages.with_raw_response.create(**_ask("drowsy"))

    assert raw.headers["x-lmx-model"] == "drowsy"
    assert _blocks(raw.parse()) == [{"type": "text", "text": "Awake at last."}]
    assert stack.status("drowsy")["load_seconds"] >= 1.0


def test_sdk_stream_waits_for_a_model_still_loading(
    client: anthropic.Anthropic, stack: Stack
) -> None:
    assert stack.status("sleepy")["status"] == "unloaded"
    began = time.monotonic()
    with client.messages.stream(**_ask("sleepy")) as stream:
        head_s = time.monotonic() - began
        model_header = stream.response.headers["x-lmx-model"]
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    total_s = time.monotonic() - began

    # The head went out with the first keepalive comment, long before the load finished;
    # the SDK skipped the comments and read the answer that followed them.
    assert head_s + 0.5 < total_s
    assert model_header == "sleepy"
    assert text == "Awake at last."
    assert final.stop_reason == "end_turn"
    assert final.usage.input_tokens > 0


def test_sdk_raises_service_unavailable_for_a_model_that_cannot_load(
    client: anthropic.Anthropic,
) -> None:
    with pytest.raises(anthropic.ServiceUnavailableError) as caught:
        client.messages.create(**_ask("broken"))

    assert caught.value.status_code == 503
    error = _error_of(caught)
    assert error["type"] == "overloaded_error"
    assert LOAD_FAILURE in error["message"]


def test_sdk_stream_raises_an_error_event_for_a_model_that_cannot_load(
    client: anthropic.Anthropic,
) -> None:
    # The load takes longer than the keepalive interval, so the 200 head is out before
    # the load fails: the failure can only come as an `error` event.
    with (
        pytest.raises(anthropic.APIStatusError) as caught,
        client.messages.stream(**_ask("broken")) as stream,
    ):
        for _ in stream:
            pass

    assert caught.value.status_code == 200
    error = _error_of(caught)
    assert error["type"] == "overloaded_error"
    assert LOAD_FAILURE in error["message"]


# -- failures ----------------------------------------------------------------------------------


def test_sdk_raises_on_an_error_event_mid_stream(client: anthropic.Anthropic) -> None:
    received: list[str] = []
    with (
        pytest.raises(anthropic.APIStatusError, match="scripted failure after 4 tokens") as caught,
        client.messages.stream(**_ask("flaky")) as stream,
    ):
        received.extend(stream.text_stream)

    assert "".join(received) == "Half an ans"
    assert caught.value.status_code == 200  # the stream had begun
    assert _error_of(caught)["type"] == "api_error"


def test_sdk_raises_a_server_error_when_generation_fails_in_a_whole_answer(
    client: anthropic.Anthropic,
) -> None:
    with pytest.raises(anthropic.InternalServerError) as caught:
        client.messages.create(**_ask("flaky"))

    assert caught.value.status_code == 500
    error = _error_of(caught)
    assert error["type"] == "api_error"
    assert "scripted failure after 4 tokens" in error["message"]


def test_sdk_raises_when_the_worker_dies_mid_stream(
    client: anthropic.Anthropic, stack: Stack
) -> None:
    client.messages.create(**_ask("slow", max_tokens=2))  # loaded, so its pid is known
    pid = stack.status("slow")["pid"]
    received: list[str] = []
    with (
        pytest.raises(anthropic.APIStatusError) as caught,
        client.messages.stream(**_ask("slow", max_tokens=300)) as stream,
    ):
        for piece in stream.text_stream:
            received.append(piece)
            if len(received) == 5:
                os.kill(pid, signal.SIGKILL)

    assert 5 <= len(received) < 300
    assert caught.value.status_code == 200
    error = _error_of(caught)
    assert error["type"] == "api_error"
    assert "failed mid-stream" in error["message"]


def test_sdk_raises_bad_request_naming_the_field(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(
            model="local",
            max_tokens=8,
            messages=[{"role": "system", "content": "x"}],
        )

    error = _error_of(caught)
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith("messages.0.role: must be 'user' or 'assistant'")
    assert caught.value.response.headers["x-lmx-error-origin"] == "gateway"


def test_sdk_raises_bad_request_for_a_tool_choice_the_worker_cannot_enforce(
    client: anthropic.Anthropic,
) -> None:
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(
            **_ask("local", "Weather in Paris?", tools=[WEATHER_TOOL], tool_choice={"type": "any"})
        )

    error = _error_of(caught)
    assert error["type"] == "invalid_request_error"
    assert "cannot constrain" in error["message"]


def test_sdk_sees_a_worker_refusal_marked_as_the_workers(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.InternalServerError) as caught:
        client.messages.create(**_ask("flaky"))

    assert caught.value.status_code == 500
    assert caught.value.response.headers["x-lmx-error-origin"] == "worker"
    assert caught.value.response.headers.get("x-lmx-model") == "flaky"


def test_sdk_raises_not_found_for_an_unknown_model(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as caught:
        client.messages.create(**_ask("no-such-model"))

    error = _error_of(caught)
    assert error["type"] == "not_found_error"
    available = ", ".join([*SCRIPTS, "claude-local"])
    assert error["message"] == f"model 'no-such-model' does not exist; available: {available}"


def test_sdk_stream_raises_not_found_before_any_event(client: anthropic.Anthropic) -> None:
    with (
        pytest.raises(anthropic.NotFoundError) as caught,
        client.messages.stream(**_ask("no-such-model")),
    ):
        pytest.fail("the stream must not open")

    assert _error_of(caught)["type"] == "not_found_error"


def test_missing_max_tokens_over_http_is_a_400_envelope(stack: Stack) -> None:
    body = {"model": "local", "messages": [{"role": "user", "content": "Hi"}]}

    with stack.client(timeout=10) as http:
        response = http.post("/v1/messages", json=body)

    assert response.status_code == 400
    assert response.headers["x-lmx-error-origin"] == "gateway"
    assert response.json() == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "max_tokens: field required"},
    }


def test_malformed_json_over_http_is_a_400_envelope(stack: Stack) -> None:
    with stack.client(timeout=10) as http:
        response = http.post(
            "/v1/messages", content=b"{nope", headers={"content-type": "application/json"}
        )

    assert response.status_code == 400
    assert response.json()["type"] == "error"
    assert response.json()["error"]["type"] == "invalid_request_error"
