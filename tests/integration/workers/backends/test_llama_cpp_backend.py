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
