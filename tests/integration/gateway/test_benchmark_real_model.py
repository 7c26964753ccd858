"""A benchmark of the real SmolLM2 model on llama.cpp through the gateway's own port, and
its result still listed after `supervisorctl restart gateway`. Kept short: 2 runs of 16
tokens."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.integration.stack import GGUF, Stack, base_config, running_stack, wait_until

pytestmark = pytest.mark.slow

MODEL = "smollm2-135m"
KEY = "bench-key"
API_KEY = "client-key"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if not GGUF.exists():
        pytest.fail("the default model is missing: run ./scripts/fetch-model")
    models = [{"id": MODEL, "path": GGUF.name, "backend": "llama_cpp"}]
    # With API keys set, the benchmark's own requests must carry one to get through.
    security = {"admin_key": KEY, "api_keys": [API_KEY]}
    config = base_config(models, GGUF.parent, security=security)
    with running_stack(tmp_path_factory.mktemp("bench"), config) as running:
        yield running


def admin(stack: Stack) -> httpx.Client:
    headers = {"Authorization": f"Bearer {KEY}"}
    return httpx.Client(base_url=stack.url, headers=headers, timeout=300, trust_env=False)


def healthy(stack: Stack) -> bool:
    try:
        with stack.client(timeout=2) as c:
            return c.get("/healthz").status_code == 200
    except httpx.HTTPError:
        return False


def test_benchmark_of_the_real_model_is_measured_and_survives_a_restart(stack: Stack) -> None:
    body = {"model": MODEL, "prompt": "Tell me about the sea.", "max_tokens": 16, "runs": 2}
    with admin(stack) as c:
        response = c.post("/admin/benchmark", json=body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["model"] == MODEL and result["prompt_tokens"] > 5
    assert [set(run) for run in result["runs"]] == [
        {"ttft_ms", "tokens", "tokens_per_s", "duration_ms"}
    ] * 2
    for run in result["runs"]:
        assert 1 < run["tokens"] <= 16
        assert 0 < run["ttft_ms"] < run["duration_ms"]
        assert run["tokens_per_s"] > 1
    assert result["summary"]["total_tokens_per_s"] > 1

    stack.ctl("restart", "gateway")
    wait_until(lambda: healthy(stack), 30, what="the gateway back")
    with admin(stack) as c:
        listed = c.get("/admin/benchmark").json()["data"]
    assert listed[0] == result
