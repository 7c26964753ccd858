"""The llama_cpp backend on the real SmolLM2 model, through the OpenAI SDK."""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from openai import OpenAI

from tests.integration.workers.conftest import SMOLLM2, RunningWorker, ready_worker
from workers.contract.settings import WorkerSettings

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not SMOLLM2.is_file(), reason="the SmolLM2 GGUF is not downloaded"),
]

# The template adds its own system prompt; after it, the bare question is a near tie between
# answers starting "The" and "L'"; asking for one sentence gives "The capital ... Paris." a margin.
FRANCE: list[Any] = [
    {"role": "user", "content": "What is the capital of France? Answer in one sentence."}
]


@pytest.fixture(scope="module")
def smollm2() -> Iterator[RunningWorker]:
    settings = WorkerSettings(
        model_id="smollm2", backend="llama_cpp", path=SMOLLM2, port=0, embeddings=True
    )
    with ready_worker(settings) as worker:
        yield worker


@pytest.fixture
def client(smollm2: RunningWorker) -> OpenAI:
    return smollm2.client()


def test_answers_paris_whole(client: OpenAI) -> None:
    reply = client.chat.completions.create(
        model="smollm2", messages=FRANCE, temperature=0, max_tokens=30
    )
    assert "Paris" in (reply.choices[0].message.content or "")
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None and reply.usage.prompt_tokens > 0


def test_answers_paris_streaming_with_usage_chunk(client: OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="smollm2",
            messages=FRANCE,
            temperature=0,
            max_tokens=30,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "Paris" in text
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0


def test_stop_sequence_ends_the_answer_and_is_reported(client: OpenAI) -> None:
    reply = client.chat.completions.create(
        model="smollm2", messages=FRANCE, temperature=0, max_tokens=30, stop=["Paris"]
    )
    choice = reply.choices[0]
    assert "Paris" not in (choice.message.content or "")
    assert choice.finish_reason == "stop"
    assert (choice.model_extra or {}).get("stop_sequence") == "Paris"


def test_max_tokens_ends_with_length(client: OpenAI) -> None:
    reply = client.chat.completions.create(
        model="smollm2", messages=FRANCE, temperature=0, max_tokens=3
    )
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage is not None and reply.usage.completion_tokens == 3


def test_same_seed_gives_the_same_answer(client: OpenAI) -> None:
    story: list[Any] = [{"role": "user", "content": "Tell me a short story."}]

    def sample(seed: int) -> str:
        reply = client.chat.completions.create(
            model="smollm2", messages=story, temperature=1.0, seed=seed, max_tokens=24
        )
        return reply.choices[0].message.content or ""

    assert sample(7) == sample(7)


def test_json_schema_output_is_valid_json_matching_the_schema(client: OpenAI) -> None:
    schema: Any = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
        "required": ["city", "country"],
    }
    reply = client.chat.completions.create(
        model="smollm2",
        messages=FRANCE,
        temperature=0,
        max_tokens=60,
        response_format=_json_schema_format(schema),
    )
    answer = json.loads(reply.choices[0].message.content or "")
    assert isinstance(answer["city"], str) and isinstance(answer["country"], str)


def _json_schema_format(schema: Any) -> Any:
    return {"type": "json_schema", "json_schema": {"name": "place", "schema": schema}}


def test_named_tool_choice_forces_a_call(client: OpenAI) -> None:
    tools: Any = [
        {
            "type": "function",
            "function": {
                "name": "lookup_capital",
                "parameters": {
                    "type": "object",
                    "properties": {"country": {"type": "string"}},
                    "required": ["country"],
                },
            },
        }
    ]
    reply = client.chat.completions.create(
        model="smollm2",
        messages=FRANCE,
        temperature=0,
        max_tokens=40,
        tools=tools,
        tool_choice={"type": "function", "function": {"name": "lookup_capital"}},
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    call: Any = choice.message.tool_calls[0]
    assert call.function.name == "lookup_capital"
    assert isinstance(json.loads(call.function.arguments)["country"], str)


def test_logprobs_are_returned(client: OpenAI) -> None:
    reply = client.chat.completions.create(
        model="smollm2", messages=FRANCE, temperature=0, max_tokens=4, logprobs=True, top_logprobs=2
    )
    logprobs = reply.choices[0].logprobs
    assert logprobs is not None and logprobs.content
    first = logprobs.content[0]
    assert first.logprob <= 0 and len(first.top_logprobs) == 2


def test_embeddings_as_floats_and_base64(client: OpenAI) -> None:
    floats = client.embeddings.create(model="smollm2", input=["hello", "world"])
    assert len(floats.data) == 2
    assert len(floats.data[0].embedding) == 576
    assert floats.data[0].embedding != floats.data[1].embedding
    assert floats.usage.prompt_tokens > 0
    # Asked for explicitly, base64 comes back as the string: little-endian float32s.
    encoded = client.embeddings.create(model="smollm2", input="hello", encoding_format="base64")
    raw = encoded.data[0].embedding
    assert isinstance(raw, str)
    decoded = list(struct.unpack(f"<{len(base64.b64decode(raw)) // 4}f", base64.b64decode(raw)))
    assert decoded == pytest.approx(floats.data[0].embedding, abs=1e-5)


def test_concurrent_requests_each_get_the_same_greedy_answer(client: OpenAI) -> None:
    def ask() -> str:
        reply = client.chat.completions.create(
            model="smollm2", messages=FRANCE, temperature=0, max_tokens=30
        )
        return reply.choices[0].message.content or ""

    with ThreadPoolExecutor(max_workers=3) as pool:
        answers = list(pool.map(lambda _: ask(), range(3)))
    assert len(set(answers)) == 1 and "Paris" in answers[0]


USER_SURROGATE = {"role": "user", "content": "a\ud800b"}
SYSTEM_SURROGATE = {"role": "system", "content": "\udfff"}


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/v1/chat/completions", {"messages": [USER_SURROGATE]}, "messages[0].content"),
        ("/v1/chat/completions", {"messages": [SYSTEM_SURROGATE, *FRANCE]}, "messages[0].content"),
        ("/v1/completions", {"prompt": "x\ud800"}, "prompt"),
        ("/v1/embeddings", {"input": ["fine", "\ud800"]}, "input[1]"),
        ("/v1/completions", {"prompt": ""}, "prompt"),
        ("/v1/embeddings", {"input": ""}, "input"),
        ("/v1/embeddings", {"input": ["a", ""]}, "input[1]"),
    ],
)  # fmt: skip
def test_invalid_text_and_empty_input_are_400_naming_the_field(
    smollm2: RunningWorker, path: str, body: dict[str, Any], param: str
) -> None:
    # json.dumps writes a lone surrogate as the escape "\ud800", as a client may send it.
    content = json.dumps({"model": "smollm2", "max_tokens": 4, **body}).encode()
    response = httpx.post(
        smollm2.base_url + path, content=content, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param
    assert client_answers(smollm2)


def test_json_nested_too_deeply_is_400(smollm2: RunningWorker) -> None:
    deep = b'{"messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    response = httpx.post(
        smollm2.base_url + "/v1/chat/completions",
        content=deep,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"
    assert client_answers(smollm2)


def client_answers(worker: RunningWorker) -> bool:
    reply = worker.client().chat.completions.create(
        model="smollm2", messages=FRANCE, temperature=0, max_tokens=4
    )
    return bool(reply.choices[0].message.content)
