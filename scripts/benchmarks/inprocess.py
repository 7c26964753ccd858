"""The libraries themselves, no server: `python -m scripts.benchmarks.inprocess
llama_cpp|mlx MAX_TOKENS RUNS` prints the samples as JSON. A process of its own, so the
benchmark's process carries neither library nor model.

`python -m scripts.benchmarks.inprocess llama_cpp serve` keeps the model loaded and
answers each MAX_TOKENS line on stdin with one sample's JSON line, so the library can
take turns with servers in the same run (InProcessLlama)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from scripts.benchmarks.streams import MESSAGES, Clock, Sample, messages, samples_json
from tests.integration.stack import GGUF, MLX_DIR

REPO = Path(__file__).resolve().parents[2]


def llama_samples(max_tokens: int, runs: int) -> list[Sample]:
    llm = _llama()
    return [_llama_once(llm, max_tokens) for _ in range(runs + 1)][1:]


def _llama() -> Any:
    import llama_cpp
    import psutil

    # The worker's own AMX workaround, so the library runs as it does in our worker.
    from workers.backends.llama_cpp.backend import _avoid_amx_if_present

    _avoid_amx_if_present()
    threads = psutil.cpu_count(logical=False) or 1
    return llama_cpp.Llama(model_path=str(GGUF), n_ctx=2048, n_threads=threads, verbose=False)


def serve_llama() -> int:
    llm = _llama()
    print("ready", flush=True)
    for line in sys.stdin:
        max_tokens, _, salt = line.strip().partition(" ")
        sample = _llama_once(llm, int(max_tokens), salt or None)
        print(json.dumps(asdict(sample)), flush=True)
    return 0


class InProcessLlama:
    """The library in its own process, kept loaded, one sample per call."""

    def __init__(self) -> None:
        command = [sys.executable, "-m", "scripts.benchmarks.inprocess", "llama_cpp", "serve"]
        self.process = subprocess.Popen(
            command, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != "ready":
            self.close()
            raise RuntimeError("the in-process library did not start")

    def sample(self, max_tokens: int, salt: str | None = None) -> Sample:
        """One answer; a salt makes its prompt one the library has not seen."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"{max_tokens} {salt or ''}\n")
        self.process.stdin.flush()
        return Sample(**json.loads(self.process.stdout.readline()))

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)

    def __enter__(self) -> InProcessLlama:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def _llama_once(llm: Any, max_tokens: int, salt: str | None = None) -> Sample:
    clock = Clock()
    stream = llm.create_chat_completion(
        messages=messages(salt), temperature=0, max_tokens=max_tokens, stream=True
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
    if sys.argv[1:] == ["llama_cpp", "serve"]:
        return serve_llama()
    backend, max_tokens, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    measure = llama_samples if backend == "llama_cpp" else mlx_samples
    print(samples_json(measure(max_tokens, runs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
