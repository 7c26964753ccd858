"""Runs one generation for one request and answers it, streamed or whole.

Order matters: admission (429 before any byte), then generation on its thread, then
either SSE chunks or one JSON body. A client that leaves at any point stops generation
through the request's StopSignal; a failure after the stream began becomes one SSE
error chunk and [DONE].
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from workers.answers.answer import Answer, Usage
from workers.backends.base import Backend, Sampling
from workers.contract.errors import ApiError, bad_request, sse_error_chunk
from workers.contract.sse import DONE, SSEResponse, sse_data
from workers.generation.bridge import Generation
from workers.generation.cancellation import ClientGone, RequestWatch
from workers.requests.parse import GenerationOptions
from workers.routes.boundary import TOKENS_SCOPE_KEY
from workers.worker import Worker

log = logging.getLogger("workers")


@dataclass(frozen=True)
class Job:
    backend: Backend
    prompt: str
    prompt_tokens: int
    sampling: Sampling
    stops: tuple[str, ...]
    stream: bool
    include_usage: bool


async def respond(request: Request, worker: Worker, job: Job, answer: Answer) -> Response:
    worker.status.request_started()
    watch = RequestWatch(request.receive, worker.settings.request_timeout_s, _counter(worker))
    watch.start()
    try:
        generation = await _start(worker, job, watch)
    except BaseException:
        watch.close()
        raise
    if job.stream:
        return SSEResponse(_stream(job, answer, generation, watch, request))
    try:
        return JSONResponse(await _whole(job, answer, generation))
    finally:
        watch.close()
        _note_tokens(request, generation)


async def _start(worker: Worker, job: Job, watch: RequestWatch) -> Generation:
    slot = await worker.admission.acquire(watch.signal)
    if slot is None:
        watch.check()
        raise ClientGone()
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
    try:
        async for event in _stream_events(job, answer, generation):
            yield event
    except ClientGone:
        return
    except ApiError as error:
        yield sse_error_chunk(error)
    except Exception:
        log.exception("stream failed")
        yield sse_error_chunk(ApiError(500, "internal error while streaming", code="internal"))
    finally:
        watch.close()
        _note_tokens(request, generation)


async def _stream_events(job: Job, answer: Answer, generation: Generation) -> AsyncIterator[bytes]:
    for payload in answer.head():
        yield sse_data(payload)
    async for chunk in generation.chunks():
        for payload in answer.feed(chunk):
            yield sse_data(payload)
    for payload in answer.finish(generation.outcome):
        yield sse_data(payload)
    if job.include_usage:
        yield sse_data(answer.usage_chunk(_usage(job, generation)))
    yield DONE


def _note_tokens(request: Request, generation: Generation) -> None:
    """For the request's log line (workers.routes.boundary)."""
    request.scope[TOKENS_SCOPE_KEY] = generation.outcome.completion_tokens


def _usage(job: Job, generation: Generation) -> Usage:
    return Usage(job.prompt_tokens, generation.outcome.completion_tokens)


def _counter(worker: Worker) -> Callable[[], None]:
    counters = worker.status.counters

    def cancelled() -> None:
        counters.cancelled_total += 1

    return cancelled


async def make_job(
    worker: Worker,
    backend: Backend,
    prompt: str,
    options: GenerationOptions,
    json_schema: dict[str, Any] | None = None,
    prompt_param: str = "messages",
) -> Job:
    """Sampling for one request: request fields, then the model's defaults, then the
    backend's own; max_tokens never runs past the context."""
    if options.top_logprobs is not None and not backend.supports_logprobs:
        raise bad_request(f"the {backend.name} backend does not return logprobs", "logprobs")
    if json_schema is not None and not backend.supports_json_schema:
        raise bad_request(
            f"the {backend.name} backend cannot constrain output to a JSON schema "
            "(response_format json / tool_choice 'required' or named)",
            "response_format",
        )
    # Tokenizing can wait on a backend lock held by a generating thread: off the event loop.
    prompt_tokens = await asyncio.to_thread(backend.count_tokens, prompt)
    room = worker.settings.context_length - prompt_tokens
    if room <= 0:
        raise bad_request(
            f"the prompt is {prompt_tokens} tokens; the model's context holds "
            f"{worker.settings.context_length}",
            prompt_param,
            code="context_length_exceeded",
        )
    return Job(
        backend=backend,
        prompt=prompt,
        prompt_tokens=prompt_tokens,
        sampling=_sampling(options, room, json_schema),
        stops=options.stop,
        stream=options.stream,
        include_usage=options.include_usage,
    )


_BACKEND_DEFAULTS = Sampling()


def _sampling(options: GenerationOptions, room: int, schema: dict[str, Any] | None) -> Sampling:
    temperature, top_p = options.temperature, options.top_p
    return Sampling(
        max_tokens=min(options.max_tokens or room, room),
        temperature=_BACKEND_DEFAULTS.temperature if temperature is None else temperature,
        top_p=_BACKEND_DEFAULTS.top_p if top_p is None else top_p,
        seed=options.seed,
        json_schema=schema,
        top_logprobs=options.top_logprobs,
    )
