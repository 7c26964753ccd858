"""POST /v1/completions: the raw prompt, no chat template, no output parsing."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from workers.answers import AnswerId
from workers.body import read_body
from workers.completion_answer import CompletionAnswer
from workers.requests import parse_completion_request
from workers.responder import make_job, respond
from workers.worker import Worker


async def completions(request: Request) -> Response:
    worker: Worker = request.app.state.worker
    body = await read_body(request, worker.settings.max_body_bytes)
    completion = parse_completion_request(body, worker.settings.defaults)
    model = worker.ready_model()
    job = await make_job(
        worker, model.backend, completion.prompt, completion.options, prompt_param="prompt"
    )
    answer = CompletionAnswer(
        AnswerId(worker.settings.model_id, "cmpl"),
        logprobs=completion.options.top_logprobs is not None,
    )
    return await respond(request, worker, job, answer)
