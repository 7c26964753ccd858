"""The libraries themselves, no server: `python -m scripts.benchmarks.inprocess
llama_cpp|mlx MAX_TOKENS RUNS` prints the samples as JSON. A process of its own, so the
benchmark's process carries neither library nor model."""

from __future__ import annotations

import sys
from typing import Any

from scripts.benchmarks.streams import MESSAGES, Clock, Sample, samples_json
from tests.integration.stack import GGUF, MLX_DIR


def llama_samples(max_tokens: int, runs: int) -> list[Sample]:
    import llama_cpp
    import psutil

    # The worker's own AMX workaround, so the library runs as it does in our worker.
    from workers.backends.llama_cpp.backend import _avoid_amx_if_present

    _avoid_amx_if_present()
    threads = psutil.cpu_count(logical=False) or 1
    llm = llama_cpp.Llama(model_path=str(GGUF), n_ctx=2048, n_threads=threads, verbose=False)
    return [_llama_once(llm, max_tokens) for _ in range(runs + 1)][1:]


def _llama_once(llm: Any, max_tokens: int) -> Sample:
    clock = Clock()
    stream = llm.create_chat_completion(
        messages=MESSAGES, temperature=0, max_tokens=max_tokens, stream=True
    )
    for chunk in stream:
        if chunk["choices"][0]["delta"].get("content"):
            clock.piece()
    return clock.sample()


def mlx_samples(max_tokens: int, runs: int) -> list[Sample]:
    import mlx_lm
    from mlx_lm.sample_utils import make_sampler

    model, tokenizer = mlx_lm.load(str(MLX_DIR))[:2]
    prompt = tokenizer.apply_chat_template(MESSAGES, add_generation_prompt=True)
    sampler = make_sampler(temp=0.0)
    samples = []
    for _ in range(runs + 1):
        clock = Clock()
        for _response in mlx_lm.stream_generate(
            model, tokenizer, prompt, max_tokens=max_tokens, sampler=sampler
        ):
            clock.piece()
        samples.append(clock.sample())
    return samples[1:]


def main() -> int:
    backend, max_tokens, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    measure = llama_samples if backend == "llama_cpp" else mlx_samples
    print(samples_json(measure(max_tokens, runs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
