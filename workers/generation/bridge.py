"""One generation: a backend's blocking token iterator bridged onto the event loop.

The backend runs on a pooled thread and hands tokens over through a Handoff: the loop
takes, in one batch, every token that arrived while it was busy, so a consumer can frame
them into one write. Stop sequences are applied here, to the raw text, before any output
parser sees it.
The admission slot is released by the thread itself when it ends, because the backend is
busy until then even if the consumer already left.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, TypeVar

from workers.backends.base import Backend, Sampling, Token
from workers.contract.errors import ApiError
from workers.contract.finish import FinishReason
from workers.generation.admission import Slot
from workers.generation.cancellation import RequestWatch, StopReason
from workers.generation.handoff import Handoff
from workers.generation.stop_sequences import StopMatcher

log = logging.getLogger("workers.generation")
T = TypeVar("T")


@dataclass(frozen=True)
class Chunk:
    text: str
    tokens: tuple[Token, ...] = ()  # the tokens behind this text, for logprobs


@dataclass
class Outcome:
    finish_reason: FinishReason = FinishReason.STOP
    stop_sequence: str | None = None
    completion_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens the backend's prompt cache already held


@dataclass(frozen=True)
class _Failed:
    error: BaseException


_END = object()
_STOPPED = object()


class Generation:
    def __init__(
        self,
        backend: Backend,
        prompt: str,
        sampling: Sampling,
        stops: tuple[str, ...],
        watch: RequestWatch,
        slot: Slot,
        on_token: Callable[[], None],
        threads: Executor,
    ) -> None:
        self.outcome = Outcome()
        self._backend = backend
        self._prompt = prompt
        self._sampling = sampling
        self._matcher = StopMatcher(stops)
        self._watch = watch
        self._slot = slot
        self._on_token = on_token
        self._threads = threads
        self._handoff: Handoff[Any] = Handoff(asyncio.get_running_loop())
        self._pending: list[Token] = []

    async def chunks(self) -> AsyncIterator[Chunk]:
        """Text as it becomes safe to show; `outcome` is complete once this is exhausted."""
        async for batch in self.batches():
            for chunk in batch:
                yield chunk

    async def batches(self) -> AsyncIterator[list[Chunk]]:
        """The same chunks, grouped by what was waiting when the loop looked: one batch
        is one write for a stream. Never empty."""
        try:
            while True:
                batch, failure, ended = self._take_batch(await self._handoff.take())
                if batch:
                    yield batch
                if failure is not None:
                    raise failure
                if ended:
                    return
        finally:
            # Leaving early for any reason (stop sequence, error, consumer gone) ends the thread.
            self._watch.signal.stop(StopReason.FINISHED)

    def _take_batch(self, items: list[Any]) -> tuple[list[Chunk], Exception | None, bool]:
        """Chunks for the items in order, up to the first that ends the generation: what
        failed (to raise once the chunks before it went out), and whether it ended."""
        batch: list[Chunk] = []
        for item in items:
            if item is _END:
                return self._finish(batch), None, True
            if item is _STOPPED:
                try:
                    self._watch.check()
                except Exception as stopped:  # the client left, or the deadline passed
                    return batch, stopped, True
                continue
            if isinstance(item, _Failed):
                return batch, _generation_failed(item.error), True
            chunk = self._take(item)
            if chunk is not None:
                batch.append(chunk)
            if self.outcome.stop_sequence is not None:
                return batch, None, True
        return batch, None, False

    def _finish(self, batch: list[Chunk]) -> list[Chunk]:
        rest = self._matcher.flush()
        if rest or self._pending:
            batch.append(Chunk(rest, self._drain_pending()))
        if self.outcome.completion_tokens >= self._sampling.max_tokens:
            self.outcome.finish_reason = FinishReason.LENGTH
        return batch

    def _take(self, token: Token) -> Chunk | None:
        self.outcome.completion_tokens += 1
        self._on_token()
        self._pending.append(token)
        check = self._matcher.feed(token.text)
        if check.matched is not None:
            self.outcome.stop_sequence = check.matched
        if check.released or check.matched is not None:
            return Chunk(check.released, self._drain_pending())
        return None

    def _drain_pending(self) -> tuple[Token, ...]:
        tokens, self._pending = tuple(self._pending), []
        return tokens

    def start(self) -> None:
        """Start the backend thread; from here on the thread owns (and releases) the slot."""
        loop = asyncio.get_running_loop()
        self._watch.signal.add_listener(lambda: self._handoff.put(_STOPPED))
        self._threads.submit(self._produce, loop)

    def _note_cached(self, tokens: int) -> None:
        # From the generation thread, before its first token: read only after the last.
        self.outcome.cached_tokens = tokens

    def _produce(self, loop: asyncio.AbstractEventLoop) -> None:
        put = self._handoff.put
        try:
            for token in self._backend.generate(
                self._prompt, self._sampling, self._watch.signal.is_set, self._note_cached
            ):
                put(token)
        except Exception as error:
            log.exception("generation failed")
            put(_Failed(error))
        finally:
            # The slot first: a client that hears the end and asks again finds it free.
            _call_soon(loop, self._slot.release)
            put(_END)


async def call_on_thread(
    threads: Executor, slot: Slot, watch: RequestWatch, call: Callable[[], T]
) -> T:
    """One blocking backend call (an embedding) under a generation's rules: it holds its
    admission slot until its thread ends, and its deadline or its client leaving ends the
    wait with 504 or ClientGone."""
    try:
        future = asyncio.get_running_loop().run_in_executor(threads, call)
    except BaseException:
        slot.release()
        raise
    future.add_done_callback(lambda done: _release_after(done, slot))
    stopped = asyncio.ensure_future(watch.signal.wait())
    either: set[asyncio.Future[Any]] = {future, stopped}
    try:
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
    if not future.done():
        watch.check()
    return future.result()


def _release_after(done: asyncio.Future[Any], slot: Slot) -> None:
    slot.release()
    if not done.cancelled():
        done.exception()  # read, so an abandoned call's failure is not reported again


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[..., Any], *args: Any) -> None:
    # The loop closes during shutdown; by then nobody is waiting for the thread.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(callback, *args)


def _generation_failed(error: BaseException) -> ApiError:
    reason = str(error).splitlines()[0] if str(error) else type(error).__name__
    return ApiError(500, f"generation failed: {reason}", code="generation_failed")
