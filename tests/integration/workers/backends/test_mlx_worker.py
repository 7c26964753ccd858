"""The worker over the mlx backend: wired through the registry, same API shape.

MLX runs on the CPU here at a fraction of a second per token, prompt included, so this
checks the wiring with very few tokens; tests/test_mlx_backend.py covers the backend.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.integration.workers.conftest import SMOLLM2, RunningWorker, mlx_model_dir, ready_worker
from workers.contract.settings import WorkerSettings

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not SMOLLM2.is_file(), reason="the SmolLM2 GGUF is not downloaded"),
]

SHORT: list[Any] = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]


@pytest.fixture(scope="module")
def mlx_worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningWorker]:
    pytest.importorskip("mlx_lm")
    model_dir = mlx_model_dir(tmp_path_factory)
    settings = WorkerSettings(
        model_id="smollm2-mlx", backend="mlx", path=model_dir, port=0, context_length=512
    )
    with ready_worker(settings) as worker:
        yield worker


def test_streams_a_short_answer_with_usage(mlx_worker: RunningWorker) -> None:
    chunks = list(
        mlx_worker.client(timeout=120).chat.completions.create(
            model="smollm2-mlx",
            messages=SHORT,
            max_tokens=2,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-2].choices[0].finish_reason in ("length", "stop")
    usage = chunks[-1].usage
    assert usage is not None and 1 <= usage.completion_tokens <= 2
    assert mlx_worker.health()["backend"] == "mlx"


def test_json_schema_is_refused_not_ignored(mlx_worker: RunningWorker) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        mlx_worker.client().chat.completions.create(
            model="smollm2-mlx", messages=SHORT, response_format={"type": "json_object"}
        )
    assert "cannot constrain" in str(refused.value)
