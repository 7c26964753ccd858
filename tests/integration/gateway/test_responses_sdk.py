"""The official `openai` SDK's `client.responses` against the real gateway's /v1/responses
routes, with real supervisord and scripted worker processes behind it: what a user of the
SDK sees, whole and streamed, stored and continued, when all goes well and when it does not.

One stack serves the whole module. Each behaviour gets its own scripted reply, picked by
a substring of the prompt the worker renders, so a reply shows what reached the model.
The real SmolLM2 model's part (plain answers, JSON schema, a conversation continued after
a gateway restart) is in test_responses_real_model.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from openai.types.responses import Response

from tests.integration.stack import Stack, base_config, running_stack, scripted_models
from workers.backends.scripted import split_tokens

pytestmark = pytest.mark.slow

Json = dict[str, Any]
KEY = "sk-local-test"

WEATHER_TOOL: Any = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    "strict": False,
}

CAPITAL = "The capital of France is Paris."
COUNT = "1, 2, 3, 4, 5, 6, 7, 8, 9, 10"
FRENCH = "Paris est la capitale."
TOOL_REPLY = (
    'Checking.<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
)
WEATHER_ANSWER = "It is 18C and sunny in Paris."
# ChatML that lists the tools in a system turn of its own, renders tool calls and tool
# results, and adds a line only when the request switches thinking off.
TOOLS_IN_PROMPT = '<tools>\n{"type": "function", "function": {"name": "get_weather"'
TOOL_RESULT_IN_PROMPT = "<|im_start|>tool\n18C and sunny"
CALL_IN_PROMPT = '<tool_call>get_weather {"city": "Paris"}</tool_call>'
THINKING_OFF = "(thinking is off)"
CHAT_TEMPLATE = (
    "{% if tools %}{{ '<|im_start|>system\\n<tools>\\n' }}"
    "{% for tool in tools %}{{ tool | tojson }}{{ '\\n' }}{% endfor %}"
    "{{ '</tools><|im_end|>\\n' }}{% endif %}"
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + (message['content'] or '') }}"
    "{% for call in message['tool_calls'] or [] %}"
    "{{ '<tool_call>' + call['function']['name'] + ' ' }}"
    "{{ call['function']['arguments'] | tojson }}{{ '</tool_call>' }}"
    "{% endfor %}{{ '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if enable_thinking is defined and not enable_thinking %}"
    "{{ '" + THINKING_OFF + "\\n' }}"
    "{% endif %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
HALF_AN_ANSWER = "Half an answer, and then the worker fails."

SCRIPTS: dict[str, Json] = {
    "local": {
        "chat_template": CHAT_TEMPLATE,
        "replies": [
            # Both parts of the tool round trip's second turn must have reached the model.
            {
                "match": CALL_IN_PROMPT + "<|im_end|>\n" + TOOL_RESULT_IN_PROMPT,
                "text": WEATHER_ANSWER,
            },
            {"match": TOOLS_IN_PROMPT, "text": TOOL_REPLY},
            {"match": THINKING_OFF, "text": "No thinking here."},
            {"match": "Think it over", "text": "<think>France... Paris.</think>Paris."},
            {"match": "<|im_start|>assistant\nI will remember 42.", "text": "You told me 42."},
            {"match": "Remember 42", "text": "I will remember 42."},
            {"match": "<|im_start|>system\nAnswer in French", "text": FRENCH},
            {"match": "Count to ten", "text": COUNT},
        ],
        "default": CAPITAL,
    },
    # Fails after four tokens: "Hal", "f", " an", " ans".
    "flaky": {"default": HALF_AN_ANSWER, "fail_after_tokens": 4},
    # One request at a time, none waiting: a second one is refused while the first runs.
    "busy": {"default": "tick " * 200, "token_delay_s": 0.02},
}
MODEL_OPTIONS: dict[str, Json] = {
    "local": {"tool_parser": "hermes", "reasoning_parser": "think"},
    "busy": {"max_concurrent": 1, "max_queue": 0},
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("responses-sdk")
    models_dir = tmp / "models"
    models = scripted_models(models_dir, SCRIPTS, MODEL_OPTIONS)
    routing = {
        "aliases": {"gpt-local": ["local"]},
        "presets": {"french": {"model": "local", "system": "Answer in French."}},
    }
    config = base_config(models, models_dir, routing=routing, security={"api_keys": [KEY]})
    with running_stack(tmp, config) as running:
        yield running


@pytest.fixture
def client(stack: Stack) -> Iterator[openai.OpenAI]:
    sdk = openai.OpenAI(base_url=stack.url + "/v1", api_key=KEY, max_retries=0, timeout=60)
    try:
        yield sdk
    finally:
        sdk.close()


def _types(events: list[Any]) -> list[str]:
    return [event.type for event in events]


def _error_of(caught: pytest.ExceptionInfo[Any]) -> Json:
    body = caught.value.body
    assert isinstance(body, dict), body
    return body


def _outputs(response: Response) -> list[Json]:
    """The output items as the user's code sees them, without their ids."""
    items = [item.model_dump(exclude_none=True) for item in response.output]
    for item in items:
        assert item.pop("id").split("_")[0] in ("msg", "fc", "rs"), item
    return items


# -- whole answers ---------------------------------------------------------------------------


def test_create_reads_a_text_response(client: openai.OpenAI) -> None:
    response = client.responses.create(model="local", input="What is the capital of France?")

    assert response.output_text == CAPITAL
    assert response.status == "completed"
    assert response.id.startswith("resp_")
    assert response.object == "response"
    assert response.model == "local"
    assert _outputs(response) == [
        {
            "type": "message",
            "role": "assistant",
            "status": "completed",
            "content": [
                {"type": "output_text", "text": CAPITAL, "annotations": [], "logprobs": []}
            ],
        }
    ]
    assert response.usage is not None
    assert response.usage.input_tokens > 0
    assert response.usage.output_tokens == len(split_tokens(CAPITAL))
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens
    assert response.usage.input_tokens_details.cached_tokens == 0  # scripted: no prompt cache


def test_input_as_a_list_of_messages_with_instructions(client: openai.OpenAI) -> None:
    response = client.responses.create(
        model="local",
        instructions="Answer in French.",
        input=[{"role": "user", "content": [{"type": "input_text", "text": "Capital?"}]}],
    )

    assert response.output_text == FRENCH
    assert response.instructions == "Answer in French."


def test_a_preset_and_an_alias_answer_as_on_the_chat_route(client: openai.OpenAI) -> None:
    preset = client.responses.create(model="french", input="Capital?")
    raw = client.responses.with_raw_response.create(model="gpt-local", input="Capital?")

    assert preset.output_text == FRENCH
    assert raw.headers["x-lmx-model"] == "local"
    assert raw.parse().model == "gpt-local"
    assert raw.parse().output_text == CAPITAL


def test_max_output_tokens_makes_an_incomplete_response(client: openai.OpenAI) -> None:
    response = client.responses.create(model="local", input="Count to ten", max_output_tokens=3)

    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.output_text == "".join(split_tokens(COUNT)[:3])
    assert response.output[0].status == "incomplete"
    assert response.max_output_tokens == 3


def test_reasoning_comes_as_a_reasoning_item_before_the_message(client: openai.OpenAI) -> None:
    response = client.responses.create(
        model="local", input="Think it over: capital?", reasoning={"effort": "high"}
    )

    items = _outputs(response)
    assert [item["type"] for item in items] == ["reasoning", "message"]
    assert items[0]["content"] == [{"type": "reasoning_text", "text": "France... Paris."}]
    assert items[0]["summary"] == []
    assert response.output_text == "Paris."
    assert response.reasoning is not None and response.reasoning.effort == "high"


def test_reasoning_effort_none_switches_thinking_off_in_the_template(
    client: openai.OpenAI,
) -> None:
    response = client.responses.create(
        model="local", input="Think it over: capital?", reasoning={"effort": "none"}
    )

    assert response.output_text == "No thinking here."


def test_a_function_call_comes_as_a_function_call_item(client: openai.OpenAI) -> None:
    response = client.responses.create(
        model="local", input="Weather in Paris?", tools=[WEATHER_TOOL], tool_choice="auto"
    )

    items = _outputs(response)
    assert [item["type"] for item in items] == ["message", "function_call"]
    assert response.output_text == "Checking."
    call = items[1]
    assert call.pop("call_id")
    assert call == {
        "type": "function_call",
        "name": "get_weather",
        "arguments": '{"city": "Paris"}',
        "status": "completed",
    }
    assert response.tools[0].type == "function"
    assert response.tool_choice == "auto"


def test_tool_choice_none_keeps_the_tools_from_the_model(client: openai.OpenAI) -> None:
    response = client.responses.create(
        model="local", input="Weather in Paris?", tools=[WEATHER_TOOL], tool_choice="none"
    )

    assert response.output_text == CAPITAL


def test_function_call_output_round_trip_through_previous_response_id(
    client: openai.OpenAI,
) -> None:
    first = client.responses.create(model="local", input="Weather in Paris?", tools=[WEATHER_TOOL])
    call = next(item for item in first.output if item.type == "function_call")

    second = client.responses.create(
        model="local",
        previous_response_id=first.id,
        tools=[WEATHER_TOOL],
        input=[
            {"type": "function_call_output", "call_id": call.call_id, "output": "18C and sunny"}
        ],
    )

    assert second.output_text == WEATHER_ANSWER
    assert second.previous_response_id == first.id


def test_function_call_output_round_trip_without_storing(client: openai.OpenAI) -> None:
    # The stateless way: the client sends the whole conversation back itself.
    conversation: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    first = client.responses.create(
        model="local", input=conversation, tools=[WEATHER_TOOL], store=False
    )
    call = next(item for item in first.output if item.type == "function_call")
    conversation += first.output
    conversation.append(
        {"type": "function_call_output", "call_id": call.call_id, "output": "18C and sunny"}
    )

    second = client.responses.create(
        model="local", input=conversation, tools=[WEATHER_TOOL], store=False
    )

    assert second.output_text == WEATHER_ANSWER
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(first.id)


# -- stored responses ------------------------------------------------------------------------


def test_previous_response_id_continues_the_stored_conversation(client: openai.OpenAI) -> None:
    first = client.responses.create(
        model="local", instructions="Be brief.", input="Remember 42, please."
    )
    second = client.responses.create(
        model="local", previous_response_id=first.id, input="What did I say?"
    )

    assert first.output_text == "I will remember 42."
    assert second.output_text == "You told me 42."
    assert second.instructions is None  # instructions are not carried over, as in OpenAI's API
    items = client.responses.input_items.list(second.id, order="asc")
    assert [(item.type, getattr(item, "role", None)) for item in items.data] == [
        ("message", "user"),
        ("message", "assistant"),
        ("message", "user"),
    ]
    assert [item.model_dump()["content"][0]["text"] for item in items.data] == [
        "Remember 42, please.",
        "I will remember 42.",
        "What did I say?",
    ]
    assert items.data[1].id == first.output[0].id


def test_input_items_page_newest_first_by_default(client: openai.OpenAI) -> None:
    first = client.responses.create(model="local", input="Remember 42, please.")
    second = client.responses.create(
        model="local", previous_response_id=first.id, input="What did I say?"
    )

    page = client.responses.input_items.list(second.id, limit=2)
    texts = [item.model_dump()["content"][0]["text"] for item in page.data]
    assert texts == ["What did I say?", "I will remember 42."]
    assert page.has_more is True
    everything = list(client.responses.input_items.list(second.id, limit=1))  # follows `after`
    assert [item.id for item in everything] == [item.id for item in page.data] + [
        client.responses.input_items.list(second.id, order="asc").data[0].id
    ]


def test_retrieve_returns_the_stored_response_and_delete_removes_it(
    client: openai.OpenAI,
) -> None:
    created = client.responses.create(model="local", input="Capital?", metadata={"run": "7"})

    retrieved = client.responses.retrieve(created.id)
    assert retrieved.model_dump() == created.model_dump()
    assert retrieved.metadata == {"run": "7"}

    client.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.retrieve(created.id)
    assert _error_of(caught)["code"] == "response_not_found"
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(created.id)


def test_store_false_is_not_kept(client: openai.OpenAI) -> None:
    response = client.responses.create(model="local", input="Capital?", store=False)

    assert response.store is False
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(model="local", previous_response_id=response.id, input="More?")
    assert _error_of(caught)["param"] == "previous_response_id"


def test_an_unknown_previous_response_id_is_a_404_envelope(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(model="local", previous_response_id="resp_nope", input="Hi")

    error = _error_of(caught)
    assert error["type"] == "not_found_error"
    assert "resp_nope" in error["message"]


# -- streamed answers ------------------------------------------------------------------------


def test_stream_sends_typed_events_in_order_with_sequence_numbers(client: openai.OpenAI) -> None:
    whole = client.responses.create(model="local", input="Capital?")
    events = list(client.responses.create(model="local", input="Capital?", stream=True))

    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert len(deltas) == len(split_tokens(CAPITAL))
    assert _types(events) == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * len(deltas),
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert "".join(deltas) == CAPITAL
    assert events[0].response.status == "in_progress" and events[0].response.output == []
    final = events[-1].response
    assert final.status == "completed"
    assert final.id == events[0].response.id
    assert _outputs(final) == _outputs(whole)
    assert final.usage == whole.usage


def test_sdk_stream_helper_accumulates_the_final_response(client: openai.OpenAI) -> None:
    with client.responses.stream(model="local", input="Capital?") as stream:
        pieces = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()

    assert "".join(pieces) == CAPITAL
    assert final.output_text == CAPITAL
    assert client.responses.retrieve(final.id).output_text == CAPITAL  # stored before it ended


def test_stream_sends_reasoning_text_deltas(client: openai.OpenAI) -> None:
    events = list(
        client.responses.create(
            model="local", input="Think it over: capital?", reasoning={"effort": "low"}, stream=True
        )
    )

    reasoning = [e.delta for e in events if e.type == "response.reasoning_text.delta"]
    assert "".join(reasoning) == "France... Paris."
    added = [e.item.type for e in events if e.type == "response.output_item.added"]
    assert added == ["reasoning", "message"]
    final = events[-1].response
    assert final.output[0].content is not None
    assert final.output[0].content[0].text == "France... Paris."
    assert final.output_text == "Paris."


def test_stream_sends_function_call_argument_deltas(client: openai.OpenAI) -> None:
    with client.responses.stream(
        model="local", input="Weather in Paris?", tools=[WEATHER_TOOL]
    ) as stream:
        events = list(stream)
        final = stream.get_final_response()

    arguments = [e.delta for e in events if e.type == "response.function_call_arguments.delta"]
    assert arguments  # the hermes parser sends the arguments of one call as one fragment
    assert json.loads("".join(arguments)) == {"city": "Paris"}
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    assert done.arguments == "".join(arguments)
    call = final.output[-1]
    assert call.type == "function_call" and call.name == "get_weather"
    assert call.arguments == done.arguments


def test_stream_that_hits_max_output_tokens_ends_incomplete(client: openai.OpenAI) -> None:
    events = list(
        client.responses.create(
            model="local", input="Count to ten", max_output_tokens=3, stream=True
        )
    )

    assert events[-1].type == "response.incomplete"
    final = events[-1].response
    assert final.status == "incomplete"
    assert final.incomplete_details is not None
    assert final.incomplete_details.reason == "max_output_tokens"
    assert final.output_text == "".join(split_tokens(COUNT)[:3])


def test_stream_that_fails_midway_ends_with_error_and_failed(client: openai.OpenAI) -> None:
    events = list(client.responses.create(model="flaky", input="Hi", stream=True))

    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert "".join(deltas) == "Half an ans"
    assert _types(events)[-2:] == ["error", "response.failed"]
    assert "scripted failure after 4 tokens" in events[-2].message
    assert events[-1].response.status == "failed"
    assert events[-1].response.error is not None
    assert [e.sequence_number for e in events] == list(range(len(events)))


# -- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "param", "words"),
    [
        ({"tools": [{"type": "web_search"}]}, "tools.0.type", "'web_search' tools"),
        (
            {
                "input": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "input_text", "text": "Summarise"},
                            {"type": "input_file", "file_id": "file-1"},
                        ],
                    }
                ]
            },
            "input.0.content.1.type",
            "file inputs",
        ),
        ({"input": [{"type": "web_search_call", "id": "ws_1"}]}, "input.0.type", "web_search_call"),
        ({"background": True}, "background", "not supported"),
        ({"tool_choice": {"type": "file_search"}}, "tool_choice.type", "file_search"),
        ({"text": {"format": {"type": "xml"}}}, "text.format.type", "json_schema"),
        ({"input": 7}, "input", "must be a string or a list"),
    ],
)
def test_unsupported_parts_are_refused_naming_them(
    client: openai.OpenAI, fields: Json, param: str, words: str
) -> None:
    body = {"model": "local", "input": "Hi", **fields}
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(**body)

    error = _error_of(caught)
    assert error["param"] == param
    assert error["message"].startswith(f"{param}: ")
    assert words in error["message"]
    assert error["type"] == "invalid_request_error"
    assert caught.value.response.headers["x-lmx-error-origin"] == "gateway"


def test_a_worker_refusal_comes_through_in_the_openai_envelope(client: openai.OpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        client.responses.create(model="flaky", input="Hi")

    assert "scripted failure after 4 tokens" in _error_of(caught)["message"]
    assert caught.value.response.headers["x-lmx-error-origin"] == "worker"


def test_a_full_queue_is_a_429_with_retry_after_as_on_the_chat_route(
    client: openai.OpenAI,
) -> None:
    with client.responses.stream(model="busy", input="Hi") as running:
        next(e for e in running if e.type == "response.output_text.delta")  # it holds the slot
        with pytest.raises(openai.RateLimitError) as caught:
            client.responses.create(model="busy", input="Hi")

    assert caught.value.response.headers["retry-after"].isdigit()
    assert caught.value.response.headers["x-lmx-error-origin"] == "worker"


def test_an_unknown_model_is_a_404(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(model="no-such-model", input="Hi")

    assert _error_of(caught)["code"] == "model_not_found"


def test_every_route_needs_the_api_key(stack: Stack, client: openai.OpenAI) -> None:
    stored = client.responses.create(model="local", input="Capital?")
    with stack.client(timeout=10) as http:
        refused = [
            http.post("/v1/responses", json={"model": "local", "input": "Hi"}),
            http.get(f"/v1/responses/{stored.id}"),
            http.get(f"/v1/responses/{stored.id}/input_items"),
            http.delete(f"/v1/responses/{stored.id}"),
        ]
    assert [r.status_code for r in refused] == [401] * 4
    assert all(r.json()["error"]["type"] == "authentication_error" for r in refused)
    assert client.responses.retrieve(stored.id).id == stored.id


def test_malformed_json_over_http_is_a_400_envelope(stack: Stack) -> None:
    with stack.client(timeout=10) as http:
        response = http.post(
            "/v1/responses",
            content=b"{nope",
            headers={"content-type": "application/json", "authorization": f"Bearer {KEY}"},
        )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"
