"""The comment line a worker's stream ends with: framed once, found again in the last
bytes of a relayed stream or among the lines of one read back, skipped by SSE readers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from workers.contract.sse import DONE, sse_event, sse_payloads
from workers.contract.trailer import StreamTrailer

TRAILER = StreamTrailer(prompt_tokens=12, completion_tokens=7, cached_tokens=4, first_output_s=0.25)


def test_a_framed_trailer_is_found_at_the_end_of_a_stream() -> None:
    tail = sse_event({"choices": []}) + TRAILER.frame() + DONE
    assert StreamTrailer.find(tail) == TRAILER
    assert StreamTrailer.find(TRAILER.frame() + DONE) == TRAILER  # the tail starts with it


def test_a_stream_without_a_whole_trailer_has_none() -> None:
    framed = TRAILER.frame()
    assert StreamTrailer.find(sse_event({"choices": []}) + DONE) is None
    assert StreamTrailer.find(framed[10:] + DONE) is None  # its start was in an older chunk
    assert StreamTrailer.find(framed[:-3]) is None  # its end has not come
    assert StreamTrailer.find(b": lmx {not json}\n\n" + DONE) is None


def test_other_comments_are_not_trailers() -> None:
    assert StreamTrailer.from_line(": loading model-a 3") is None
    assert StreamTrailer.from_line(': lmx {"prompt_tokens": 1}') is None
    no_output = StreamTrailer(1, 0, 0, None)
    assert StreamTrailer.from_line(no_output.frame().decode().strip()) == no_output


def test_sse_readers_skip_the_trailer_and_hand_it_to_the_comment_callback() -> None:
    text = (sse_event({"n": 1}) + TRAILER.frame() + DONE).decode()
    comments: list[str] = []

    async def lines() -> AsyncIterator[str]:
        for line in text.split("\n"):
            yield line

    async def read() -> list[object]:
        return [payload async for payload in sse_payloads(lines(), comments.append)]

    assert asyncio.run(read()) == [{"n": 1}]
    assert [StreamTrailer.from_line(c) for c in comments] == [TRAILER]
