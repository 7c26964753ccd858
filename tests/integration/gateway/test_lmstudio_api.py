"""LM Studio's REST API (v0) on the real gateway, with real supervisord and scripted
workers, checked with httpx against the fields LM Studio documents: the model documents,
and `stats`, `model_info` and `runtime` on chat and completion answers, whole and
streamed. This stack has API keys, so it also shows that keys guard the Ollama routes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import ollama
import openai
import pytest

from tests.integration.stack import Stack, base_config, running_stack, scripted_models

pytestmark = pytest.mark.slow

Json = dict[str, Any]
KEY = "sk-lmstudio-test"
AUTH = {"Authorization": f"Bearer {KEY}"}
CAPITAL = "The capital of France is Paris."
TOOL_REPLY = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
WEATHER_TOOL: Json = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}},
}
SCRIPTS: dict[str, Json] = {
    "local": {"replies": [{"match": "weather", "text": TOOL_REPLY}], "default": CAPITAL},
    # 20 tokens ("go", " go", ...), each 50 ms after the last: an answer of known timing.
    "slow": {"default": "go" + " go" * 19, "token_delay_s": 0.05},
}
OPTIONS: dict[str, Json] = {"local": {"embeddings": True, "tool_parser": "hermes"}}
DOCUMENTED_MODEL_FIELDS = {
    "id", "object", "type", "publisher", "arch", "compatibility_type", "quantization",
    "state", "max_context_length",
}  # fmt: skip
ASK = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("lmstudio-api")
    models = scripted_models(tmp / "models", SCRIPTS, OPTIONS)
    config = base_config(models, tmp / "models", security={"api_keys": [KEY]})
    with running_stack(tmp, config) as running:
        yield running


@pytest.fixture
def http(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.url, headers=AUTH, timeout=60, trust_env=False) as client:
        yield client


def _chat(http: httpx.Client, **fields: Any) -> Json:
    response = http.post(
        "/api/v0/chat/completions", json={"model": "local", "messages": ASK, **fields}
    )
    assert response.status_code == 200, response.text
    answer: Json = response.json()
    return answer


def _stream(http: httpx.Client, path: str, body: Json) -> list[Json]:
    with http.stream("POST", path, json={**body, "stream": True}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        data = [line[5:].strip() for line in response.iter_lines() if line.startswith("data:")]
    assert data[-1] == "[DONE]"
    return [json.loads(d) for d in data[:-1]]


def _check_extras(answer: Json, stop_reason: str) -> Json:
    stats = answer["stats"]
    assert set(stats) == {
        "tokens_per_second",
        "time_to_first_token",
        "generation_time",
        "stop_reason",
    }
    assert stats["stop_reason"] == stop_reason
    assert all(isinstance(stats[k], int | float) and stats[k] >= 0 for k in list(stats)[:3])
    assert answer["model_info"] == {
        "arch": "",
        "quant": "",
        "format": "scripted",
        "context_length": 4096,
    }
    assert answer["runtime"]["name"] == "scripted"
    assert answer["runtime"]["supported_formats"] == ["scripted"]
    return dict(stats)


def test_models_are_listed_with_the_documented_fields(http: httpx.Client) -> None:
    listed = http.get("/api/v0/models").json()
    assert listed["object"] == "list"
    entries = {m["id"]: m for m in listed["data"]}
    assert set(entries) == {"local", "slow"}
    assert all(set(m) == DOCUMENTED_MODEL_FIELDS for m in entries.values())
    local = entries["local"]
    assert local["type"] == "llm" and local["compatibility_type"] == "scripted"
    assert local["max_context_length"] == 4096
    _chat(http)
    assert http.get("/api/v0/models/local").json()["state"] == "loaded"
    assert http.get("/api/v0/models/slow").json()["state"] == "not-loaded"


def test_an_unknown_model_is_a_404_in_the_openai_envelope(http: httpx.Client) -> None:
    response = http.get("/api/v0/models/qwen2-vl-7b-instruct")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"


def test_chat_whole_carries_stats_model_info_and_runtime(http: httpx.Client) -> None:
    answer = _chat(http)
    assert answer["object"] == "chat.completion"
    assert answer["choices"][0]["message"] == {"role": "assistant", "content": CAPITAL}
    assert answer["choices"][0]["finish_reason"] == "stop"
    assert answer["usage"]["completion_tokens"] == 10
    stats = _check_extras(answer, "eosFound")
    assert stats["tokens_per_second"] > 0


def test_chat_streamed_puts_the_stats_on_the_finish_chunk(http: httpx.Client) -> None:
    chunks = _stream(http, "/api/v0/chat/completions", {"model": "local", "messages": ASK})
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert text == CAPITAL
    *pieces, last = chunks
    assert last["choices"][0]["finish_reason"] == "stop"
    _check_extras(last, "eosFound")
    assert not any("stats" in c for c in pieces)
    assert all(c["choices"] for c in chunks)  # no usage chunk unless asked for


def test_chat_streamed_with_usage_asked_for(http: httpx.Client) -> None:
    body = {"model": "local", "messages": ASK, "stream_options": {"include_usage": True}}
    *_, finish, usage = _stream(http, "/api/v0/chat/completions", body)
    assert "stats" in finish
    assert usage["choices"] == [] and usage["usage"]["completion_tokens"] == 10


def test_the_openai_sdk_reads_the_v0_routes(stack: Stack) -> None:
    sdk = openai.OpenAI(base_url=stack.url + "/api/v0", api_key=KEY, max_retries=0)
    answer = sdk.chat.completions.create(model="local", messages=ASK)  # type: ignore[arg-type]
    assert answer.choices[0].message.content == CAPITAL
    assert (
        answer.model_extra is not None and answer.model_extra["stats"]["stop_reason"] == "eosFound"
    )
    streamed = sdk.chat.completions.create(model="local", messages=ASK, stream=True)  # type: ignore[arg-type]
    assert "".join(c.choices[0].delta.content or "" for c in streamed) == CAPITAL


def test_stop_reasons(http: httpx.Client) -> None:
    assert _chat(http, max_tokens=3)["stats"]["stop_reason"] == "maxPredictedTokensReached"
    stopped = _chat(http, stop=[" of"])
    assert stopped["choices"][0]["message"]["content"] == "The capital"
    assert stopped["stats"]["stop_reason"] == "stopStringFound"
    weather = [{"role": "user", "content": "The weather in Paris?"}]
    called = _chat(http, messages=weather, tools=[WEATHER_TOOL])
    (call,) = called["choices"][0]["message"]["tool_calls"]
    assert call["function"] == {"name": "get_weather", "arguments": '{"city": "Paris"}'}
    assert called["stats"]["stop_reason"] == "toolCalls"


def test_logprobs_survive_the_fold_into_one_answer(http: httpx.Client) -> None:
    chat = _chat(http, logprobs=True, top_logprobs=1)["choices"][0]["logprobs"]["content"]
    assert "".join(entry["token"] for entry in chat) == CAPITAL
    body = {"model": "local", "prompt": "Capital?", "logprobs": 1}
    text = http.post("/api/v0/completions", json=body).json()["choices"][0]["logprobs"]
    assert "".join(text["tokens"]) == CAPITAL
    assert len(text["token_logprobs"]) == len(text["tokens"]) == 10


def test_max_tokens_minus_one_means_no_limit(http: httpx.Client) -> None:
    answer = _chat(http, max_tokens=-1)
    assert answer["choices"][0]["message"]["content"] == CAPITAL


def test_completions_whole_and_streamed(http: httpx.Client) -> None:
    body = {"model": "local", "prompt": "The capital of France is", "max_tokens": 4}
    response = http.post("/api/v0/completions", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["object"] == "text_completion"
    assert answer["choices"][0]["text"] == "The capital"
    assert answer["choices"][0]["finish_reason"] == "length"
    _check_extras(answer, "maxPredictedTokensReached")
    chunks = _stream(http, "/api/v0/completions", body)
    assert "".join(c["choices"][0]["text"] for c in chunks) == "The capital"
    assert chunks[-1]["stats"]["stop_reason"] == "maxPredictedTokensReached"


def test_embeddings(http: httpx.Client) -> None:
    response = http.post("/api/v0/embeddings", json={"model": "local", "input": ["a", "b"]})
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert [d["index"] for d in data] == [0, 1] and all(len(d["embedding"]) == 8 for d in data)


def test_stats_and_ollama_durations_measure_the_answer(stack: Stack, http: httpx.Client) -> None:
    """20 tokens 50 ms apart: 0.95 s from the first to the last, about 21 a second."""
    body = {"model": "slow", "messages": ASK}
    stats = http.post("/api/v0/chat/completions", json=body).json()["stats"]
    assert 0.85 <= stats["generation_time"] <= 3.0
    assert 6 <= stats["tokens_per_second"] <= 22
    client = ollama.Client(host=stack.url, headers=AUTH, timeout=60)
    answer = client.chat(model="slow", messages=ASK)
    assert answer.eval_count == 20
    assert answer.eval_duration is not None and 0.85e9 <= answer.eval_duration <= 3e9
    assert answer.total_duration is not None and answer.total_duration >= answer.eval_duration


def test_keys_guard_every_new_route(stack: Stack) -> None:
    with httpx.Client(base_url=stack.url, timeout=30, trust_env=False) as bare:
        refused = [
            bare.get("/api/v0/models"),
            bare.post("/api/v0/chat/completions", json={"model": "local", "messages": ASK}),
            bare.get("/api/tags"),
            bare.post("/api/chat", json={"model": "local", "messages": ASK}),
        ]
    assert [r.status_code for r in refused] == [401] * 4
    assert all(isinstance(r.json()["error"], dict) for r in refused[:2])  # OpenAI's envelope
    assert all(isinstance(r.json()["error"], str) for r in refused[2:])  # Ollama's
    with pytest.raises(ollama.ResponseError) as caught:
        ollama.Client(host=stack.url).list()
    assert caught.value.status_code == 401
    keyed = ollama.Client(host=stack.url, headers=AUTH)
    assert keyed.chat(model="local", messages=ASK).message.content == CAPITAL
