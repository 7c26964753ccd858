"""The thread-to-loop hand-off of generated tokens (workers.generation.handoff) and the
batches a generation makes of it (workers.generation.bridge)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar, TypeVar

import pytest

from workers.backends.base import Backend, Sampling, Token
from workers.contract.errors import ApiError
from workers.contract.finish import FinishReason
from workers.generation.admission import Admission
from workers.generation.bridge import Chunk, Generation
from workers.generation.cancellation import RequestWatch
from workers.generation.handoff import Handoff

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(asyncio.wait_for(coro, 20))


def test_items_that_arrive_while_the_loop_is_busy_come_in_one_take_in_order() -> None:
    async def scenario() -> list[list[int]]:
        handoff: Handoff[int] = Handoff(asyncio.get_running_loop())
        producer = threading.Thread(target=lambda: [handoff.put(i) for i in range(500)])
        producer.start()
        producer.join()  # the loop did not run meanwhile: everything is waiting
        return [await handoff.take()]

    assert run(scenario()) == [list(range(500))]


def test_a_racing_producer_loses_nothing_and_reorders_nothing() -> None:
    async def scenario() -> tuple[list[int], int]:
        handoff: Handoff[int] = Handoff(asyncio.get_running_loop())
        count = 20_000
        producer = threading.Thread(target=lambda: [handoff.put(i) for i in range(count)])
        producer.start()
        received: list[int] = []
        takes = 0
        while len(received) < count:
            received += await handoff.take()
            takes += 1
            await asyncio.sleep(0)  # let wake-ups interleave with the producer
        producer.join()
        return received, takes

    received, takes = run(scenario())
    assert received == list(range(20_000))
    assert takes <= 20_000


def test_a_waiting_consumer_is_woken_by_each_item() -> None:
    async def scenario() -> list[list[str]]:
        handoff: Handoff[str] = Handoff(asyncio.get_running_loop())
        taken: list[list[str]] = []
        for word in ("one", "two", "three"):
            threading.Timer(0.01, handoff.put, [word]).start()
            taken.append(await handoff.take())
        return taken

    assert run(scenario()) == [["one"], ["two"], ["three"]]


def test_put_after_the_loop_closed_is_harmless() -> None:
    loop = asyncio.new_event_loop()
    handoff: Handoff[int] = Handoff(loop)
    loop.close()
    handoff.put(1)  # no exception: the worker is shutting down


class _Burst(Backend):
    """Yields its pieces as fast as it can, then tells the test it is done."""

    name: ClassVar[str] = "burst"

    def __init__(self, pieces: list[str], fail_at_end: bool = False) -> None:
        self.pieces = pieces
        self.fail_at_end = fail_at_end
        self.done = threading.Event()

    def load(self) -> None:
        pass

    @property
    def chat_template(self) -> str | None:
        return None

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def generate(
        self,
        prompt: str,
        sampling: Sampling,
        should_stop: Callable[[], bool],
        on_cached: Callable[[int], None] | None = None,
    ) -> Iterator[Token]:
        try:
            for index, piece in enumerate(self.pieces):
                yield Token(piece, index)
            if self.fail_at_end:
                raise RuntimeError("the backend broke")
        finally:
            self.done.set()


async def _never_disconnects() -> dict[str, Any]:
    await asyncio.sleep(3600)
    return {"type": "http.disconnect"}


async def _generation(
    backend: Backend, stops: tuple[str, ...] = ()
) -> tuple[Generation, Admission]:
    admission = Admission(max_concurrent=1, max_queue=0)
    watch = RequestWatch(_never_disconnects, timeout_s=30, on_disconnect=lambda: None)
    watch.start()
    slot = await admission.enter(watch)
    generation = Generation(
        backend,
        "prompt",
        Sampling(max_tokens=1000),
        stops,
        watch,
        slot,
        lambda: None,
        ThreadPoolExecutor(1),
    )
    return generation, admission


def _lagging_batches(backend: _Burst, stops: tuple[str, ...] = ()) -> Any:
    """Start a generation, keep the loop busy until the backend has finished, then read."""

    async def scenario() -> tuple[list[list[Chunk]], Generation, Admission]:
        generation, admission = await _generation(backend, stops)
        generation.start()
        assert backend.done.wait(10)
        time.sleep(0.05)  # the loop is busy (blocked) while the thread hands everything over
        batches = [batch async for batch in generation.batches()]
        return batches, generation, admission

    return run(scenario())


def test_tokens_that_waited_for_a_busy_loop_arrive_as_one_batch_in_order_and_complete() -> None:
    pieces = [f" w{i}" for i in range(300)]
    batches, generation, admission = _lagging_batches(_Burst(pieces))
    assert len(batches) == 1
    assert [chunk.text for chunk in batches[0]] == pieces
    assert generation.outcome.completion_tokens == 300
    assert generation.outcome.finish_reason is FinishReason.STOP
    assert admission.in_flight == 0  # the thread gave its slot back


def test_a_stop_sequence_inside_a_batch_ends_it_there() -> None:
    pieces = ["a", "b", " EN", "D", "c", "d"]
    batches, generation, _ = _lagging_batches(_Burst(pieces), stops=(" END",))
    assert "".join(chunk.text for batch in batches for chunk in batch) == "ab"
    assert generation.outcome.stop_sequence == " END"
    assert generation.outcome.completion_tokens == 4  # nothing after the match is counted


def test_a_failure_after_tokens_delivers_them_first_then_raises() -> None:
    async def scenario() -> tuple[list[str], ApiError | None]:
        backend = _Burst(["x", "y"], fail_at_end=True)
        generation, _ = await _generation(backend)
        generation.start()
        assert backend.done.wait(10)
        time.sleep(0.05)
        texts: list[str] = []
        try:
            async for batch in generation.batches():
                texts += [chunk.text for chunk in batch]
        except ApiError as error:
            return texts, error
        return texts, None

    texts, error = run(scenario())
    assert texts == ["x", "y"]
    assert error is not None and error.status == 500


@pytest.mark.parametrize("count", [1, 50])
def test_chunks_gives_the_same_tokens_one_by_one(count: int) -> None:
    async def scenario() -> list[str]:
        backend = _Burst([f"t{i}" for i in range(count)])
        generation, _ = await _generation(backend)
        generation.start()
        return [chunk.text async for chunk in generation.chunks()]

    assert run(scenario()) == [f"t{i}" for i in range(count)]
