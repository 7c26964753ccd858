"""The worker's OpenAI API over the scripted backend: shapes a client sees."""

from __future__ import annotations

import base64
import struct
from typing import Any

import httpx
import pytest

from tests.integration.workers.conftest import StartScripted

SCRIPT = {"replies": [{"match": "France", "text": "The capital of France is Paris."}]}


def test_chat_answers_whole_with_usage(start_scripted: StartScripted) -> None:
    worker = start_scripted(SCRIPT)
    reply = worker.client().chat.completions.create(
        model="anything", messages=[{"role": "user", "content": "Capital of France?"}]
    )
    assert reply.choices[0].message.content == "The capital of France is Paris."
    assert reply.choices[0].finish_reason == "stop"
    assert reply.model == "scripted-model"
    assert reply.usage is not None
    assert reply.usage.completion_tokens > 0
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_chat_streams_role_first_then_text_then_usage(start_scripted: StartScripted) -> None:
    worker = start_scripted(SCRIPT)
    chunks = list(
        worker.client().chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": "Capital of France?"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "The capital of France is Paris."
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_models_lists_the_one_model(start_scripted: StartScripted) -> None:
    worker = start_scripted(SCRIPT)
    models = worker.client().models.list().data
    assert [m.id for m in models] == ["scripted-model"]
    assert models[0].owned_by == "opta-lmx"


def test_completion_streams_and_whole_agree(start_scripted: StartScripted) -> None:
    worker = start_scripted(SCRIPT)
    client = worker.client()
    whole = client.completions.create(model="m", prompt="France:")
    streamed = "".join(
        c.choices[0].text
        for c in client.completions.create(model="m", prompt="France:", stream=True)
    )
    assert whole.choices[0].text == streamed == "The capital of France is Paris."


def test_stop_sequence_across_tokens_cuts_streamed_and_whole_alike(
    start_scripted: StartScripted,
) -> None:
    client = start_scripted(SCRIPT).client()
    france: Any = [{"role": "user", "content": "France?"}]
    whole = client.chat.completions.create(model="m", messages=france, stop=["s Pa", "zzz"])
    chunks = list(
        client.chat.completions.create(model="m", messages=france, stop="s Pa", stream=True)
    )
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert whole.choices[0].message.content == streamed == "The capital of France i"
    assert whole.choices[0].finish_reason == chunks[-1].choices[0].finish_reason == "stop"
    assert (whole.choices[0].model_extra or {})["stop_sequence"] == "s Pa"
    assert (chunks[-1].choices[0].model_extra or {})["stop_sequence"] == "s Pa"


def test_max_tokens_cuts_with_finish_reason_length(start_scripted: StartScripted) -> None:
    client = start_scripted(SCRIPT).client()
    france: Any = [{"role": "user", "content": "France?"}]
    reply = client.chat.completions.create(model="m", messages=france, max_tokens=2)
    assert reply.choices[0].message.content == "The cap"
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage is not None and reply.usage.completion_tokens == 2


def test_defaults_from_settings_apply_when_the_request_omits_them(
    start_scripted: StartScripted,
) -> None:
    client = start_scripted(SCRIPT, defaults={"max_tokens": 2}).client()
    france: Any = [{"role": "user", "content": "France?"}]
    assert client.chat.completions.create(model="m", messages=france).choices[0].finish_reason == (
        "length"
    )
    longer = client.chat.completions.create(model="m", messages=france, max_tokens=100)
    assert longer.choices[0].finish_reason == "stop"


def test_logprobs_in_chat_and_completions(start_scripted: StartScripted) -> None:
    client = start_scripted(SCRIPT).client()
    france: Any = [{"role": "user", "content": "France?"}]
    chat = client.chat.completions.create(
        model="m", messages=france, max_tokens=3, logprobs=True, top_logprobs=1
    )
    assert chat.choices[0].logprobs is not None
    entries = chat.choices[0].logprobs.content or []
    assert [e.token for e in entries] == ["The", " cap", "ita"]
    assert entries[0].top_logprobs[0].token == "The"
    completion = client.completions.create(model="m", prompt="France?", max_tokens=3, logprobs=1)
    logprobs = completion.choices[0].logprobs
    assert logprobs is not None
    assert logprobs.tokens == ["The", " cap", "ita"]
    assert logprobs.text_offset == [0, 3, 7]


def test_embeddings_float_and_base64_agree(start_scripted: StartScripted) -> None:
    worker = start_scripted({"embedding_dim": 8}, embeddings=True)
    url = worker.base_url + "/v1/embeddings"
    floats = httpx.post(url, json={"input": ["a", "b"]}).json()
    encoded = httpx.post(url, json={"input": ["a", "b"], "encoding_format": "base64"}).json()
    vectors = [item["embedding"] for item in floats["data"]]
    decoded = [
        list(struct.unpack("<8f", base64.b64decode(item["embedding"]))) for item in encoded["data"]
    ]
    assert len(vectors) == 2 and len(vectors[0]) == 8 and vectors[0] != vectors[1]
    assert decoded == [pytest.approx(v) for v in vectors]
    assert floats["usage"]["prompt_tokens"] == floats["usage"]["total_tokens"] == 2
    sdk = worker.client().embeddings.create(model="m", input="a")
    assert sdk.data[0].embedding == pytest.approx(vectors[0])
