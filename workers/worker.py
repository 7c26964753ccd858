"""One model behind the API: its settings, backend, state, admission and chat template."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from workers.backends.base import Backend, BackendError
from workers.backends.registry import create_backend
from workers.contract.errors import ApiError
from workers.contract.settings import WorkerSettings
from workers.generation.admission import RETRY_AFTER_S, Admission
from workers.prompt.template import CHATML_TEMPLATE, ChatTemplate, TemplateError
from workers.prompt.tool_instructions import FALLBACK_TOOL_PARSER
from workers.state import HealthContext, ModelState, WorkerStatus, health_body

log = logging.getLogger("workers")

BackendFactory = Callable[[WorkerSettings], Backend]


@dataclass(frozen=True)
class OutputFormat:
    """How this model marks up tool calls and reasoning, fixed once at load."""

    tool_parser: str | None = None
    reasoning_parser: str | None = None
    starts_in_reasoning: bool = False
    # The template cannot show tools: describe them in the system message instead.
    tools_in_system_prompt: bool = False


@dataclass(frozen=True)
class LoadedModel:
    backend: Backend
    template: ChatTemplate
    output_format: OutputFormat


class ParserNameError(ValueError):
    """The settings name a tool or reasoning parser that does not exist."""


def _check_parsers(output_format: OutputFormat) -> None:
    from workers.parsing.output import OutputParser

    try:
        OutputParser(
            tool_parser=output_format.tool_parser,
            reasoning_parser=output_format.reasoning_parser,
            tools=None,
        )
    except (ValueError, KeyError) as error:
        raise ParserNameError(str(error)) from None


class Worker:
    def __init__(
        self, settings: WorkerSettings, backend_factory: BackendFactory = create_backend
    ) -> None:
        self.settings = settings
        self.status = WorkerStatus()
        self.admission = Admission(settings.max_concurrent, settings.max_queue)
        # One thread per admitted generation; reused, since starting a thread per request
        # costs about a millisecond here.
        self.generation_threads = ThreadPoolExecutor(
            max_workers=settings.max_concurrent, thread_name_prefix="generate"
        )
        self.created = int(time.time())
        self._backend_factory = backend_factory
        self._model: LoadedModel | None = None

    def load(self) -> bool:
        """Blocking: runs on the loader thread while the server already answers /health."""
        started = time.monotonic()
        try:
            model = self._load_model()
        except (BackendError, TemplateError, ParserNameError) as error:
            return self._fail(str(error))
        except Exception as error:
            log.exception("model load failed")
            return self._fail(f"{type(error).__name__}: {error}")
        self._model = model
        self.status.ready(time.monotonic() - started)
        log.info("model %s ready in %.2fs", self.settings.model_id, self.status.load_seconds)
        return True

    def close(self) -> None:
        """After the server stopped: generations still running end at their next token,
        and a backend that runs its own threads (mlx's scheduler) stops them, since a
        native thread left running at exit aborts the process."""
        self.generation_threads.shutdown(wait=False, cancel_futures=True)
        close_backend = getattr(self._model.backend, "close", None) if self._model else None
        if callable(close_backend):
            close_backend()

    def ready_model(self) -> LoadedModel:
        if self._model is None or self.status.state is not ModelState.READY:
            raise self._not_ready()
        return self._model

    def health(self) -> dict[str, object]:
        context = HealthContext(
            self.settings.model_id,
            self.settings.backend,
            self.settings.port,
            self.settings.context_length,
        )
        memory = self._model.backend.memory_bytes() if self._model else None
        return health_body(
            self.status, context, memory, self.admission.in_flight, self.admission.queued
        )

    def _load_model(self) -> LoadedModel:
        backend = self._backend_factory(self.settings)
        backend.load()
        source = self.settings.chat_template or backend.chat_template or CHATML_TEMPLATE
        template = ChatTemplate(source, backend.special_tokens)
        return LoadedModel(backend, template, self._output_format(template))

    def _output_format(self, template: ChatTemplate) -> OutputFormat:
        tool_parser, tools_in_system_prompt = self._tool_parser(template)
        reasoning_parser, starts_in_reasoning = self._reasoning_parser(template.source)
        output_format = OutputFormat(
            tool_parser, reasoning_parser, starts_in_reasoning, tools_in_system_prompt
        )
        _check_parsers(output_format)
        return output_format

    def _tool_parser(self, template: ChatTemplate) -> tuple[str | None, bool]:
        """The tool parser, and whether tools must be described in the system message."""
        from workers.parsing.output import detect_tool_parser

        configured = self.settings.tool_parser
        if configured is not None:
            return (None if configured == "none" else configured), False
        detected = detect_tool_parser(template.source)
        if detected is not None or template.mentions_tools:
            return detected, False
        return FALLBACK_TOOL_PARSER, True

    def _reasoning_parser(self, template_source: str) -> tuple[str | None, bool]:
        from workers.parsing.output import detect_reasoning_parser

        detected, starts_in_reasoning = detect_reasoning_parser(template_source)
        configured = self.settings.reasoning_parser
        if configured is None:
            return detected, starts_in_reasoning
        if configured == "none":
            return None, False
        return configured, starts_in_reasoning

    def _fail(self, reason: str) -> bool:
        reason = reason.splitlines()[0] if reason else "unknown error"
        self.status.fail(reason)
        log.error("model %s failed to load: %s", self.settings.model_id, reason)
        return False

    def _not_ready(self) -> ApiError:
        if self.status.state is ModelState.FAILED:
            message = f"model {self.settings.model_id} failed to load: {self.status.error}"
            return ApiError(503, message, code="model_load_failed")
        return ApiError(
            503,
            f"model {self.settings.model_id} is still loading",
            code="model_loading",
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )
