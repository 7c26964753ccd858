"""`lmx run` with the real SmolLM2 model on llama.cpp, through supervisord and the gateway."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.integration.cli.runner import lmx
from tests.integration.stack import GGUF, Stack, base_config, running_stack

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if not GGUF.exists():
        pytest.fail("the default model is missing: run ./scripts/fetch-model")
    models = [{"id": "smollm2-135m", "path": GGUF.name, "backend": "llama_cpp"}]
    config = base_config(models, GGUF.parent, routing={"aliases": {"fast": ["smollm2-135m"]}})
    with running_stack(tmp_path_factory.mktemp("cli-real"), config) as running:
        yield running


def test_run_answers_with_the_real_model(stack: Stack) -> None:
    result = lmx(
        stack,
        "run",
        "fast",
        "What is the capital of France? Answer in one sentence.",
        "--max-tokens",
        "12",
        "--temperature",
        "0",
    )
    assert result.returncode == 0, result.stderr
    assert "Paris" in result.stdout
    assert " tok/s, first token " in result.stderr


def test_ls_shows_the_real_model_loaded_after_the_answer(stack: Stack) -> None:
    lmx(stack, "load", "smollm2-135m")
    rows = {r["id"]: r for r in json.loads(lmx(stack, "ls", "--json").stdout)}
    # models/ also holds the MLX copy, which the model library lists beside the entry.
    row = rows["smollm2-135m"]
    assert row["size_bytes"] == GGUF.stat().st_size and row["context_length"] > 0
    assert (row["id"], row["backend"], row["state"]) == ("smollm2-135m", "llama_cpp", "ready")
    assert row["aliases"] == ["fast"]
