"""What a streaming client sees before the first token: which model answers
(`x-lmx-model`), keepalives while a load runs ahead, and, on /v1/messages, the prompt's
length in `message_start`. Real supervisord, gateway and scripted workers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.stack import Stack, base_config, running_stack, scripted_models

pytestmark = pytest.mark.slow

SCRIPTS: dict[str, dict[str, Any]] = {
    "quick": {"default": "Quick answer."},
    "slow": {"default": "Slow to load, quick to answer.", "load_delay_s": 1.5},
    "slower": {"default": "Slower still.", "load_delay_s": 1.5},
}
MESSAGES_BODY = {"max_tokens": 32, "stream": True, "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("heads")
    models_dir = tmp / "models"
    models = scripted_models(models_dir, SCRIPTS)
    config = base_config(
        models,
        models_dir,
        gateway={"loading_keepalive_s": 0.3},
        routing={"aliases": {"later": ["slower"]}},
    )
    with running_stack(tmp, config) as running:
        yield running


def stream(stack: Stack, path: str, body: dict[str, Any]) -> tuple[httpx.Headers, list[str]]:
    with (
        stack.client() as client,
        client.stream("POST", path, json=body) as response,
    ):
        assert response.status_code == 200, response.read()
        return response.headers, list(response.iter_lines())


def events(lines: list[str]) -> list[dict[str, Any]]:
    return [json.loads(line[5:]) for line in lines if line.startswith("data:")]


def test_openai_stream_that_waited_for_a_load_names_its_model(stack: Stack) -> None:
    body = {"model": "later", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    headers, lines = stream(stack, "/v1/chat/completions", body)
    assert headers["x-lmx-model"] == "slower"
    assert any(line.startswith(": loading slower") for line in lines)
    assert [line for line in lines if line][-1] == "data: [DONE]"


def test_messages_stream_names_its_model(stack: Stack) -> None:
    headers, lines = stream(stack, "/v1/messages", {**MESSAGES_BODY, "model": "quick"})
    assert headers["x-lmx-model"] == "quick"
    assert events(lines)[-1]["type"] == "message_stop"


def test_messages_stream_reports_the_prompt_tokens_in_message_start(stack: Stack) -> None:
    with stack.client() as client:
        counted = client.post(
            "/v1/messages/count_tokens", json={**MESSAGES_BODY, "model": "quick"}
        ).json()["input_tokens"]
    _, lines = stream(stack, "/v1/messages", {**MESSAGES_BODY, "model": "quick"})
    start = events(lines)[0]
    assert start["type"] == "message_start"
    assert counted > 0
    assert start["message"]["usage"]["input_tokens"] == counted


def test_messages_stream_waiting_for_a_load_keeps_alive_at_the_configured_interval(
    stack: Stack,
) -> None:
    # gateway.loading_keepalive_s is 0.3 and the load takes 1.5 s: several keepalives.
    headers, lines = stream(stack, "/v1/messages", {**MESSAGES_BODY, "model": "slow"})
    keepalives = [line for line in lines if line.startswith(": loading slow")]
    assert len(keepalives) >= 2
    assert headers["x-lmx-model"] == "slow"
    kinds = [event["type"] for event in events(lines)]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    assert "content_block_delta" in kinds
