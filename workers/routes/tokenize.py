"""POST /tokenize: how many tokens a chat request's prompt takes, rendered exactly as a
completion would render it (the gateway's Anthropic count_tokens asks this)."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from workers.contract.body import read_body
from workers.requests.parse import parse_chat_request
from workers.routes.chat import render_prompt
from workers.worker import Worker


async def tokenize(request: Request) -> Response:
    worker: Worker = request.app.state.worker
    body = await read_body(request.scope, request.receive, worker.settings.max_body_bytes)
    chat = parse_chat_request(body, worker.settings.defaults)
    model = worker.ready_model()
    count = await asyncio.to_thread(model.backend.count_tokens, render_prompt(model, chat))
    return JSONResponse({"model": worker.settings.model_id, "prompt_tokens": count})
