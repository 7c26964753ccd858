"""The Ollama and LM Studio routes with the real SmolLM2 model behind them (llama.cpp),
through real supervisord and the gateway: the `ollama` client and httpx as a user runs
them. What the real model shows and a scripted one cannot: an answer, structured output
held to a schema, a seed repeating a sampled answer, real embeddings, and the facts read
from the GGUF and MLX files. The MLX model is only listed here (its CPU decode is slow)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import httpx
import ollama
import pytest

from tests.integration.stack import GGUF, MLX_DIR, Stack, base_config, running_stack

pytestmark = pytest.mark.slow

MODEL = "smollm2-135m"
QUESTION = [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}]
GREEDY: dict[str, Any] = {"temperature": 0, "num_predict": 12}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if not GGUF.exists() or not (MLX_DIR / "config.json").exists():
        pytest.fail("the default models are missing: run ./scripts/fetch-model")
    models = [
        {"id": MODEL, "path": GGUF.name, "backend": "llama_cpp", "embeddings": True},
        {"id": "smollm2-135m-mlx", "path": MLX_DIR.name, "backend": "mlx"},
    ]
    config = base_config(models, GGUF.parent)
    with running_stack(tmp_path_factory.mktemp("ollama-real"), config) as running:
        yield running


@pytest.fixture
def client(stack: Stack) -> Iterator[ollama.Client]:
    with ollama.Client(host=stack.url, timeout=180) as sdk:
        yield sdk


def test_a_cold_chat_answers_and_reports_its_load(client: ollama.Client) -> None:
    assert client.generate(model=MODEL, keep_alive=0).done_reason == "unload"
    answer = client.chat(model=MODEL, messages=QUESTION, options=GREEDY)
    assert "Paris" in (answer.message.content or "")
    assert answer.load_duration is not None and answer.load_duration > 1e8  # a real load
    assert answer.eval_count is not None and 0 < answer.eval_count <= 12
    assert answer.prompt_eval_count is not None and answer.prompt_eval_count > 10
    assert answer.eval_duration is not None and answer.eval_duration > 0
    assert answer.total_duration is not None
    assert answer.total_duration > answer.load_duration + answer.eval_duration


def test_streamed_chat_matches_the_whole_one(client: ollama.Client) -> None:
    whole = client.chat(model=MODEL, messages=QUESTION, options=GREEDY)
    parts = list(client.chat(model=MODEL, messages=QUESTION, options=GREEDY, stream=True))
    assert "".join(p.message.content or "" for p in parts) == whole.message.content
    assert parts[-1].done and parts[-1].eval_count == whole.eval_count


def test_format_schema_holds_the_answer_to_it(client: ollama.Client) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
        "required": ["city", "country"],
    }
    answer = client.chat(
        model=MODEL,
        messages=[{"role": "user", "content": "Name the capital of France as JSON."}],
        format=schema,
        options={"temperature": 0, "num_predict": 60},
    )
    parsed = json.loads(answer.message.content or "")
    assert isinstance(parsed["city"], str) and isinstance(parsed["country"], str)
    json_mode = client.generate(
        model=MODEL, prompt="The capital of France, as JSON.", format="json", options=GREEDY
    )
    assert (json_mode.response or "").lstrip().startswith("{")


def test_a_seed_repeats_a_sampled_answer(client: ollama.Client) -> None:
    options = {"temperature": 1.0, "seed": 42, "num_predict": 8}
    first = client.generate(model=MODEL, prompt="Tell me a story.", options=options)
    second = client.generate(model=MODEL, prompt="Tell me a story.", options=options)
    assert first.response and first.response == second.response


def test_embed_gives_the_models_hidden_size(client: ollama.Client) -> None:
    (vector,) = client.embed(model=MODEL, input="Paris").embeddings
    assert len(vector) == 576  # SmolLM2-135M's embedding_length
    assert math.sqrt(sum(x * x for x in vector)) == pytest.approx(1.0, abs=1e-3)


def test_show_and_list_read_the_files(client: ollama.Client) -> None:
    shown = client.show(MODEL)
    assert shown.details is not None
    assert (shown.details.family, shown.details.format) == ("llama", "gguf")
    assert shown.details.quantization_level == "Q4_1"
    assert shown.details.parameter_size == "134.52M"
    assert shown.modelinfo is not None
    assert shown.modelinfo["llama.context_length"] == 8192
    assert shown.modelinfo["general.parameter_count"] == 134515008
    assert "<|im_start|>" in (shown.template or "")
    listed = {m.model: m for m in client.list().models}
    assert listed[f"{MODEL}:latest"].size == GGUF.stat().st_size
    mlx = listed["smollm2-135m-mlx:latest"].details
    assert mlx is not None
    assert (mlx.format, mlx.family, mlx.quantization_level) == ("mlx", "llama", "4bit")
    assert mlx.parameter_size == "134.52M"  # the same weights, counted from safetensors


def test_keep_alive_zero_unloads_the_model(client: ollama.Client) -> None:
    client.chat(model=MODEL, messages=QUESTION, options={"num_predict": 2}, keep_alive=0)
    assert f"{MODEL}:latest" not in {m.model for m in client.ps().models}


def test_lmstudio_models_and_stats_from_the_real_model(stack: Stack) -> None:
    with httpx.Client(base_url=stack.url, timeout=180, trust_env=False) as http:
        models = {m["id"]: m for m in http.get("/api/v0/models").json()["data"]}
        body = {"model": MODEL, "messages": QUESTION, "temperature": 0, "max_tokens": 12}
        answer = http.post("/api/v0/chat/completions", json=body).json()
    gguf, mlx = models[MODEL], models["smollm2-135m-mlx"]
    assert (gguf["arch"], gguf["quantization"], gguf["compatibility_type"]) == (
        "llama",
        "Q4_1",
        "gguf",
    )
    assert (mlx["arch"], mlx["quantization"], mlx["compatibility_type"]) == ("llama", "4bit", "mlx")
    assert gguf["publisher"] == "HuggingFaceTB" and mlx["state"] == "not-loaded"
    assert "Paris" in answer["choices"][0]["message"]["content"]
    assert answer["stats"]["tokens_per_second"] > 1
    assert answer["stats"]["time_to_first_token"] > 0
    assert answer["model_info"] == {
        "arch": "llama",
        "quant": "Q4_1",
        "format": "gguf",
        "context_length": 4096,
    }
    assert answer["runtime"]["name"] == "llama.cpp"
