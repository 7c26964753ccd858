"""The `mlx` backend: an MLX model directory served through mlx-lm.

MLX work runs under one lock: a single stream of model calls at a time, so a
generation, an embedding and another generation never interleave on the device.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import mlx.core as mx
import numpy as np

from workers.backends.base import Backend, BackendError, Sampling, Token


class MlxBackend(Backend):
    name = "mlx"
    supports_logprobs = True

    def __init__(self, model_path: Path, context_length: int = 2048) -> None:
        self._path = Path(model_path)
        self._context_length = context_length
        self._model: Any = None
        self._tokenizer: Any = None
        self._compute = threading.Lock()

    def load(self) -> None:
        if not (self._path / "config.json").is_file():
            raise BackendError(f"{self._path} is not an MLX model directory (no config.json)")
        try:
            from mlx_lm import load

            loaded = load(str(self._path))
            self._model, self._tokenizer = loaded[0], loaded[1]
        except Exception as e:
            raise BackendError(f"mlx-lm cannot load {self._path.name}: {_one_line(e)}") from e

    @property
    def chat_template(self) -> str | None:
        template = getattr(self._loaded_tokenizer(), "chat_template", None)
        return template if isinstance(template, str) else None

    @property
    def special_tokens(self) -> dict[str, str]:
        tokenizer = self._loaded_tokenizer()
        names = ("bos_token", "eos_token")
        return {n: v for n in names if isinstance(v := getattr(tokenizer, n, None), str)}

    def count_tokens(self, text: str) -> int:
        return len(self._encode(text))

    def generate(
        self, prompt: str, sampling: Sampling, should_stop: Callable[[], bool]
    ) -> Iterator[Token]:
        from mlx_lm import stream_generate

        tokens = self._encode(prompt)
        max_tokens = self._room_for(len(tokens), sampling.max_tokens)
        eos_ids = self._loaded_tokenizer().eos_token_ids
        with self._compute:
            responses = stream_generate(
                self._model,
                self._tokenizer,
                mx.array(tokens),
                max_tokens=max_tokens,
                sampler=make_sampler(sampling),
            )
            for response in responses:
                if response.token in eos_ids or should_stop():
                    return
                yield _token(response.text, response.token, response.logprobs, sampling, self)

    def embed(self, texts: list[str]) -> list[list[float]]:
        inner = getattr(self._model, "model", None)
        if inner is None:
            raise BackendError("this MLX model does not expose its hidden states")
        with self._compute:
            return [self._embed_one(inner, text) for text in texts]

    def _embed_one(self, inner: Any, text: str) -> list[float]:
        tokens = self._encode(text)[: self._context_length]
        if not tokens:
            raise BackendError("cannot embed an empty text")
        hidden = inner(mx.array([tokens]))[0].astype(mx.float32)
        pooled = mx.mean(hidden, axis=0)
        vector = pooled / mx.maximum(mx.linalg.norm(pooled), 1e-12)
        return [float(x) for x in np.asarray(vector)]

    def close(self) -> None:
        """Release the model; a later load() brings it back."""
        with self._compute:
            self._model = self._tokenizer = None

    def memory_bytes(self) -> int | None:
        if hasattr(mx, "get_active_memory"):
            return int(mx.get_active_memory())
        return int(mx.metal.get_active_memory())

    def token_text(self, token_id: int) -> str:
        return str(self._loaded_tokenizer().decode([token_id]))

    def _encode(self, text: str) -> list[int]:
        tokenizer = self._loaded_tokenizer()
        # Add BOS only when the rendered prompt does not already start with it.
        bos = tokenizer.bos_token
        add_special = bos is None or not text.startswith(bos)
        return list(tokenizer.encode(text, add_special_tokens=add_special))

    def _room_for(self, prompt_tokens: int, max_tokens: int) -> int:
        if prompt_tokens == 0:
            raise BackendError("the prompt is empty")
        room = self._context_length - prompt_tokens
        if room <= 0:
            raise BackendError(
                f"the prompt is {prompt_tokens} tokens; the context holds {self._context_length}"
            )
        return min(max_tokens, room)

    def _loaded_tokenizer(self) -> Any:
        if self._tokenizer is None:
            raise BackendError("the model is not loaded")
        return self._tokenizer


def make_sampler(sampling: Sampling) -> Callable[[mx.array], mx.array]:
    """mlx-lm's sampler, or one with its own random key when the request has a seed."""
    from mlx_lm.sample_utils import apply_top_p
    from mlx_lm.sample_utils import make_sampler as mlx_sampler

    if sampling.temperature <= 0 or sampling.seed is None:
        return mlx_sampler(max(sampling.temperature, 0.0), sampling.top_p)
    key = mx.random.key(sampling.seed)
    scale = 1.0 / sampling.temperature

    # A private key keeps a seeded request reproducible whatever else runs beside it.
    def sample(logprobs: mx.array) -> mx.array:
        nonlocal key
        key, subkey = mx.random.split(key)
        if 0 < sampling.top_p < 1:
            logprobs = apply_top_p(logprobs, sampling.top_p)
        return mx.random.categorical(logprobs * scale, key=subkey)

    return sample


def _token(
    text: str, token_id: int, logprobs: mx.array, sampling: Sampling, backend: MlxBackend
) -> Token:
    if sampling.top_logprobs is None:
        return Token(text=text, token_id=token_id)
    row = np.asarray(logprobs.astype(mx.float32)).reshape(-1)
    best = np.argsort(-row)[: sampling.top_logprobs]
    top = {backend.token_text(int(i)): float(row[i]) for i in best}
    return Token(text, token_id, float(row[token_id]), top)


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text[:300]
