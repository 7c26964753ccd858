"""The `mlx` backend: an MLX model directory served through mlx-lm.

Concurrent requests share the model through mlx-lm's BatchGenerator (continuous
batching): one scheduler thread inserts prompts, steps the batch and hands each
request its tokens through a queue, so aggregate tokens/s grows with concurrency.
Every MLX call runs under one lock, so an embedding never interleaves with a step.

Prompt cache: a request whose prompt shares a prefix with a stored KV cache is inserted
into the batch with a copy of that cache, so only the rest of its prompt is prefilled;
every request that ends (or leaves) gives its cache back to the store for the next turn.
"""

from __future__ import annotations

import copy
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlx.core as mx
import numpy as np

from workers.backends.base import Backend, BackendError, Sampling, Token
from workers.backends.prompt_cache import (
    MIN_REUSE,
    CacheLimits,
    PromptCache,
    StateCodec,
    build_cache,
)
from workers.contract.health import PromptCacheStats

Sampler = Callable[[mx.array], mx.array]

_IDLE_WAIT_S = 0.5  # how often an idle scheduler wakes to notice close()
_QUEUE_POLL_S = 1.0  # how often a waiting request checks the scheduler is alive


class MlxBackend(Backend):
    name = "mlx"
    supports_logprobs = True

    def __init__(
        self,
        model_path: Path,
        context_length: int = 2048,
        max_batch: int = 8,
        cache_limits: CacheLimits | None = None,
    ) -> None:
        self._path = Path(model_path)
        self._cache = build_cache(cache_limits or CacheLimits(), _STATE_CODEC)
        self._context_length = context_length
        self._max_batch = max_batch
        self._model: Any = None
        self._tokenizer: Any = None
        self._compute = threading.Lock()
        # transformers resets truncation state on every encode, which races across
        # threads ("Already borrowed", huggingface/tokenizers#537).
        self._tokenizing = threading.Lock()
        self._scheduler: _BatchScheduler | None = None

    def load(self) -> None:
        if not (self._path / "config.json").is_file():
            raise BackendError(f"{self._path} is not an MLX model directory (no config.json)")
        try:
            from mlx_lm import load

            loaded = load(str(self._path))
        except Exception as e:
            raise BackendError(f"mlx-lm cannot load {self._path.name}: {_one_line(e)}") from e
        self._model, self._tokenizer = loaded[0], loaded[1]
        stop_ids = sorted(self._tokenizer.eos_token_ids)
        self._scheduler = _BatchScheduler(
            self._model, stop_ids, self._compute, self._max_batch, self._cache
        )

    def close(self) -> None:
        """Stop the scheduler thread, keep the cache on disk, release the model."""
        if self._scheduler is not None:
            self._scheduler.close()
        self._cache.flush()
        self._model = self._tokenizer = self._scheduler = None

    def warm(self, prompt: str) -> None:
        """Prefill `prompt` into a KV cache of its own and store it."""
        from mlx_lm.models.cache import make_prompt_cache

        tokens = self._encode(prompt)
        with self._compute:
            kv = make_prompt_cache(self._model)
            for start in range(0, len(tokens), _WARM_CHUNK):
                self._model(mx.array([tokens[start : start + _WARM_CHUNK]]), cache=kv)
                mx.eval([c.state for c in kv])
        self._cache.store(tokens, kv)

    def prompt_cache_stats(self) -> PromptCacheStats:
        return self._cache.stats()

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
        self,
        prompt: str,
        sampling: Sampling,
        should_stop: Callable[[], bool],
        on_cached: Callable[[int], None] | None = None,
    ) -> Iterator[Token]:
        tokens = self._encode(prompt)
        request = _Request(
            tokens=tokens,
            max_tokens=self._room_for(len(tokens), sampling.max_tokens),
            sampler=make_sampler(sampling),
            want_logprobs=sampling.top_logprobs is not None,
            should_stop=should_stop,
            on_cached=on_cached,
        )
        scheduler = self._running_scheduler()
        scheduler.submit(request)
        try:
            yield from self._tokens_of(request, scheduler, sampling)
        finally:
            request.cancelled.set()

    def _tokens_of(
        self,
        request: _Request,
        scheduler: _BatchScheduler,
        sampling: Sampling,
    ) -> Iterator[Token]:
        detokenizer = self._loaded_tokenizer().detokenizer
        eos_ids = self._loaded_tokenizer().eos_token_ids
        while not request.should_stop():
            step = scheduler.next_step(request)
            if step is None or step.token_id in eos_ids:
                return
            detokenizer.add_token(step.token_id)
            if step.finished:
                detokenizer.finalize()
            yield self._token(detokenizer.last_segment, step, sampling)
            if step.finished:
                return

    def _token(self, text: str, step: _Step, sampling: Sampling) -> Token:
        if step.logprobs is None or sampling.top_logprobs is None:
            return Token(text=text, token_id=step.token_id)
        row = step.logprobs
        best = np.argsort(-row)[: sampling.top_logprobs]
        top = {self._token_text(int(i)): float(row[i]) for i in best}
        return Token(text, step.token_id, float(row[step.token_id]), top)

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
        # The decoder's final normed hidden states, before lm_head, mean-pooled.
        hidden = inner(mx.array([tokens]))[0].astype(mx.float32)
        pooled = mx.mean(hidden, axis=0)
        vector = pooled / mx.maximum(mx.linalg.norm(pooled), 1e-12)
        return [float(x) for x in np.asarray(vector)]

    def memory_bytes(self) -> int | None:
        if hasattr(mx, "get_active_memory"):
            return int(mx.get_active_memory())
        return int(mx.metal.get_active_memory())

    def _token_text(self, token_id: int) -> str:
        with self._tokenizing:
            return str(self._loaded_tokenizer().decode([token_id]))

    def _encode(self, text: str) -> list[int]:
        tokenizer = self._loaded_tokenizer()
        # Add BOS only when the rendered prompt does not already start with it.
        bos = tokenizer.bos_token
        add_special = bos is None or not text.startswith(bos)
        with self._tokenizing:
            return list(tokenizer.encode(text, add_special_tokens=add_special))

    def _room_for(self, prompt_tokens: int, max_tokens: int) -> int:
        if prompt_tokens == 0:
            raise BackendError("the prompt is empty")
        room = self._context_length - prompt_tokens
        if room <= 0:
            raise BackendError(
                f"the prompt is {prompt_tokens} tokens; the context holds {self._context_length}"
            )
        return max(1, min(max_tokens, room))

    def _loaded_tokenizer(self) -> Any:
        if self._tokenizer is None:
            raise BackendError("the model is not loaded")
        return self._tokenizer

    def _running_scheduler(self) -> _BatchScheduler:
        if self._scheduler is None:
            raise BackendError("the model is not loaded")
        return self._scheduler


@dataclass
class _Request:
    tokens: list[int]
    max_tokens: int
    sampler: Sampler
    want_logprobs: bool
    should_stop: Callable[[], bool]
    on_cached: Callable[[int], None] | None = None
    steps: queue.SimpleQueue[_Step | BackendError | None] = field(default_factory=queue.SimpleQueue)
    cancelled: threading.Event = field(default_factory=threading.Event)

    def wants_out(self) -> bool:
        try:
            return self.cancelled.is_set() or self.should_stop()
        except Exception:
            return True


@dataclass(frozen=True)
class _Step:
    token_id: int
    finished: bool
    logprobs: np.ndarray | None = None


class _BatchScheduler:
    """One thread owning an mlx-lm BatchGenerator; requests come in through submit()."""

    def __init__(
        self,
        model: Any,
        stop_ids: list[int],
        compute: threading.Lock,
        max_batch: int,
        cache: PromptCache[list[Any]],
    ) -> None:
        self._model = model
        self._cache = cache
        self._stop_ids = stop_ids
        self._compute = compute
        self._max_batch = max_batch
        self._inbox: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._active: dict[int, _Request] = {}
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mlx-batch", daemon=True)
        self._thread.start()

    def submit(self, request: _Request) -> None:
        if not self._thread.is_alive():
            raise BackendError("the MLX scheduler has stopped")
        self._inbox.put(request)

    def next_step(self, request: _Request) -> _Step | None:
        """The request's next token, or None once the scheduler dropped it."""
        while True:
            try:
                item = request.steps.get(timeout=_QUEUE_POLL_S)
            except queue.Empty:
                if not self._thread.is_alive():
                    raise BackendError("the MLX scheduler has stopped") from None
                continue
            if isinstance(item, BackendError):
                raise item
            return item

    def close(self) -> None:
        self._closed.set()
        self._inbox.put(None)
        self._thread.join(timeout=30)

    def _run(self) -> None:
        generator = self._new_generator()
        while not self._closed.is_set():
            try:
                self._admit(generator, self._take_new(block=not self._active))
                self._drop_leavers(generator)
                if self._active:
                    self._step(generator)
            except Exception as e:
                self._fail_all(BackendError(f"MLX generation failed: {_one_line(e)}"))
                generator = self._new_generator()
        self._fail_all(BackendError("the model was unloaded"))

    def _new_generator(self) -> Any:
        from mlx_lm.generate import BatchGenerator

        return BatchGenerator(
            self._model,
            stop_tokens=[[token_id] for token_id in self._stop_ids],
            completion_batch_size=self._max_batch,
            prefill_batch_size=self._max_batch,
        )

    def _take_new(self, block: bool) -> list[_Request]:
        taken: list[_Request] = []
        try:
            item = self._inbox.get(timeout=_IDLE_WAIT_S) if block else self._inbox.get_nowait()
            while True:
                if item is not None:
                    taken.append(item)
                item = self._inbox.get_nowait()
        except queue.Empty:
            return taken

    def _admit(self, generator: Any, requests: list[_Request]) -> None:
        requests = [r for r in requests if not r.wants_out()]
        if not requests:
            return
        starts = [self._cached_start(r) for r in requests]
        with self._compute:
            uids = generator.insert(
                [r.tokens[len(done) :] for r, (_, done) in zip(requests, starts, strict=True)],
                max_tokens=[r.max_tokens for r in requests],
                caches=[kv for kv, _ in starts],
                all_tokens=[done for _, done in starts],
                samplers=[r.sampler for r in requests],
            )
        self._active.update(zip(uids, requests, strict=True))

    def _cached_start(self, request: _Request) -> tuple[list[Any] | None, list[int]]:
        """A copy of the stored KV cache for the longest prefix of the request's prompt,
        cut to what the prompt shares (and to one token short of it: the batch must
        prefill at least one), with the tokens it holds; (None, []) on a miss."""
        hit = self._cache.lookup(request.tokens)
        reuse = min(hit.reuse, len(request.tokens) - 1) if hit is not None else 0
        if hit is None or reuse < MIN_REUSE:
            reuse, kv = 0, None
        else:
            from mlx_lm.models.cache import trim_prompt_cache

            with self._compute:
                kv = copy.deepcopy(hit.entry.state)
                trim_prompt_cache(kv, len(hit.entry.tokens) - reuse)
        self._cache.count(reuse)
        if request.on_cached is not None:
            request.on_cached(reuse)
        return kv, request.tokens[:reuse]

    def _drop_leavers(self, generator: Any) -> None:
        leavers = [uid for uid, request in self._active.items() if request.wants_out()]
        if not leavers:
            return
        with self._compute:
            kept = generator.remove(leavers, return_prompt_caches=True)
        for uid in leavers:
            self._active.pop(uid).steps.put(None)
        for kv, tokens in kept.values():
            self._keep(tokens, kv)

    def _step(self, generator: Any) -> None:
        with self._compute:
            # One decode step plus at most one prefill chunk, so leavers and newcomers
            # are handled between chunks of a long prompt.
            _, responses = generator.next()
            steps = [(r.uid, self._step_of(r)) for r in responses if r.uid in self._active]
        for uid, step in steps:
            request = self._active[uid] if not step.finished else self._active.pop(uid)
            request.steps.put(step)
        for response in responses:
            if response.finish_reason is not None and response.prompt_cache is not None:
                self._keep(response.all_tokens, response.prompt_cache)

    def _keep(self, tokens: list[int] | None, kv: list[Any] | None) -> None:
        """A request's KV cache (prompt and answer) into the store, for its next turn."""
        if not tokens or kv is None or len(tokens) < MIN_REUSE:
            return
        with self._compute:
            mx.eval([c.state for c in kv])  # extracted caches are lazy
        self._cache.store(list(tokens), kv)

    def _step_of(self, response: Any) -> _Step:
        finished = response.finish_reason is not None
        request = self._active[response.uid]
        if not request.want_logprobs:
            return _Step(response.token, finished)
        row = np.asarray(response.logprobs.astype(mx.float32)).reshape(-1)
        return _Step(response.token, finished, row)

    def _fail_all(self, error: BackendError) -> None:
        for request in self._active.values():
            request.steps.put(error)
        self._active.clear()
        for request in self._take_new(block=False):
            request.steps.put(error)


def _save_kv(path: Path, kv: list[Any]) -> None:
    from mlx_lm.models.cache import save_prompt_cache

    save_prompt_cache(str(path), kv)


def _load_kv(path: Path) -> list[Any]:
    from mlx_lm.models.cache import load_prompt_cache

    return list(load_prompt_cache(str(path)))


def _kv_bytes(kv: list[Any]) -> int:
    return sum(int(c.nbytes) for c in kv)


_STATE_CODEC: StateCodec[list[Any]] = StateCodec(
    nbytes=_kv_bytes, save=_save_kv, load=_load_kv, suffix=".safetensors"
)
_WARM_CHUNK = 512  # prompt tokens per forward pass when warming


def make_sampler(sampling: Sampling) -> Sampler:
    """mlx-lm's sampler, or one with its own random key when the request has a seed."""
    from mlx_lm.sample_utils import apply_top_p
    from mlx_lm.sample_utils import make_sampler as mlx_sampler

    if sampling.temperature <= 0 or sampling.seed is None:
        # Greedy requests share mlx-lm's one greedy sampler, so the batch samples in one call.
        return mlx_sampler(max(sampling.temperature, 0.0), sampling.top_p)
    key = mx.random.key(sampling.seed)
    scale = 1.0 / sampling.temperature

    # A private key keeps a seeded request reproducible whatever else shares the batch.
    def sample(logprobs: mx.array) -> mx.array:
        nonlocal key
        key, subkey = mx.random.split(key)
        if 0 < sampling.top_p < 1:
            logprobs = apply_top_p(logprobs, sampling.top_p)
        return mx.random.categorical(logprobs * scale, key=subkey)

    return sample


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text[:300]
