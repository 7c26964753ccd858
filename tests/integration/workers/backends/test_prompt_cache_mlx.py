"""The prompt cache on the mlx backend with the real SmolLM2 model (converted to MLX):
cached prefixes inserted into the continuous batch, identical greedy answers hit or
miss, conversations interleaved, and the disk tier across a restart.

MLX prefills about 7 tokens a second on this CPU, so prompts stay near 30 tokens."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from openai import OpenAI

from tests.integration.workers.conftest import (
    SMOLLM2,
    RunningWorker,
    mlx_model_dir,
    ready_worker,
    stop,
)
from workers.contract.settings import WorkerSettings

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not SMOLLM2.is_file(), reason="the SmolLM2 GGUF is not downloaded"),
]


def conversation(system: str, question: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": system}, {"role": "user", "content": question}]


AGENT = conversation("You are a careful agent. Answer in one short line.", "Capital of Italy?")
OTHER = conversation("You are a poet who writes about the sea.", "One word for blue?")


def ask(client: OpenAI, messages: list[Any], stream: bool = False) -> tuple[str, int, int]:
    """(answer, prompt tokens, cached tokens) of one greedy, very short request."""
    options: dict[str, Any] = {"model": "m", "messages": messages, "temperature": 0}
    if stream:
        chunks = list(
            client.chat.completions.create(
                **options, max_tokens=3, stream=True, stream_options={"include_usage": True}
            )
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        usage = chunks[-1].usage
    else:
        reply = client.chat.completions.create(**options, max_tokens=3)
        text, usage = reply.choices[0].message.content or "", reply.usage
    assert usage is not None and usage.prompt_tokens_details is not None
    return text, usage.prompt_tokens, usage.prompt_tokens_details.cached_tokens or 0


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> WorkerSettings:
    pytest.importorskip("mlx_lm")
    model_dir = mlx_model_dir(tmp_path_factory)
    cache_dir = tmp_path_factory.mktemp("mlx-prompt-cache")
    return WorkerSettings(
        model_id="m",
        backend="mlx",
        path=model_dir,
        port=0,
        context_length=512,
        max_concurrent=2,
        prompt_cache_dir=cache_dir,
    )


@pytest.fixture(scope="module")
def worker(settings: WorkerSettings) -> Iterator[RunningWorker]:
    with ready_worker(settings) as running:
        yield running


def test_greedy_answers_are_identical_with_and_without_a_hit(worker: RunningWorker) -> None:
    client = worker.client(timeout=120)
    cold, prompt_tokens, cached_cold = ask(client, AGENT)
    warm, _, cached_warm = ask(client, AGENT)
    streamed, _, cached_streamed = ask(client, AGENT, stream=True)
    assert cached_cold == 0
    assert cached_warm == prompt_tokens - 1  # the batch always prefills the last token
    assert cached_streamed == prompt_tokens - 1
    assert warm == cold and streamed == cold


def test_a_cached_prefix_joins_the_batch_beside_an_uncached_prompt(worker: RunningWorker) -> None:
    client = worker.client(timeout=120)
    alone, prompt_tokens, _ = ask(client, AGENT)
    with ThreadPoolExecutor(2) as pool:
        cached = pool.submit(ask, client, AGENT)
        fresh = pool.submit(ask, client, OTHER)
        (together, _, reused), (other, _, _) = cached.result(), fresh.result()
    assert reused == prompt_tokens - 1
    assert together == alone
    assert other  # the uncached prompt answered in the same batch


def test_an_interleaved_conversation_leaves_the_first_warm(worker: RunningWorker) -> None:
    client = worker.client(timeout=120)
    answer, prompt_tokens, _ = ask(client, AGENT)
    ask(client, OTHER)
    follow_up = [
        *AGENT,
        {"role": "assistant", "content": answer},
        {"role": "user", "content": "Why?"},
    ]
    _, _, cached = ask(client, follow_up)
    assert cached >= prompt_tokens - 1
    stats = worker.health()["prompt_cache"]
    assert stats["hits"] >= 2 and stats["entries"] >= 2 and stats["ram_bytes"] > 0


def test_the_disk_tier_brings_a_restarted_worker_back_warm(
    worker: RunningWorker, settings: WorkerSettings
) -> None:
    ask(worker.client(timeout=120), AGENT)  # whatever ran before, this is in the cache
    stop(worker)  # writes its RAM tier to disk; later tests in this module would need a new one
    assert settings.prompt_cache_dir is not None
    assert list(Path(settings.prompt_cache_dir).glob("*.safetensors"))
    with ready_worker(settings) as restarted:
        _, prompt_tokens, cached = ask(restarted.client(timeout=120), AGENT)
    assert cached == prompt_tokens - 1
