"""GGUF models through llama-cpp-python.

Each request gets a whole `Llama` context from a small pool. Every context maps the same
file, so the weights sit in memory once; what a context adds is its KV cache. Each
context's thread count follows the free cores between tokens (workers.backends.llama_cpp.cores).

Prompt cache: a request gets the free context that holds the longest prefix of its
prompt, and llama.cpp prefills only the rest. A context about to be overwritten first
saves its state (its sequence's KV) into the prompt cache, and a request whose prefix
the cache holds better than any context has that state restored into its context.
"""

from __future__ import annotations

import codecs
import ctypes
import functools
import io
import json
import random
import threading
from collections.abc import Callable, Iterator
from contextlib import redirect_stderr
from pathlib import Path
from typing import Any, ClassVar

import llama_cpp
import numpy as np
from llama_cpp._logger import set_verbose as set_llama_verbose

from workers.backends.base import Backend, BackendError, Sampling, Token
from workers.backends.llama_cpp.context_pool import ContextPool
from workers.backends.llama_cpp.cores import CoreBudget
from workers.backends.prompt_cache import (
    MIN_REUSE,
    CacheLimits,
    StateCodec,
    build_cache,
    common_prefix,
)
from workers.contract.health import PromptCacheStats


class LlamaCppBackend(Backend):
    name: ClassVar[str] = "llama_cpp"
    supports_json_schema: ClassVar[bool] = True
    supports_logprobs: ClassVar[bool] = True

    def __init__(
        self,
        model_path: Path,
        context_length: int,
        n_contexts: int = 1,
        cache_limits: CacheLimits | None = None,
    ) -> None:
        """n_contexts: how many requests can generate at once (each context has its own
        KV cache of context_length tokens)."""
        self._path = model_path
        self._context_length = context_length
        self._pool = ContextPool(self._new_context, n_contexts)
        self._cache = build_cache(cache_limits or CacheLimits(), _STATE_CODEC)
        self._cores = CoreBudget()
        self._tokenizer: llama_cpp.Llama | None = None
        self._embedder: llama_cpp.Llama | None = None
        self._embed_lock = threading.Lock()
        # A request's prompt is tokenized to count it (before admission), then again to
        # generate: the second time comes from here. Tuples, so no caller can alter one.
        self._prompt_tokens = functools.lru_cache(maxsize=32)(self._tokenize_text)

    def load(self) -> None:
        if not self._path.is_file():
            raise BackendError(f"model file not found: {self._path}")
        self._tokenizer = self._pool.warm()
        self._cores.start()

    @property
    def chat_template(self) -> str | None:
        return self._llama.metadata.get("tokenizer.chat_template")

    @property
    def special_tokens(self) -> dict[str, str]:
        llama = self._llama
        return {
            "bos_token": _token_text(llama, llama.token_bos()),
            "eos_token": _token_text(llama, llama.token_eos()),
        }

    def count_tokens(self, text: str) -> int:
        return len(self._prompt_tokens(text))

    def generate(
        self,
        prompt: str,
        sampling: Sampling,
        should_stop: Callable[[], bool],
        on_cached: Callable[[int], None] | None = None,
    ) -> Iterator[Token]:
        tokens = list(self._prompt_tokens(prompt))
        with self._pool.lease(lambda llama: _held(llama, tokens)) as llama:
            if should_stop():  # the client may have left while no context was free
                return
            reused = self._reuse(llama, tokens)
            self._cache.count(reused)
            if on_cached is not None:
                on_cached(reused)
            yield from self._generate(llama, tokens, sampling, should_stop)

    def warm(self, prompt: str) -> None:
        """Prefill `prompt` (an agent's system prompt) into a context and the cache."""
        tokens = self._tokenize(self._llama, prompt)
        with self._pool.lease(lambda llama: _held(llama, tokens)) as llama:
            self._reuse(llama, tokens)
            self._prefill(llama, tokens)
            self._save(llama)

    def prompt_cache_stats(self) -> PromptCacheStats:
        return self._cache.stats()

    def close(self) -> None:
        """Every context's state and the RAM tier to disk, so a reload starts warm."""
        self._cores.stop()
        if self._cache.disk is None:
            return
        for llama in self._pool.contexts():
            self._save(llama)
        self._cache.flush()

    def embed(self, texts: list[str]) -> list[list[float]]:
        with self._embed_lock:
            embedder = self._embedder or self._new_embedder()
            self._embedder = embedder
            vectors = embedder.embed(texts, normalize=True)
        return [list(map(float, vector)) for vector in vectors]

    def _reuse(self, llama: llama_cpp.Llama, tokens: list[int]) -> int:
        """Make `llama` hold the longest cached prefix of `tokens`; how many it holds."""
        held = self._held_count(llama, tokens)
        hit = self._cache.lookup(tokens, already=held)
        if llama.n_tokens - held >= MIN_REUSE:
            # Another conversation is about to be overwritten: keep it warm. (A prompt
            # that continues this one loses only a few tokens, and its longer state
            # will be kept in its turn.)
            self._save(llama)
        if hit is not None and _restore(llama, hit.entry.tokens, hit.entry.state):
            held = hit.reuse
        return held

    def _prefill(self, llama: llama_cpp.Llama, tokens: list[int]) -> int:
        """Make the context hold exactly `tokens`, evaluating what it lacks; the threads
        last chosen for it (0: it lacked nothing).

        generate() is handed the whole prompt after this has evaluated all but its last
        token, so the last token's logits always come from a batch of one, hit or miss:
        a batch's size changes the arithmetic's rounding, and with it a greedy answer.
        """
        held = self._held_count(llama, tokens)
        if held >= len(tokens):
            return 0
        if llama.n_tokens > held and not llama._ctx.kv_cache_seq_rm(-1, held, -1):
            llama.reset()
            held = 0
        llama.n_tokens = held
        # Batch by batch, as llama.eval would (the same splits, so the same arithmetic),
        # with the threads chosen again before each: a client busy in the half-second
        # before its request (an SDK importing, an agent building its prompt) would
        # otherwise hold a whole long prefill to fewer threads (14.5 s against 7.8 s for
        # 1,100 tokens on 2 cores, measured).
        threads = 0
        for start in range(held, len(tokens), llama.n_batch):
            threads = self._share_cores(llama, threads)
            llama.eval(tokens[start : start + llama.n_batch])
        return threads

    def _held_count(self, llama: llama_cpp.Llama, tokens: list[int]) -> int:
        return common_prefix(_context_tokens(llama), np.asarray(tokens, dtype=np.int32))

    def _save(self, llama: llama_cpp.Llama) -> None:
        held = _context_tokens(llama)
        if len(held) >= MIN_REUSE and not self._cache.holds(held.tolist()):
            self._cache.store(held.tolist(), _sequence_state(llama))

    def _generate(
        self,
        llama: llama_cpp.Llama,
        tokens: list[int],
        sampling: Sampling,
        should_stop: Callable[[], bool],
    ) -> Iterator[Token]:
        room = llama.n_ctx() - len(tokens)
        if room <= 0:
            raise BackendError(f"prompt is {len(tokens)} tokens; the context holds {llama.n_ctx()}")
        # The prefill chooses threads for each batch; a prompt held whole needs a choice.
        threads = self._prefill(llama, tokens[:-1]) or self._share_cores(llama, 0)
        llama.set_seed(sampling.seed if sampling.seed is not None else random.getrandbits(31))
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        stream = llama.generate(
            tokens,
            temp=sampling.temperature,
            top_p=sampling.top_p,
            repeat_penalty=1.0,
            grammar=_grammar(sampling.json_schema),
        )
        for count, token_id in enumerate(stream, start=1):
            if should_stop() or llama_cpp.llama_vocab_is_eog(llama._model.vocab, token_id):
                return
            threads = self._share_cores(llama, threads)
            text = decoder.decode(llama.detokenize([token_id], special=True))
            yield _token(llama, token_id, text, sampling.top_logprobs)
            if count >= min(sampling.max_tokens, room):
                return

    def _share_cores(self, llama: llama_cpp.Llama, current: int) -> int:
        """Threads for this context given the free cores; set between tokens."""
        threads = self._cores.threads(self._pool.in_use)
        if threads != current:
            llama._ctx.set_n_threads(threads, threads)
        return threads

    @property
    def _llama(self) -> llama_cpp.Llama:
        if self._tokenizer is None:
            raise BackendError("model is not loaded")
        return self._tokenizer

    def _tokenize_text(self, text: str) -> tuple[int, ...]:
        return tuple(self._tokenize(self._llama, text))

    def _tokenize(self, llama: llama_cpp.Llama, text: str) -> list[int]:
        bos = _token_text(llama, llama.token_bos())
        add_bos = llama._model.add_bos_token() and not (bos and text.startswith(bos))
        return llama.tokenize(text.encode(), add_bos=add_bos, special=True)

    def _new_context(self) -> llama_cpp.Llama:
        return self._open(n_ctx=self._context_length)

    def _new_embedder(self) -> llama_cpp.Llama:
        return self._open(
            n_ctx=self._context_length,
            n_batch=self._context_length,
            embedding=True,
            pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN,
        )

    def _open(self, **options: Any) -> llama_cpp.Llama:
        _avoid_amx_if_present()
        try:
            return _quiet_llama(
                model_path=str(self._path), n_threads=self._cores.physical, **options
            )
        except (ValueError, RuntimeError) as error:
            raise BackendError(f"llama.cpp cannot load {self._path.name}: {error}") from None


def _context_tokens(llama: llama_cpp.Llama) -> np.ndarray:
    """The tokens whose KV the context holds (its last prompt and what it generated)."""
    return np.asarray(llama.input_ids[: llama.n_tokens], dtype=np.int32)


def _held(llama: llama_cpp.Llama, tokens: list[int]) -> int:
    """A context's claim on a prompt: the prefix it holds, when worth reusing."""
    held = common_prefix(_context_tokens(llama), np.asarray(tokens, dtype=np.int32))
    return held if held >= MIN_REUSE else 0


def _sequence_state(llama: llama_cpp.Llama) -> bytes:
    """The KV of the context's one sequence (not the whole context state, which carries
    a logits buffer of up to hundreds of MB)."""
    size = llama_cpp.llama_state_seq_get_size(llama._ctx.ctx, 0)
    buffer = (ctypes.c_uint8 * size)()
    written = llama_cpp.llama_state_seq_get_data(llama._ctx.ctx, buffer, size, 0)
    # One copy: slicing a ctypes array builds a list of Python ints first (0.83 s against
    # 0.02 s for the 35 MB of a 1,500-token conversation), on the request's path.
    return ctypes.string_at(buffer, written)


def _restore(llama: llama_cpp.Llama, tokens: np.ndarray, state: bytes) -> bool:
    """Load a saved sequence into `llama`; llama.generate() then prefills only what the
    prompt adds past the part of `tokens` it shares (and drops the rest)."""
    buffer = (ctypes.c_uint8 * len(state)).from_buffer_copy(state)
    if llama_cpp.llama_state_seq_set_data(llama._ctx.ctx, buffer, len(state), 0) == 0:
        llama.reset()
        return False
    llama.input_ids[: len(tokens)] = tokens
    llama.n_tokens = len(tokens)
    llama._requires_eval = True  # logits are not restored: generate() re-evaluates one token
    return True


def _write_state(path: Path, state: bytes) -> None:
    path.write_bytes(state)


_STATE_CODEC: StateCodec[bytes] = StateCodec(
    nbytes=len, save=_write_state, load=Path.read_bytes, suffix=".kv", save_anywhere=True
)

_OPEN_LOCK = threading.Lock()


def _quiet_llama(**options: Any) -> llama_cpp.Llama:
    """Llama(verbose=False) silences llama.cpp by pointing file descriptors 1 and 2 at
    /dev/null for the whole process while it loads; two loads at once restore each
    other's /dev/null and the worker loses its stderr for good. So: verbose=True, with
    its chatter caught in Python instead (logging handlers keep the real stderr), one
    load at a time, then quiet again."""
    with _OPEN_LOCK, redirect_stderr(io.StringIO()):
        try:
            llama = llama_cpp.Llama(verbose=True, **options)
        finally:
            set_llama_verbose(False)
    llama.verbose = False  # no per-request chatter (prefix-cache notes) either
    return llama


def _avoid_amx_if_present() -> None:
    """Keep weights out of ggml's AMX buffers: its AMX matmul faults (GPF at ldtilecfg) on
    hosts that advertise AMX without granting tile state to worker threads, e.g. many VMs
    (ggml-org/llama.cpp#20824, fix pending in ggml-org/llama.cpp#26954). Llama() has no
    option for this, so the model-params default is wrapped, once, process-wide."""
    defaults = llama_cpp.llama_cpp.llama_model_default_params
    if getattr(defaults, "_lmx_no_extra_bufts", False) or not _cpu_has_amx():
        return

    def without_extra_buffers() -> Any:
        params = defaults()
        params.use_extra_bufts = False
        return params

    without_extra_buffers._lmx_no_extra_bufts = True  # type: ignore[attr-defined]
    llama_cpp.llama_cpp.llama_model_default_params = without_extra_buffers


def _cpu_has_amx() -> bool:
    try:
        return "amx_tile" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def _grammar(schema: dict[str, Any] | None) -> llama_cpp.LlamaGrammar | None:
    if schema is None:
        return None
    try:
        return llama_cpp.LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
    except Exception as error:  # the converter raises bare Exceptions on unsupported schemas
        raise BackendError(f"cannot turn the JSON schema into a grammar: {error}") from None


def _token(llama: llama_cpp.Llama, token_id: int, text: str, top: int | None) -> Token:
    if top is None:
        return Token(text, token_id)
    logits = np.ctypeslib.as_array(llama._ctx.get_logits_ith(-1), shape=(llama.n_vocab(),))
    logprobs = logits - _logsumexp(logits)
    best = [int(i) for i in np.argsort(-logprobs)[:top]]
    alternatives = {_piece(llama, i): float(logprobs[i]) for i in best}
    return Token(text, token_id, float(logprobs[token_id]), alternatives or None)


def _logsumexp(values: np.ndarray) -> float:
    peak = float(values.max())
    return peak + float(np.log(np.exp(values - peak).sum()))


def _piece(llama: llama_cpp.Llama, token_id: int) -> str:
    return llama.detokenize([token_id], special=True).decode("utf-8", errors="replace")


def _token_text(llama: llama_cpp.Llama, token_id: int) -> str:
    return llama._model.token_get_text(token_id) if token_id >= 0 else ""
