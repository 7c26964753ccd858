"""POST /v1/chat/completions."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from workers.answers.answer import AnswerId, EventParser
from workers.answers.chat import ChatAnswer
from workers.answers.delivery import respond
from workers.contract.body import read_body
from workers.contract.errors import bad_request
from workers.generation.job import make_job
from workers.parsing.forced_tools import ForcedToolCallParser, tool_call_schema
from workers.prompt.tool_instructions import with_tool_instructions
from workers.requests.parse import ChatRequest, parse_chat_request
from workers.worker import LoadedModel, Worker


async def chat_completions(request: Request) -> Response:
    worker: Worker = request.app.state.worker
    body = await read_body(request.scope, request.receive, worker.settings.max_body_bytes)
    chat = parse_chat_request(body, worker.settings.defaults)
    model = worker.ready_model()
    _refuse_images(chat, worker)
    forced = chat.tool_choice.mode in ("required", "named")
    job = await make_job(
        worker.settings.context_length,
        model.backend,
        render_prompt(model, chat),
        chat.options,
        _json_schema(chat, forced),
    )
    answer = ChatAnswer(
        AnswerId(worker.settings.model_id, "chatcmpl"),
        ForcedToolCallParser(chat.tool_choice.name) if forced else _parser(model, chat),
        logprobs=chat.options.top_logprobs is not None,
    )
    return await respond(request, worker, job, answer)


def render_prompt(model: LoadedModel, chat: ChatRequest) -> str:
    tools = chat.tools if chat.tool_choice.mode != "none" else ()
    if tools and model.output_format.tools_in_system_prompt:
        messages = with_tool_instructions(chat.messages, tools)
        return model.template.render(messages, extra=chat.template_kwargs)
    return model.template.render(chat.messages, tools, extra=chat.template_kwargs)


def _refuse_images(chat: ChatRequest, worker: Worker) -> None:
    if chat.image_param is None:
        return
    if not worker.settings.vision:
        raise bad_request(
            f"model {worker.settings.model_id} does not accept images", chat.image_param
        )
    raise bad_request(
        f"the {worker.settings.backend} backend cannot read images yet", chat.image_param
    )


def _json_schema(chat: ChatRequest, forced_tools: bool) -> dict[str, Any] | None:
    if not forced_tools:
        return chat.response_schema
    if chat.response_schema is not None:
        raise bad_request(
            "response_format cannot be combined with tool_choice "
            f"'{chat.tool_choice.mode}': both constrain the whole output",
            "response_format",
        )
    return tool_call_schema(chat.tools, chat.tool_choice.name)


def _parser(model: LoadedModel, chat: ChatRequest) -> EventParser:
    from workers.parsing.output import OutputParser

    output = model.output_format
    # JSON output is the answer itself: no reasoning section precedes it.
    reasoning = output.reasoning_parser if chat.response_schema is None else None
    return OutputParser(
        tool_parser=output.tool_parser,
        reasoning_parser=reasoning,
        tools=list(chat.tools) or None,
        starts_in_reasoning=output.starts_in_reasoning and reasoning is not None,
    )
