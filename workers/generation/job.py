"""One generation request as the backend will run it: the prompt, its token count and
the sampling, settled before admission so a bad request is refused before it queues."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from workers.backends.base import Backend, Sampling
from workers.contract.errors import bad_request
from workers.requests.parse import GenerationOptions


@dataclass(frozen=True)
class Job:
    backend: Backend
    prompt: str
    prompt_tokens: int
    sampling: Sampling
    stops: tuple[str, ...]
    stream: bool
    include_usage: bool


async def make_job(
    context_length: int,
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
    room = context_length - prompt_tokens
    if room <= 0:
        raise bad_request(
            f"the prompt is {prompt_tokens} tokens; the model's context holds {context_length}",
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
