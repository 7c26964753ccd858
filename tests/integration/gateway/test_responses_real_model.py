"""The real SmolLM2 model (llama.cpp) behind /v1/responses, with the official `openai`
SDK as the client: whole and streamed answers, a JSON schema answer that parses, and a
conversation continued through `previous_response_id` after the gateway restarted.
Tool calls and reasoning, which this model does not produce, are in test_responses_sdk.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import openai
import pytest
from pydantic import BaseModel, Field

from tests.integration.stack import GGUF, Stack, base_config, running_stack, wait_until

pytestmark = pytest.mark.slow

MODEL = "smollm2-135m"
QUESTION = "What is the capital of France? Answer in one sentence."


class City(BaseModel):
    city: str = Field(max_length=20)
    country: str = Field(max_length=20)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if not GGUF.exists():
        pytest.fail("the default model is missing: run ./scripts/fetch-model")
    models = [{"id": MODEL, "path": GGUF.name, "backend": "llama_cpp"}]
    config = base_config(models, GGUF.parent, auto_load=[MODEL])
    with running_stack(tmp_path_factory.mktemp("responses-real"), config) as running:
        wait_until(lambda: running.status(MODEL)["status"] == "ready", 120, what="model ready")
        yield running


def sdk(stack: Stack) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack.url + "/v1", api_key="unused", max_retries=0, timeout=180)


def test_whole_and_streamed_answers_agree(stack: Stack) -> None:
    client = sdk(stack)
    whole = client.responses.create(
        model=MODEL, input=QUESTION, temperature=0, max_output_tokens=12
    )
    with client.responses.stream(
        model=MODEL, input=QUESTION, temperature=0, max_output_tokens=12
    ) as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        streamed = stream.get_final_response()

    assert "Paris" in whole.output_text
    assert "".join(deltas) == streamed.output_text == whole.output_text
    assert whole.usage is not None and streamed.usage is not None
    assert whole.usage.output_tokens == streamed.usage.output_tokens > 0
    assert streamed.usage.input_tokens == whole.usage.input_tokens > 0


def test_a_json_schema_answer_parses(stack: Stack) -> None:
    response = sdk(stack).responses.parse(
        model=MODEL,
        input="Name a city and its country, as JSON.",
        text_format=City,
        temperature=0,
        max_output_tokens=60,
    )

    assert response.status == "completed"
    assert isinstance(response.output_parsed, City)
    assert json.loads(response.output_text) == response.output_parsed.model_dump()


def test_a_conversation_continues_after_a_gateway_restart(stack: Stack) -> None:
    client = sdk(stack)
    first = client.responses.create(
        model=MODEL, input="My name is Ada. Say hello to me.", temperature=0, max_output_tokens=16
    )

    gateway_pid = stack.ctl("pid", "gateway").strip()
    assert "gateway: started" in stack.ctl("restart", "gateway")
    wait_until(lambda: _healthy(stack), 60, what="the restarted gateway")
    assert stack.ctl("pid", "gateway").strip() not in (gateway_pid, "0")
    second = client.responses.create(
        model=MODEL,
        previous_response_id=first.id,
        input="What is my name?",
        temperature=0,
        max_output_tokens=16,
    )

    assert first.usage is not None and second.usage is not None
    # The second prompt holds the first turn, question and answer, before the new question,
    # and the worker (still loaded: workers outlive a gateway restart) had it cached.
    assert second.usage.input_tokens > first.usage.input_tokens + first.usage.output_tokens
    assert second.usage.input_tokens_details.cached_tokens >= first.usage.input_tokens - 1
    items = client.responses.input_items.list(second.id, order="asc").data
    texts = [item.model_dump()["content"][0]["text"] for item in items]
    assert texts == ["My name is Ada. Say hello to me.", first.output_text, "What is my name?"]
    assert client.responses.retrieve(first.id).output_text == first.output_text


def _healthy(stack: Stack) -> bool:
    try:
        with stack.client(timeout=2) as http:
            return http.get("/healthz").status_code == 200
    except Exception:
        return False
