"""The llama_cpp backend object itself, on the real SmolLM2 model: what it does per
request, below the worker's HTTP layer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.workers.conftest import SMOLLM2
from workers.backends.base import Sampling
from workers.backends.llama_cpp.backend import LlamaCppBackend

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not SMOLLM2.is_file(), reason="the SmolLM2 GGUF is not downloaded"),
]

PROMPT = "<|im_start|>user\nName a colour.<|im_end|>\n<|im_start|>assistant\n"


@pytest.fixture(scope="module")
def backend() -> Iterator[LlamaCppBackend]:
    llama = LlamaCppBackend(SMOLLM2, context_length=512)
    llama.load()
    yield llama
    llama.close()


def _answer(backend: LlamaCppBackend, prompt: str) -> str:
    sampling = Sampling(max_tokens=4, temperature=0)
    return "".join(token.text for token in backend.generate(prompt, sampling, lambda: False))


def test_a_prompt_counted_before_its_generation_is_tokenized_once(
    backend: LlamaCppBackend,
) -> None:
    prompt = PROMPT.replace("colour", "colour, once")
    before = backend._prompt_tokens.cache_info()
    counted = backend.count_tokens(prompt)
    _answer(backend, prompt)
    after = backend._prompt_tokens.cache_info()
    assert (after.misses - before.misses, after.hits - before.hits) == (1, 1)
    assert counted == len(backend._tokenize(backend._llama, prompt))


def test_a_long_prefill_chooses_its_threads_again_for_each_batch() -> None:
    llama = LlamaCppBackend(SMOLLM2, context_length=2048)
    llama.load()
    try:
        chosen: list[int] = []
        measure = llama._cores.threads

        def spy(active_contexts: int) -> int:
            chosen.append(active_contexts)
            return measure(active_contexts)

        llama._cores.threads = spy  # type: ignore[method-assign]
        prompt = PROMPT.replace("Name a colour.", "Colours: " + "red, green, blue, " * 120)
        batches = -(-(llama.count_tokens(prompt) - 1) // llama._llama.n_batch)
        assert batches >= 2, "the prompt must span more than one batch"
        next(llama.generate(prompt, Sampling(max_tokens=1, temperature=0), lambda: False))
        # Once for the decode that follows, once before each batch of the prompt.
        assert len(chosen) >= 1 + batches
    finally:
        llama.close()
