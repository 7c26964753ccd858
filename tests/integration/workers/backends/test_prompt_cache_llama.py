"""The prompt cache on the llama_cpp backend with the real SmolLM2 model, through the
OpenAI SDK: agent turns reuse what the last turn computed, another conversation in
between does not cost the first its cache, greedy answers are the same hit or miss, a
one-token difference reuses nothing past it, RAM stays under its cap, and the disk tier
brings a restarted worker back warm."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openai import OpenAI

from tests.integration.workers.conftest import SMOLLM2, RunningWorker, ready_worker
from workers.contract.settings import WorkerSettings

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not SMOLLM2.is_file(), reason="the SmolLM2 GGUF is not downloaded"),
]

BASE = WorkerSettings(
    model_id="smollm2",
    backend="llama_cpp",
    path=SMOLLM2,
    port=0,
    context_length=2048,
    max_concurrent=1,  # one context: other conversations must survive in the cache
)


def system_prompt(topic: str, rules: int = 40) -> dict[str, str]:
    text = " ".join(f"Rule {i} about {topic}: answer briefly and precisely." for i in range(rules))
    return {"role": "system", "content": text}


def ask(client: OpenAI, messages: list[Any], **options: Any) -> tuple[str, int, int]:
    """(answer, prompt tokens, cached prompt tokens) of one greedy request."""
    reply = client.chat.completions.create(
        model="smollm2", messages=messages, temperature=0, max_tokens=16, **options
    )
    usage = reply.usage
    assert usage is not None and usage.prompt_tokens_details is not None
    cached = usage.prompt_tokens_details.cached_tokens or 0
    return reply.choices[0].message.content or "", usage.prompt_tokens, cached


def ask_streamed(client: OpenAI, messages: list[Any]) -> tuple[str, int]:
    chunks = list(
        client.chat.completions.create(
            model="smollm2",
            messages=messages,
            temperature=0,
            max_tokens=16,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    usage = chunks[-1].usage
    assert usage is not None and usage.prompt_tokens_details is not None
    return text, usage.prompt_tokens_details.cached_tokens or 0


@pytest.fixture(scope="module")
def worker() -> Iterator[RunningWorker]:
    with ready_worker(BASE) as running:
        yield running


@pytest.fixture
def client(worker: RunningWorker) -> OpenAI:
    return worker.client()


def test_the_next_turn_reuses_everything_the_last_turn_computed(client: OpenAI) -> None:
    turn1 = [system_prompt("turns"), {"role": "user", "content": "Name a fruit."}]
    answer, prompt_tokens, cached = ask(client, turn1)
    assert cached < 16
    turn2 = [*turn1, {"role": "assistant", "content": answer}, {"role": "user", "content": "Why?"}]
    _, prompt2, cached2 = ask(client, turn2)
    assert cached2 >= prompt_tokens
    assert cached2 < prompt2


def test_greedy_answers_are_identical_with_and_without_a_hit(client: OpenAI) -> None:
    messages = [system_prompt("identity"), {"role": "user", "content": "What is 2 + 2?"}]
    cold, _, cached_cold = ask(client, messages)
    warm, _, cached_warm = ask(client, messages)
    streamed, cached_streamed = ask_streamed(client, messages)
    # Only the template's opening may be shared with an earlier test's conversation.
    assert cached_cold < 16 and cached_warm > 0 and cached_streamed > 0
    assert warm == cold
    assert streamed == cold


def test_another_conversation_in_between_leaves_the_first_warm(client: OpenAI) -> None:
    agent = [system_prompt("agent A"), {"role": "user", "content": "List two planets."}]
    other = [system_prompt("client B", rules=60), {"role": "user", "content": "Say hello."}]
    answer, agent_tokens, _ = ask(client, agent)
    _, _, other_cached = ask(client, other)
    assert other_cached < 20  # nothing of agent A's prompt is reused for B
    follow_up = [
        *agent,
        {"role": "assistant", "content": answer},
        {"role": "user", "content": "More?"},
    ]
    _, _, cached = ask(client, follow_up)
    assert cached >= agent_tokens


def test_a_prompt_differing_by_one_token_reuses_nothing_past_it(worker: RunningWorker) -> None:
    completions = worker.client().completions
    head = " ".join(f"Item {i} is on the list." for i in range(30))
    shared = head + " The last item is a"
    options: dict[str, Any] = {"model": "smollm2", "max_tokens": 8, "temperature": 0}
    completions.create(prompt=shared + " pear. Next:", **options)
    plum = completions.create(prompt=shared + " plum. Next:", **options).usage
    shared_tokens = completions.create(prompt=shared, **options).usage
    assert plum is not None and plum.prompt_tokens_details is not None
    assert shared_tokens is not None
    assert 0 < (plum.prompt_tokens_details.cached_tokens or 0) <= shared_tokens.prompt_tokens


def test_ram_tier_stays_under_its_cap_least_recently_used() -> None:
    # About 8 MB per conversation here: a 12 MB cap keeps one, not two.
    with ready_worker(dataclasses.replace(BASE, prompt_cache_bytes=12 * 1024**2)) as running:
        client = running.client()
        conversations = [
            [system_prompt(topic), {"role": "user", "content": "Hi."}] for topic in "XYZ"
        ]
        for messages in conversations:
            ask(client, messages)
        stats = running.health()["prompt_cache"]
        assert stats["entries"] == 1
        assert 0 < stats["ram_bytes"] <= 12 * 1024**2
        # The context holds Z; RAM holds Y, saved when Z took the context; X went out.
        _, y_tokens, cached_y = ask(client, conversations[1])
        assert cached_y >= y_tokens - 1
        _, _, cached_x = ask(client, conversations[0])
        assert cached_x < 16


def test_the_disk_tier_brings_a_restarted_worker_back_warm(tmp_path: Path) -> None:
    settings = dataclasses.replace(BASE, prompt_cache_dir=tmp_path / "cache")
    messages = [system_prompt("restarts"), {"role": "user", "content": "Name a river."}]
    with ready_worker(settings) as running:
        before, prompt_tokens, _ = ask(running.client(), messages)
    # The stopped worker wrote its contexts and its RAM tier to disk.
    assert list((tmp_path / "cache").glob("*.kv"))
    with ready_worker(settings) as running:
        assert running.health()["prompt_cache"]["disk_bytes"] > 0
        after, _, cached = ask(running.client(), messages)
    assert cached >= prompt_tokens - 1
    assert after == before


def test_warm_prompts_are_prefilled_at_load() -> None:
    system = system_prompt("warm start")
    with ready_worker(dataclasses.replace(BASE, warm_prompts=(system["content"],))) as running:
        deadline = time.monotonic() + 60
        while running.health()["prompt_cache"]["entries"] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        _, prompt_tokens, cached = ask(
            running.client(), [system, {"role": "user", "content": "Hi"}]
        )
    assert cached >= prompt_tokens - 15  # all but the user's turn and the generation prompt
