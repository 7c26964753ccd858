"""Refusals a client sees: the OpenAI error envelope, the right status, the field named."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from tests.integration.workers.conftest import StartScripted

USER: list[Any] = [{"role": "user", "content": "hello"}]


def test_bad_json_returns_400_envelope(start_scripted: StartScripted) -> None:
    worker = start_scripted({"default": "hi"})
    response = httpx.post(
        worker.base_url + "/v1/chat/completions",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.headers["x-lmx-error-origin"] == "worker"
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert "not valid JSON" in error["message"]


def test_bad_field_names_the_field(start_scripted: StartScripted) -> None:
    worker = start_scripted({"default": "hi"})
    response = httpx.post(
        worker.base_url + "/v1/chat/completions",
        json={"messages": USER, "temperature": "hot"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "temperature"


def test_unknown_fields_are_accepted(start_scripted: StartScripted) -> None:
    client = start_scripted({"default": "hi"}).client()
    reply = client.chat.completions.create(
        model="m", messages=USER, user="someone", extra_body={"frobnicate": {"x": 1}}
    )
    assert reply.choices[0].message.content == "hi"


def test_n_above_one_is_refused(start_scripted: StartScripted) -> None:
    client = start_scripted({"default": "hi"}).client()
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model="m", messages=USER, n=2)
    assert refused.value.body is not None
    assert "n must be 1" in str(refused.value)


def test_image_part_is_refused_without_vision(start_scripted: StartScripted) -> None:
    client = start_scripted({"default": "hi"}).client()
    content: Any = [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
    ]
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": content}])
    assert "does not accept images" in str(refused.value)


def test_text_parts_are_joined(start_scripted: StartScripted) -> None:
    worker = start_scripted({"replies": [{"match": "alpha\nbeta", "text": "joined"}]})
    content: Any = [{"type": "text", "text": "alpha"}, {"type": "text", "text": "beta"}]
    reply = worker.client().chat.completions.create(
        model="m", messages=[{"role": "user", "content": content}]
    )
    assert reply.choices[0].message.content == "joined"


def test_body_over_the_limit_returns_413(start_scripted: StartScripted) -> None:
    worker = start_scripted({"default": "hi"}, max_body_bytes=1000)
    big = [{"role": "user", "content": "x" * 2000}]
    response = httpx.post(worker.base_url + "/v1/chat/completions", json={"messages": big})
    assert response.status_code == 413
    assert "larger than the limit" in response.json()["error"]["message"]


def test_api_key_is_required_except_for_health(start_scripted: StartScripted) -> None:
    worker = start_scripted({"default": "hi"}, api_keys=("sekrit",))
    assert httpx.get(worker.base_url + "/health").status_code == 200
    with pytest.raises(openai.AuthenticationError):
        worker.client().models.list()
    keyed = worker.client(api_key="sekrit")
    assert keyed.models.list().data[0].id == "scripted-model"
    by_header = httpx.get(worker.base_url + "/v1/models", headers={"x-api-key": "sekrit"})
    assert by_header.status_code == 200


def test_unknown_path_is_404_envelope(start_scripted: StartScripted) -> None:
    worker = start_scripted({"default": "hi"})
    response = httpx.get(worker.base_url + "/v1/nothing")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "not_found_error"
    wrong_method = httpx.get(worker.base_url + "/v1/chat/completions")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["type"] == "invalid_request_error"


def test_embeddings_need_the_model_configured_for_them(start_scripted: StartScripted) -> None:
    client = start_scripted({"default": "hi"}).client()
    with pytest.raises(openai.BadRequestError) as refused:
        client.embeddings.create(model="m", input="hello")
    assert "not configured for embeddings" in str(refused.value)


def test_crash_mid_answer_is_500_whole_and_error_chunk_streamed(
    start_scripted: StartScripted,
) -> None:
    worker = start_scripted({"default": "one two three four five", "fail_after_tokens": 2})
    whole = httpx.post(worker.base_url + "/v1/chat/completions", json={"messages": USER})
    assert whole.status_code == 500
    assert "scripted failure" in whole.json()["error"]["message"]
    streamed = httpx.post(
        worker.base_url + "/v1/chat/completions", json={"messages": USER, "stream": True}
    )
    events = [e for e in streamed.text.split("\n\n") if e]
    assert events[-1] == "data: [DONE]"
    assert '"error"' in events[-2] and "scripted failure" in events[-2]
    assert (
        json.loads(events[0].removeprefix("data: "))["choices"][0]["delta"]["role"] == "assistant"
    )
