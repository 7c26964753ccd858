"""The official `ollama` Python client against the real gateway's Ollama routes, with real
supervisord and scripted worker processes behind it: what a user of the client sees,
whole and streamed, for chat, generate, embeddings, the listings, keep_alive and errors.

Replies are scripted on parts of the prompt the worker renders, so they show what the
translation delivered to the model (tools, tool results, thinking switched off). The real
SmolLM2 model is in test_ollama_lmstudio_real_model.py.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import ollama
import pytest

from tests.integration.stack import Stack, base_config, running_stack, scripted_models, wait_until

pytestmark = pytest.mark.slow

Json = dict[str, Any]

CAPITAL = "The capital of France is Paris."
TOOL_REPLY = (
    'Checking.<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
    '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>'
)
WEATHER_TOOL: Json = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
TOOLS_IN_PROMPT = '<tools>\n{"type": "function", "function": {"name": "get_weather"'
THINKING_OFF = "(thinking is off)"
# ChatML that lists the tools, writes a tool result's call id before its content, and
# adds a line when the request switches thinking off.
CHAT_TEMPLATE = (
    "{% if tools %}{{ '<|im_start|>system\\n<tools>\\n' }}"
    "{% for tool in tools %}{{ tool | tojson }}{{ '\\n' }}{% endfor %}"
    "{{ '</tools><|im_end|>\\n' }}{% endif %}"
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{% if message.tool_call_id is defined %}{{ message.tool_call_id + ': ' }}{% endif %}"
    "{{ message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if enable_thinking is defined and not enable_thinking %}"
    "{{ '" + THINKING_OFF + "\\n' }}"
    "{% endif %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
SCRIPTS: dict[str, Json] = {
    "local": {
        "replies": [
            # The Paris result, paired with the first call of the assistant turn (index 1).
            {"match": "call_1_0: Sunny in Paris", "text": "Pack sunglasses for Paris."},
            {"match": TOOLS_IN_PROMPT, "text": TOOL_REPLY},
            {"match": THINKING_OFF, "text": "No thinking here."},
            {"match": "Think it over", "text": "<think>France... Paris.</think>Paris."},
            {"match": "Be terse.", "text": "Paris."},
        ],
        "default": CAPITAL,
    },
    "napper": {"default": "Zzz."},
    "dozer": {"default": "Zzz."},
    "keeper": {"default": "Still here."},
    # Fails after four tokens: "Hal", "f", " an", " ans".
    "flaky": {"default": "Half an answer, and then the worker fails.", "fail_after_tokens": 4},
    "broken": {"fail_load": "weights file is corrupt (test)"},
}
MODEL_OPTIONS: dict[str, Json] = {
    # The template from the config, which is also what /api/show reports.
    "local": {
        "chat_template": CHAT_TEMPLATE,
        "tool_parser": "hermes",
        "reasoning_parser": "think",
        "embeddings": True,
    },
    "keeper": {"pinned": True},
}
ASK = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("ollama-api")
    models_dir = tmp / "models"
    models = scripted_models(models_dir, SCRIPTS, MODEL_OPTIONS)
    routing = {
        "aliases": {"assistant": ["local"]},
        "presets": {"terse": {"model": "local", "system": "Be terse.", "params": {"seed": 7}}},
    }
    with running_stack(tmp, base_config(models, models_dir, routing=routing)) as running:
        yield running


@pytest.fixture
def client(stack: Stack) -> Iterator[ollama.Client]:
    with ollama.Client(host=stack.url, timeout=60) as sdk:
        yield sdk


def _loaded(client: ollama.Client) -> set[str]:
    return {m.model or "" for m in client.ps().models}


# -- chat -----------------------------------------------------------------------------------


def test_chat_whole_answers_with_ollama_timings(client: ollama.Client) -> None:
    answer = client.chat(model="local", messages=ASK)
    assert answer.message.role == "assistant"
    assert answer.message.content == CAPITAL
    assert answer.model == "local"
    assert answer.done is True and answer.done_reason == "stop"
    assert answer.prompt_eval_count and answer.prompt_eval_count > 5
    assert answer.eval_count == 10  # the scripted backend's tokens of CAPITAL
    durations = [answer.load_duration, answer.prompt_eval_duration, answer.eval_duration]
    assert all(d is not None and d >= 0 for d in durations)
    assert answer.total_duration is not None
    assert answer.total_duration >= sum(d or 0 for d in durations[1:])


def test_chat_streams_by_default_as_json_lines(stack: Stack) -> None:
    """No `stream` field: Ollama streams; each line one object, the last with done."""
    body = {"model": "local", "messages": ASK}
    with stack.client() as http, http.stream("POST", "/api/chat", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/x-ndjson"
        lines = [line for line in response.iter_lines() if line]
    parts = [json.loads(line) for line in lines]
    assert [p["done"] for p in parts] == [False] * (len(parts) - 1) + [True]
    assert "".join(p["message"]["content"] for p in parts) == CAPITAL
    assert parts[-1]["done_reason"] == "stop" and parts[-1]["eval_count"] == 10


def test_chat_streamed_with_the_client_joins_to_the_whole_answer(client: ollama.Client) -> None:
    parts = list(client.chat(model="local", messages=ASK, stream=True))
    assert len(parts) > 3
    assert "".join(p.message.content or "" for p in parts) == CAPITAL
    assert not any(p.done for p in parts[:-1])
    last = parts[-1]
    assert last.done and last.done_reason == "stop"
    assert last.eval_count == 10 and last.total_duration and last.total_duration > 0


@pytest.mark.parametrize("name", ["local:latest", "assistant", "assistant:latest"])
def test_chat_accepts_tagged_names_and_aliases(client: ollama.Client, name: str) -> None:
    answer = client.chat(model=name, messages=ASK)
    assert answer.message.content == CAPITAL
    assert answer.model == name


def test_a_preset_brings_its_system_prompt(client: ollama.Client) -> None:
    assert client.chat(model="terse", messages=ASK).message.content == "Paris."


def test_chat_options_num_predict_and_stop(client: ollama.Client) -> None:
    cut = client.chat(model="local", messages=ASK, options={"num_predict": 3})
    assert cut.message.content == "The capita"  # three tokens: "The", " cap", "ita"
    assert cut.done_reason == "length" and cut.eval_count == 3
    stopped = client.chat(model="local", messages=ASK, options={"stop": [" of"]})
    assert stopped.message.content == "The capital"
    assert stopped.done_reason == "stop"
    sampled = client.chat(
        model="local",
        messages=ASK,
        options={"temperature": 0.5, "top_p": 0.9, "seed": 3, "num_ctx": 2048, "top_k": 40},
    )
    assert sampled.message.content == CAPITAL


# -- tools and thinking ---------------------------------------------------------------------


def test_tools_whole_come_back_as_ollama_tool_calls(client: ollama.Client) -> None:
    answer = client.chat(model="local", messages=ASK, tools=[WEATHER_TOOL])
    assert answer.message.content == "Checking."
    calls = answer.message.tool_calls or []
    assert [(c.function.name, dict(c.function.arguments)) for c in calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_weather", {"city": "Oslo"}),
    ]
    assert answer.done_reason == "stop"


def test_tools_streamed_come_whole_in_one_part(client: ollama.Client) -> None:
    parts = list(client.chat(model="local", messages=ASK, tools=[WEATHER_TOOL], stream=True))
    with_calls = [p for p in parts if p.message.tool_calls]
    assert len(with_calls) == 1
    calls = with_calls[0].message.tool_calls or []
    assert [dict(c.function.arguments) for c in calls] == [{"city": "Paris"}, {"city": "Oslo"}]
    assert "".join(p.message.content or "" for p in parts) == "Checking."
    assert parts[-1].done


def test_a_python_function_as_tool_and_its_results_reach_the_model(
    client: ollama.Client,
) -> None:
    def get_weather(city: str) -> str:
        """Current weather for a city

        Args:
          city: the city
        """
        return f"Sunny in {city}"

    first = client.chat(model="local", messages=ASK, tools=[get_weather])
    calls = first.message.tool_calls or []
    results = [
        {
            "role": "tool",
            "tool_name": c.function.name,
            "content": get_weather(**c.function.arguments),
        }
        for c in calls
    ]
    history = [*ASK, first.message, *results]
    second = client.chat(model="local", messages=history, tools=[get_weather])
    assert second.message.content == "Pack sunglasses for Paris."


def test_think_true_separates_thinking(client: ollama.Client) -> None:
    question = [{"role": "user", "content": "Think it over: the capital of France?"}]
    answer = client.chat(model="local", messages=question, think=True)
    assert answer.message.thinking == "France... Paris."
    assert answer.message.content == "Paris."
    parts = list(client.chat(model="local", messages=question, think=True, stream=True))
    assert "".join(p.message.thinking or "" for p in parts) == "France... Paris."
    assert "".join(p.message.content or "" for p in parts) == "Paris."


def test_think_false_reaches_the_chat_template(client: ollama.Client) -> None:
    answer = client.chat(model="local", messages=ASK, think=False)
    assert answer.message.content == "No thinking here."


# -- generate -------------------------------------------------------------------------------


def test_generate_whole_and_streamed(client: ollama.Client) -> None:
    whole = client.generate(model="local", prompt="What is the capital of France?")
    assert whole.response == CAPITAL and whole.done and whole.eval_count == 10
    parts = list(client.generate(model="local", prompt="Capital?", stream=True))
    assert "".join(p.response or "" for p in parts) == CAPITAL
    assert parts[-1].done and parts[-1].done_reason == "stop"


def test_generate_with_system_and_think(client: ollama.Client) -> None:
    terse = client.generate(model="local", prompt="Capital?", system="Be terse.")
    assert terse.response == "Paris."
    thought = client.generate(model="local", prompt="Think it over", think=True)
    assert thought.thinking == "France... Paris." and thought.response == "Paris."


def test_generate_raw_skips_the_chat_template(client: ollama.Client) -> None:
    """A raw prompt is a text completion: no template, so no tools, no thinking parse."""
    raw = client.generate(model="local", prompt="<|im_start|>user\nThink it over", raw=True)
    assert raw.response == "<think>France... Paris.</think>Paris."


def test_format_json_reaches_the_worker(client: ollama.Client) -> None:
    """The scripted backend cannot constrain output: the worker's refusal shows the
    format arrived as response_format (the real model follows it, in the real-model test)."""
    with pytest.raises(ollama.ResponseError) as caught:
        client.chat(model="local", messages=ASK, format="json")
    assert caught.value.status_code == 400
    assert "JSON schema" in caught.value.error


# -- embeddings -----------------------------------------------------------------------------


def test_embed_and_the_older_embeddings(client: ollama.Client) -> None:
    both = client.embed(model="local", input=["first text", "second text"])
    assert len(both.embeddings) == 2 and all(len(v) == 8 for v in both.embeddings)
    assert both.prompt_eval_count and both.prompt_eval_count > 0
    one = client.embeddings(model="local", prompt="first text")
    assert list(one.embedding) == pytest.approx(list(both.embeddings[0]))
    cut = client.embed(model="local", input="first text", dimensions=3)
    (vector,) = cut.embeddings
    assert len(vector) == 3 and math.hypot(*vector) == pytest.approx(1.0)


# -- listings -------------------------------------------------------------------------------


def test_list_names_every_model_and_alias_with_a_tag(client: ollama.Client, stack: Stack) -> None:
    listed = {m.model: m for m in client.list().models}
    assert {"local:latest", "assistant:latest", "napper:latest"} <= set(listed)
    local = listed["local:latest"]
    script = stack.root.parent / "models" / "local.json"
    assert local.size == script.stat().st_size
    assert local.details is not None and local.details.format == "scripted"
    assert local.digest and len(local.digest) == 64
    assert local.modified_at is not None and local.modified_at.year >= 2024


def test_ps_lists_loaded_models_with_context_and_expiry(client: ollama.Client) -> None:
    client.chat(model="local", messages=ASK)
    running = {m.model: m for m in client.ps().models}
    local = running["local:latest"]
    assert local.context_length == 4096
    assert local.size and local.size > 0
    assert local.expires_at is not None and local.expires_at.year > 2200  # no ttl: forever


def test_show_describes_the_model(client: ollama.Client) -> None:
    shown = client.show("local")
    assert shown.template == CHAT_TEMPLATE
    assert set(shown.capabilities or []) == {"completion", "tools", "thinking", "embedding"}
    assert shown.parameters is not None and "num_ctx" in shown.parameters
    assert shown.modelfile is not None and shown.modelfile.startswith("# Modelfile")
    assert shown.details is not None and shown.details.format == "scripted"
    assert shown.modelinfo is not None
    preset = client.show("terse")
    assert preset.modelfile is not None and 'SYSTEM """Be terse."""' in preset.modelfile
    assert preset.parameters is not None and "seed" in preset.parameters


def test_version(stack: Stack) -> None:
    with stack.client() as http:
        version = http.get("/api/version").json()["version"]
    assert [int(p) for p in version.split(".")] >= [0, 9, 0]


# -- keep_alive -----------------------------------------------------------------------------


def test_keep_alive_zero_unloads_after_answering(client: ollama.Client, stack: Stack) -> None:
    answer = client.chat(model="napper", messages=ASK, keep_alive=0)
    assert answer.message.content == "Zzz."
    assert "napper:latest" not in _loaded(client)
    assert stack.status("napper")["status"] == "unloaded"


def test_empty_requests_load_and_unload(client: ollama.Client, stack: Stack) -> None:
    loaded = client.chat(model="napper", messages=[])
    assert loaded.done and loaded.done_reason == "load"
    assert "napper:latest" in _loaded(client)
    unloaded = client.generate(model="napper", keep_alive=0)
    assert unloaded.done_reason == "unload" and unloaded.response == ""
    assert "napper:latest" not in _loaded(client)
    again = client.generate(model="napper", keep_alive="0s")  # not loaded: nothing to do
    assert again.done_reason == "unload"


def test_a_pinned_model_ignores_keep_alive(client: ollama.Client, stack: Stack) -> None:
    assert client.chat(model="keeper", messages=ASK, keep_alive=0).message.content == "Still here."
    assert client.generate(model="keeper", keep_alive=0).done_reason == "load"
    assert stack.status("keeper")["status"] == "ready"


def test_keep_alive_duration_unloads_when_idle(client: ollama.Client, stack: Stack) -> None:
    client.chat(model="dozer", messages=ASK, keep_alive="1s")
    (dozer,) = [m for m in client.ps().models if m.model == "dozer:latest"]
    assert dozer.expires_at is not None
    assert (dozer.expires_at - datetime.now(UTC)).total_seconds() < 2
    wait_until(lambda: stack.status("dozer")["status"] == "unloaded", 15, what="dozer idle unload")
    # The next load starts from the config's ttl (none): forever again.
    client.chat(model="dozer", messages=ASK, keep_alive=-1)
    (dozer,) = [m for m in client.ps().models if m.model == "dozer:latest"]
    assert dozer.expires_at is not None and dozer.expires_at.year > 2200


# -- errors ---------------------------------------------------------------------------------


def _error(caught: pytest.ExceptionInfo[ollama.ResponseError]) -> tuple[int, str]:
    assert isinstance(caught.value.error, str)  # Ollama's {"error": "..."}, not an object
    return caught.value.status_code, caught.value.error


def test_unknown_model_is_a_404_naming_what_exists(client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as caught:
        client.chat(model="llama3:8b", messages=ASK)
    status, message = _error(caught)
    assert status == 404 and "local" in message


def test_bad_fields_are_400s_naming_the_field(client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as caught:
        client.chat(model="local", messages=ASK, keep_alive="soon")
    assert _error(caught)[0] == 400 and "keep_alive" in caught.value.error
    with pytest.raises(ollama.ResponseError) as caught:
        client.chat(model="local", messages=ASK, options={"temperature": "hot"})
    assert _error(caught)[0] == 400 and "options.temperature" in caught.value.error
    with pytest.raises(ollama.ResponseError) as caught:
        client.chat(model="local", messages=ASK, options={"temperature": 9})
    assert _error(caught)[0] == 400 and "temperature" in caught.value.error  # the worker's


def test_failure_mid_stream_ends_with_an_error_line(client: ollama.Client) -> None:
    parts: list[Any] = []
    with pytest.raises(ollama.ResponseError) as caught:
        parts.extend(client.chat(model="flaky", messages=ASK, stream=True))
    assert "".join(p.message.content or "" for p in parts) == "Half an ans"
    assert "failure" in caught.value.error


def test_failed_load_is_a_503(client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as caught:
        client.generate(model="broken", prompt="hi")
    status, message = _error(caught)
    assert status == 503 and "weights file is corrupt" in message


def test_pull_of_an_ollama_library_name_says_how_to_name_a_repo(client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as caught:
        client.pull("smollm2:135m")
    status, message = _error(caught)
    assert status == 400 and "owner/name" in message and "hf.co/" in message


def test_raw_http_errors_are_ollama_shaped(stack: Stack) -> None:
    with stack.client() as http:
        not_json = http.post(
            "/api/chat", content=b"{", headers={"content-type": "application/json"}
        )
        no_route = http.get("/api/nothing")
        wrong_method = http.post("/api/tags", json={})
    for response, status in ((not_json, 400), (no_route, 404), (wrong_method, 405)):
        assert response.status_code == status
        assert isinstance(response.json()["error"], str), response.text
