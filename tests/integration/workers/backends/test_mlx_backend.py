"""The mlx backend on the real SmolLM2 model, converted from its GGUF once per session."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from jinja2 import Environment

from workers.backends.base import BackendError, Sampling, Token
from workers.backends.mlx.backend import MlxBackend
from workers.backends.mlx.convert_gguf import convert

REPO = Path(__file__).resolve().parents[4]
SMOLLM2_GGUF = REPO / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
GREEDY = Sampling(max_tokens=12, temperature=0.0)
# MLX's CPU backend here costs ~0.1-0.25 s per token, prompt tokens included: keep prompts
# short where the chat template is not the point.
STORY = "Once upon a time"
FACT = "The largest planet is"


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlxBackend]:
    if not SMOLLM2_GGUF.is_file():
        pytest.skip(f"real model missing: {SMOLLM2_GGUF.relative_to(REPO)}")
    # Same directory as test_gguf_to_mlx uses, so the session converts once.
    model_dir = tmp_path_factory.getbasetemp() / "SmolLM2-135M-Instruct-mlx"
    if not model_dir.is_dir():
        convert(SMOLLM2_GGUF, model_dir)
    backend = MlxBackend(model_dir, context_length=512)
    backend.load()
    yield backend
    backend.close()


def chat_prompt(backend: MlxBackend, question: str) -> str:
    assert backend.chat_template is not None
    template = Environment().from_string(backend.chat_template)
    messages = [{"role": "user", "content": question}]
    return template.render(messages=messages, add_generation_prompt=True, **backend.special_tokens)


def text_of(tokens: list[Token]) -> str:
    return "".join(token.text for token in tokens)


def never() -> bool:
    return False


def test_missing_model_directory_fails_to_load_with_a_reason(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="not an MLX model directory"):
        MlxBackend(tmp_path / "nowhere").load()


def test_broken_model_directory_fails_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "llama"}')
    with pytest.raises(BackendError) as caught:
        MlxBackend(tmp_path).load()
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith(f"mlx-lm cannot load {tmp_path.name}:")


@pytest.mark.slow
def test_greedy_answer_names_paris(backend: MlxBackend) -> None:
    prompt = chat_prompt(backend, "What is the capital of France?")
    tokens = list(backend.generate(prompt, GREEDY, never))
    assert "Paris" in text_of(tokens)
    assert len(tokens) <= GREEDY.max_tokens
    assert all(token.token_id != 2 for token in tokens), "end-of-turn is not output"


@pytest.mark.slow
def test_template_and_special_tokens_come_from_the_model(backend: MlxBackend) -> None:
    assert backend.special_tokens == {"bos_token": "<|im_start|>", "eos_token": "<|im_end|>"}
    prompt = chat_prompt(backend, "Hi")
    assert prompt.endswith("<|im_start|>assistant\n")
    assert backend.count_tokens(prompt) > backend.count_tokens("Hi")


@pytest.mark.slow
def test_generation_stops_at_max_tokens(backend: MlxBackend) -> None:
    tokens = list(backend.generate(STORY, Sampling(max_tokens=3, temperature=0.0), never))
    assert len(tokens) == 3


@pytest.mark.slow
def test_should_stop_ends_generation_within_a_token(backend: MlxBackend) -> None:
    seen: list[Token] = []
    stop = threading.Event()
    for token in backend.generate(STORY, Sampling(max_tokens=50, temperature=0.0), stop.is_set):
        seen.append(token)
        if len(seen) == 2:
            stop.set()
    assert len(seen) == 2


@pytest.mark.slow
def test_seeded_sampling_repeats_and_logprobs_are_reported(backend: MlxBackend) -> None:
    sampling = Sampling(max_tokens=4, temperature=1.0, seed=7, top_logprobs=2)
    first = list(backend.generate(STORY, sampling, never))
    second = list(backend.generate(STORY, sampling, never))
    assert [t.token_id for t in first] == [t.token_id for t in second]
    token = first[0]
    assert token.logprob is not None and token.logprob <= 0
    assert token.top_logprobs is not None and len(token.top_logprobs) == 2
    assert max(token.top_logprobs.values()) >= token.logprob


@pytest.mark.slow
def test_embeddings_are_unit_vectors_closer_for_similar_texts(backend: MlxBackend) -> None:
    cat, kitten, taxes = backend.embed(
        ["The cat sat on the mat.", "A kitten was sitting on a rug.", "Quarterly tax deadlines."]
    )
    assert len(cat) == len(kitten) == len(taxes) == 576
    for vector in (cat, kitten, taxes):
        assert math.isclose(math.hypot(*vector), 1.0, rel_tol=1e-4)

    def similarity(a: list[float], b: list[float]) -> float:
        return sum(x * y for x, y in zip(a, b, strict=True))

    assert similarity(cat, kitten) > similarity(cat, taxes)


@pytest.mark.slow
def test_memory_is_reported_in_bytes(backend: MlxBackend) -> None:
    memory = backend.memory_bytes()
    assert memory is not None and memory > 50_000_000  # the 98 MB of weights


@pytest.fixture(scope="module")
def alone(backend: MlxBackend) -> dict[str, str]:
    """Greedy text of each prompt generated with nothing else running."""
    sampling = Sampling(max_tokens=5, temperature=0.0)
    return {p: text_of(list(backend.generate(p, sampling, never))) for p in (STORY, FACT)}


def generate_concurrently(
    backend: MlxBackend, prompts: list[str], stop_after: dict[int, int] | None = None
) -> list[list[Token]]:
    """Run one greedy generate() per prompt on its own thread; request i leaves after
    stop_after[i] tokens by setting its should_stop flag."""
    results: list[list[Token]] = [[] for _ in prompts]
    limits = stop_after or {}

    def run(index: int) -> None:
        stop = threading.Event()
        sampling = Sampling(max_tokens=5, temperature=0.0)
        for token in backend.generate(prompts[index], sampling, stop.is_set):
            results[index].append(token)
            if len(results[index]) == limits.get(index):
                stop.set()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(prompts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    return results


@pytest.mark.slow
def test_concurrent_greedy_generations_match_running_alone(
    backend: MlxBackend, alone: dict[str, str]
) -> None:
    fact, story = generate_concurrently(backend, [FACT, STORY])
    assert [text_of(fact), text_of(story)] == [alone[FACT], alone[STORY]]


@pytest.mark.slow
def test_stopping_one_request_leaves_the_other_running(
    backend: MlxBackend, alone: dict[str, str]
) -> None:
    leaver, stayer = generate_concurrently(backend, [FACT, STORY], stop_after={0: 1})
    assert len(leaver) == 1
    assert text_of(stayer) == alone[STORY]
