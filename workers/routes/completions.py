"""POST /v1/completions: the raw prompt, no chat template, no output parsing."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from workers.answers.answer import AnswerId
from workers.answers.completion import CompletionAnswer
from workers.answers.delivery import respond
from workers.contract.body import read_body
from workers.generation.job import make_job
from workers.requests.parse import parse_completion_request
from workers.worker import Worker


async def completions(request: Request) -> Response:
    worker: Worker = request.app.state.worker
    body = await read_body(request.scope, request.receive, worker.settings.max_body_bytes)
    completion = parse_completion_request(body, worker.settings.defaults)
    model = worker.ready_model()
    job = await make_job(
        worker.settings.context_length,
        model.backend,
        completion.prompt,
        completion.options,
        prompt_param="prompt",
    )
    answer = CompletionAnswer(
        AnswerId(worker.settings.model_id, "cmpl"),
        logprobs=completion.options.top_logprobs is not None,
    )
    return await respond(request, worker, job, answer)
