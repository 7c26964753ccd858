"""One model behind the API: its settings, backend, state, admission and chat template."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import psutil
from starlette.types import Receive

from workers.backends.base import Backend, BackendError
from workers.backends.registry import create_backend
from workers.contract.errors import ApiError
from workers.contract.health import Health, ModelState
from workers.contract.settings import PARSER_OFF, WorkerSettings
from workers.contract.time_slice import give_back_short_slices
from workers.generation.admission import RETRY_AFTER_S, Admission
from workers.generation.cancellation import RequestWatch
from workers.prompt.template import CHATML_TEMPLATE, ChatTemplate, TemplateError
from workers.prompt.tool_instructions import FALLBACK_TOOL_PARSER
from workers.requests.parse import parse_chat_request
from workers.state import WorkerStatus

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


class Worker:
    def __init__(
        self, settings: WorkerSettings, backend_factory: BackendFactory = create_backend
    ) -> None:
        _check_defaults(settings)
        self.settings = settings
        self.status = WorkerStatus(settings.model_id)
        self.admission = Admission(settings.max_concurrent, settings.max_queue)
        # One thread per admitted generation; reused, since starting a thread per request
        # costs about a millisecond here. They compute (and start llama.cpp's compute
        # threads): ordinary time slices, not the event loop's short ones.
        self.generation_threads = ThreadPoolExecutor(
            max_workers=settings.max_concurrent,
            thread_name_prefix="generate",
            initializer=give_back_short_slices,
        )
        self.created = int(time.time())
        self._backend_factory = backend_factory
        self._model: LoadedModel | None = None
        self._closed = False

    def load(self) -> bool:
        """Blocking: runs on the loader thread while the server already answers /health."""
        started = time.monotonic()
        try:
            model = self._load_model()
        except (BackendError, TemplateError) as error:
            return self._fail(str(error))
        except Exception as error:
            log.exception("model load failed")
            return self._fail(f"{type(error).__name__}: {error}")
        self._model = model
        self.status.ready(time.monotonic() - started)
        log.info("model %s ready in %.2fs", self.settings.model_id, self.status.load_seconds)
        self._warm(model)
        return True

    def close(self) -> None:
        """After the server stopped: generations still running end at their next token,
        and a backend that runs its own threads (mlx's scheduler) stops them, since a
        native thread left running at exit aborts the process. Its prompt cache goes to
        disk. Once: the server calls it on shutdown and again when it returns."""
        if self._closed:
            return
        self._closed = True
        self.generation_threads.shutdown(wait=False, cancel_futures=True)
        if self._model is not None:
            self._model.backend.close()

    def watch(self, receive: Receive) -> RequestWatch:
        """Count a request in and watch it for its client leaving and its deadline."""
        counters = self.status.counters
        self.status.request_started()

        def cancelled() -> None:
            counters.cancelled_total += 1

        watch = RequestWatch(receive, self.settings.request_timeout_s, cancelled)
        watch.start()
        return watch

    def ready_model(self) -> LoadedModel:
        if self._model is None or self.status.state is not ModelState.READY:
            raise self._not_ready()
        return self._model

    def health(self) -> Health:
        status, counters, settings = self.status, self.status.counters, self.settings
        return Health(
            status=status.state,
            model=settings.model_id,
            backend=settings.backend,
            pid=os.getpid(),
            port=settings.port,
            context_length=settings.context_length,
            rss_bytes=psutil.Process().memory_info().rss,
            accelerator_bytes=self._model.backend.memory_bytes() if self._model else None,
            in_flight=self.admission.in_flight,
            queued=self.admission.queued,
            requests_total=counters.requests_total,
            tokens_generated=counters.tokens_generated,
            cancelled_total=counters.cancelled_total,
            last_request_at=counters.last_request_at,
            ready_at=status.ready_at,
            load_seconds=status.load_seconds,
            error=status.error,
            prompt_cache=self._model.backend.prompt_cache_stats() if self._model else None,
        )

    def _warm(self, model: LoadedModel) -> None:
        """Prefill the configured warm prompts, each as a conversation's system message,
        after ready: requests are served meanwhile, and a slow prefill (MLX on a CPU)
        cannot fail the load."""
        for text in self.settings.warm_prompts:
            started = time.monotonic()
            system = [{"role": "system", "content": text}]
            try:
                model.backend.warm(model.template.render(system, add_generation_prompt=False))
            except Exception:
                log.exception("warm prompt failed")
                continue
            log.info("warm prompt prefilled in %.2fs", time.monotonic() - started)

    def _load_model(self) -> LoadedModel:
        backend = self._backend_factory(self.settings)
        backend.load()
        source = self.settings.chat_template or backend.chat_template or CHATML_TEMPLATE
        template = ChatTemplate(source, backend.special_tokens)
        return LoadedModel(backend, template, self._output_format(template))

    def _output_format(self, template: ChatTemplate) -> OutputFormat:
        tool_parser, tools_in_system_prompt = self._tool_parser(template)
        reasoning_parser, starts_in_reasoning = self._reasoning_parser(template.source)
        return OutputFormat(
            tool_parser, reasoning_parser, starts_in_reasoning, tools_in_system_prompt
        )

    def _tool_parser(self, template: ChatTemplate) -> tuple[str | None, bool]:
        """The tool parser, and whether tools must be described in the system message."""
        from workers.parsing.output import detect_tool_parser

        configured = self.settings.tool_parser
        if configured is not None:
            return (None if configured == PARSER_OFF else configured), False
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
        if configured == PARSER_OFF:
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


def _check_defaults(settings: WorkerSettings) -> None:
    """A model's request defaults go through the same parser as every request, once at
    start, so an out-of-range default stops the worker with the key's name."""
    try:
        parse_chat_request(b'{"messages": [{"role": "user", "content": "-"}]}', settings.defaults)
    except ApiError as error:
        raise ValueError(f"defaults.{error.param or ''}: {error.message}") from None
