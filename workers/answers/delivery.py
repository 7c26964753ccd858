"""Runs one generation for one request and answers it, streamed or whole.

Order matters: admission (429 before any byte), then generation on its thread, then
either SSE chunks or one JSON body. A client that leaves at any point stops generation
through the request's StopSignal; a failure after the stream began becomes one SSE
error chunk and [DONE].
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from workers.answers.answer import Answer, Usage
from workers.contract import headers
from workers.contract.errors import ApiError, ClientGone
from workers.contract.sse import DONE, SSEResponse, sse_error, sse_events
from workers.contract.trailer import StreamTrailer
from workers.generation.bridge import Generation
from workers.generation.cancellation import RequestWatch
from workers.generation.job import Job
from workers.worker import Worker

log = logging.getLogger("workers")
# Where a finished generation leaves its token count for the request's log line
# (workers.routes.boundary); the two modules share no other state.
TOKENS_SCOPE_KEY = "lmx.completion_tokens"
# When the request arrived (monotonic; set by workers.routes.boundary), for the trailer.
ARRIVED_SCOPE_KEY = "lmx.arrived"


async def respond(request: Request, worker: Worker, job: Job, answer: Answer) -> Response:
    watch = worker.watch(request.receive)
    try:
        generation = await _start(worker, job, watch)
    except BaseException:
        watch.close()
        raise
    if job.stream:
        prompt_tokens = (headers.PROMPT_TOKENS.encode(), str(job.prompt_tokens).encode())
        return SSEResponse(_stream(job, answer, generation, watch, request), [prompt_tokens])
    try:
        return JSONResponse(await _whole(job, answer, generation))
    finally:
        watch.close()
        _note_tokens(request, generation)


async def _start(worker: Worker, job: Job, watch: RequestWatch) -> Generation:
    slot = await worker.admission.enter(watch)
    counters = worker.status.counters

    def count_token() -> None:
        counters.tokens_generated += 1

    generation = Generation(
        job.backend,
        job.prompt,
        job.sampling,
        job.stops,
        watch,
        slot,
        count_token,
        worker.generation_threads,
    )
    generation.start()
    return generation


async def _whole(job: Job, answer: Answer, generation: Generation) -> dict[str, object]:
    async for chunk in generation.chunks():
        answer.feed(chunk)
    answer.finish(generation.outcome)
    return answer.whole(generation.outcome, _usage(job, generation))


async def _stream(
    job: Job, answer: Answer, generation: Generation, watch: RequestWatch, request: Request
) -> AsyncIterator[bytes]:
    arrived = request.scope.get(ARRIVED_SCOPE_KEY) or time.monotonic()
    try:
        async for event in _stream_events(job, answer, generation, arrived):
            yield event
    except ClientGone:
        return
    except ApiError as error:
        yield sse_error(error)
    except Exception:
        log.exception("stream failed")
        yield sse_error(ApiError(500, "internal error while streaming", code="internal"))
    finally:
        watch.close()
        _note_tokens(request, generation)


async def _stream_events(
    job: Job, answer: Answer, generation: Generation, arrived: float
) -> AsyncIterator[bytes]:
    """One write per batch of tokens: the events of every token that was already waiting
    go out together, each still its own event. The last write holds the closing events,
    the trailer and [DONE], so the gateway finds them whole in the stream's last bytes."""
    first_output_s: float | None = None
    yield sse_events(answer.head())
    async for batch in generation.batches():
        events = b"".join([answer.stream(chunk) for chunk in batch])
        if events:
            if first_output_s is None:
                first_output_s = time.monotonic() - arrived
            yield events
    ending = list(answer.finish(generation.outcome))
    if ending and first_output_s is None:
        first_output_s = time.monotonic() - arrived
    usage = _usage(job, generation)
    if job.include_usage:
        ending.append(answer.usage_chunk(usage))
    yield sse_events(ending) + _trailer(usage, first_output_s).frame() + DONE


def _trailer(usage: Usage, first_output_s: float | None) -> StreamTrailer:
    seconds = None if first_output_s is None else round(first_output_s, 6)
    return StreamTrailer(usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens, seconds)


def _note_tokens(request: Request, generation: Generation) -> None:
    """For the request's log line (workers.routes.boundary)."""
    request.scope[TOKENS_SCOPE_KEY] = generation.outcome.completion_tokens


def _usage(job: Job, generation: Generation) -> Usage:
    outcome = generation.outcome
    return Usage(job.prompt_tokens, outcome.completion_tokens, outcome.cached_tokens)
