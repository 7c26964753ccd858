"""Malformed requests, generated (Hypothesis), against every route that takes a body, on
the real gateway and on a real worker's own port: never a 5xx, every refusal in its API's
envelope (OpenAI's, Anthropic's, Ollama's), and a normal request still answered
afterwards.

Derandomized, so CI sees the same bodies every run; raise FUZZ_EXAMPLES to search wider.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.stack import Stack, base_config, running_stack, scripted_models, wait_until

pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "120"))
GATEWAY_ROUTES = [
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/embeddings",
    "/v1/messages",
    "/v1/messages/count_tokens",
    "/v1/responses",
    "/admin/models/load",
    "/admin/models/unload",  # a valid body unloads m; the next request loads it again
    "/api/chat",  # Ollama's; `keep_alive: 0` unloads m too
    "/api/generate",
    "/api/embed",
    "/api/embeddings",
    "/api/show",
    "/api/pull",
    "/api/v0/chat/completions",  # LM Studio's
    "/api/v0/completions",
    "/api/v0/embeddings",
]
WORKER_ROUTES = ["/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/tokenize"]

# Text that tokenizers choke on, numbers at and past every bound, wrong types.
odd_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", "\ud800", "a\udfffb", "\x00", "<|im_end|>", "</think>", "{" * 50]),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    odd_text,
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(odd_text, inner, max_size=4),
    max_leaves=12,
)
OPTION_NAMES = ["temperature", "top_p", "seed", "num_predict", "num_ctx", "stop", "top_k"]
roles = st.sampled_from(["system", "developer", "user", "assistant", "tool", "robot", ""])
contents = st.one_of(
    odd_text,
    st.lists(
        st.fixed_dictionaries({"type": st.sampled_from(["text", "image", "x"]), "text": odd_text}),
        max_size=3,
    ),
    json_values,
)
messages = st.lists(st.fixed_dictionaries({"role": roles, "content": contents}), max_size=3)
# Responses API input items, of every kind it knows and some it does not.
items = st.lists(
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(
                ["message", "function_call", "function_call_output", "reasoning", "x"]
            )
        },
        optional={
            "role": roles,
            "content": contents,
            "call_id": odd_text,
            "name": odd_text,
            "arguments": odd_text,
            "output": json_values,
            "summary": json_values,
        },
    ),
    max_size=3,
)
fields = st.fixed_dictionaries(
    {"model": st.sampled_from(["m", "", "nope", 5, "m:latest"])},
    optional={
        "messages": st.one_of(messages, json_values),
        "prompt": st.one_of(odd_text, json_values),
        "input": st.one_of(odd_text, st.lists(odd_text, max_size=3), items, json_values),
        "instructions": st.one_of(odd_text, json_values),
        "previous_response_id": st.one_of(odd_text, json_values),
        "max_output_tokens": st.one_of(st.integers(-5, 100_000), json_values),
        "text": json_values,
        "reasoning": json_values,
        "store": json_values,
        "system": st.one_of(odd_text, json_values),
        "max_tokens": st.one_of(st.integers(-5, 100_000), json_values),
        "temperature": st.one_of(st.floats(-1, 5, allow_nan=False), json_values),
        "top_p": json_values,
        "stream": st.one_of(st.booleans(), json_values),
        "stop": json_values,
        "tools": json_values,
        "tool_choice": json_values,
        "response_format": json_values,
        "logprobs": json_values,
        "n": json_values,
        "seed": json_values,
        # Ollama's
        "options": st.one_of(
            st.dictionaries(st.sampled_from(OPTION_NAMES), json_values), json_values
        ),
        "format": st.one_of(st.sampled_from(["json", ""]), json_values),
        "think": st.one_of(st.sampled_from(["high", "low"]), json_values),
        "keep_alive": st.one_of(st.sampled_from(["5m", "1h30m", "-1", "0s", "x"]), json_values),
        "raw": json_values,
        "images": json_values,
        "dimensions": json_values,
    },
)
bodies = st.one_of(
    fields.map(lambda body: json.dumps(body).encode()),
    json_values.map(lambda value: json.dumps(value).encode()),
    st.binary(max_size=60),
    st.sampled_from([10, 1_000, 5_000, 100_000]).map(lambda n: b"[" * n + b"]" * n),
)


FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("fuzz")
    models = scripted_models(
        tmp / "models", {"m": {"default": "Fuzzed."}}, {"m": {"embeddings": True}}
    )
    config = base_config(models, tmp / "models", auto_load=["m"])
    with running_stack(tmp, config) as running:
        wait_until(lambda: running.status("m")["status"] == "ready", 30, what="m ready")
        yield running


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30, trust_env=False) as client:
        yield client


def envelope_of(route: str) -> str:
    if route.startswith("/v1/messages"):
        return "anthropic"
    if route.startswith("/api/") and not route.startswith("/api/v0/"):
        return "ollama"
    return "openai"


def check(http: httpx.Client, url: str, body: bytes, envelope: str) -> None:
    response = http.post(url, content=body, headers={"content-type": "application/json"})
    status = response.status_code
    assert status < 500, (url, body, response.text[:300])
    if status >= 400:
        answer = response.json()
        if envelope == "ollama":  # {"error": "message"}
            assert isinstance(answer["error"], str) and answer["error"], answer
            return
        error = answer["error"]
        assert isinstance(error["message"], str) and error["message"]
        assert (answer.get("type") == "error") is (envelope == "anthropic"), answer


def still_answers(http: httpx.Client, base_url: str) -> bool:
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    reply = http.post(base_url + "/v1/chat/completions", json=body)
    return (
        reply.status_code == 200 and reply.json()["choices"][0]["message"]["content"] == "Fuzzed."
    )


@pytest.mark.parametrize("route", GATEWAY_ROUTES)
def test_gateway_routes_refuse_malformed_bodies_in_their_envelope(
    stack: Stack, http: httpx.Client, route: str
) -> None:
    @FUZZ
    @given(body=bodies)
    def fuzz(body: bytes) -> None:
        check(http, stack.url + route, body, envelope_of(route))

    fuzz()
    assert still_answers(http, stack.url)


@pytest.mark.parametrize("route", WORKER_ROUTES)
def test_worker_routes_refuse_malformed_bodies_in_their_envelope(
    stack: Stack, http: httpx.Client, route: str
) -> None:
    worker = f"http://127.0.0.1:{stack.config['models'][0]['port']}"

    @FUZZ
    @given(body=bodies)
    def fuzz(body: bytes) -> None:
        check(http, worker + route, body, "openai")

    fuzz()
    assert still_answers(http, worker)
