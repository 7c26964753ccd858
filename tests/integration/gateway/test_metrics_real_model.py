"""The real SmolLM2 model (llama.cpp) through the real stack: /metrics and the request
history count exactly the tokens the model's answers report, time its stream's first
token, and show the worker's memory and prompt cache as /admin/status does. Few tokens."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.integration.metrics_scrape import Scrape, scrape, settled
from tests.integration.stack import GGUF, Stack, base_config, running_stack, wait_until

pytestmark = pytest.mark.slow

MODEL = "smollm2-135m"
CHAT = "/v1/chat/completions"
QUESTION = [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if not GGUF.exists():
        pytest.fail("the default model is missing: run ./scripts/fetch-model")
    models = [{"id": MODEL, "path": GGUF.name, "backend": "llama_cpp"}]
    config = base_config(models, GGUF.parent)
    with running_stack(tmp_path_factory.mktemp("metrics-real"), config) as running:
        yield running


def metrics(stack: Stack) -> Scrape:
    return scrape(httpx.get(stack.url + "/metrics", trust_env=False, timeout=10).text)


def test_real_answers_are_counted_exactly_and_timed(stack: Stack) -> None:
    client = openai.OpenAI(base_url=stack.url + "/v1", api_key="x", max_retries=0, timeout=180)
    before = metrics(stack)
    whole = client.chat.completions.create(
        model=MODEL, messages=QUESTION, temperature=0, max_tokens=8
    )
    chunks = list(
        client.chat.completions.create(
            model=MODEL,
            messages=QUESTION,
            temperature=0,
            max_tokens=8,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    streamed = chunks[-1].usage
    assert whole.usage is not None and streamed is not None
    m = settled(lambda: metrics(stack), before, 2)
    labels = {"model": MODEL, "route": CHAT}
    assert m.value("lmx_requests_total", **labels, status="200") == 2
    assert m.value("lmx_prompt_tokens_total", **labels) == (
        whole.usage.prompt_tokens + streamed.prompt_tokens
    )
    assert m.value("lmx_completion_tokens_total", **labels) == (
        whole.usage.completion_tokens + streamed.completion_tokens
    )
    assert m.value("lmx_time_to_first_token_seconds_count", **labels) == 1
    assert m.value("lmx_model_loads_total", model=MODEL, outcome="ready") == 1

    with httpx.Client(base_url=stack.url, trust_env=False) as c:
        stream_entry, whole_entry = c.get("/admin/requests/recent?limit=2").json()["data"]
    assert stream_entry["stream"] is True
    assert stream_entry["completion_tokens"] == streamed.completion_tokens
    assert 0 < stream_entry["ttft_ms"] < stream_entry["duration_ms"]
    ttft_s = m.value("lmx_time_to_first_token_seconds_sum", **labels)
    assert ttft_s == pytest.approx(stream_entry["ttft_ms"] / 1000, abs=1e-3)
    assert stream_entry["tokens_per_s"] > 0 and whole_entry["tokens_per_s"] > 0
    assert whole_entry["prompt_tokens"] == whole.usage.prompt_tokens


def test_worker_memory_and_prompt_cache_match_admin_status(stack: Stack) -> None:
    client = openai.OpenAI(base_url=stack.url + "/v1", api_key="x", max_retries=0, timeout=180)
    for _ in range(2):  # the same prompt twice: the prompt cache sees both
        client.chat.completions.create(model=MODEL, messages=QUESTION, max_tokens=2)

    def agreeing() -> dict[str, Any] | None:
        m = metrics(stack)
        status = stack.status(MODEL)
        cache = status["prompt_cache"]
        if cache is None or cache["hits"] + cache["misses"] < 2:
            return None  # the fleet watch has not polled /health since the requests
        same = (
            m.value("lmx_worker_rss_bytes", model=MODEL) == status["rss_bytes"] > 0
            and m.value("lmx_prompt_cache_hits_total", model=MODEL) == cache["hits"]
            and m.value("lmx_prompt_cache_misses_total", model=MODEL) == cache["misses"]
            and m.value("lmx_prompt_cache_bytes", model=MODEL, tier="ram") == cache["ram_bytes"]
        )
        return cache if same else None

    cache = wait_until(agreeing, 15, what="a scrape equal to /admin/status")
    assert cache["misses"] >= 1
