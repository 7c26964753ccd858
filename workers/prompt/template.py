"""Messages rendered into a prompt with the model's own Jinja chat template.

The template runs in Jinja's sandbox, since it comes from a model file. Models without a
template get ChatML, the most common format among instruct models.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

from workers.contract.errors import bad_request

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


class TemplateError(Exception):
    """A chat template could not be compiled."""


class ChatTemplate:
    def __init__(self, source: str, special_tokens: Mapping[str, str] | None = None) -> None:
        self.source = source
        self._special = dict(special_tokens or {})
        try:
            self._template = _environment().from_string(source)
        except jinja2.TemplateError as error:
            raise TemplateError(f"chat template does not compile: {error}") from None

    def render(
        self,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]] = (),
        add_generation_prompt: bool = True,
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        """`extra`: a request's chat_template_kwargs (enable_thinking, ...); the messages,
        tools and generation prompt cannot be overridden through it."""
        context = {
            **(extra or {}),
            "bos_token": "",
            "eos_token": "",
            **self._special,
            "messages": [dict(m) for m in messages],
            "tools": [dict(t) for t in tools] or None,
            "add_generation_prompt": add_generation_prompt,
        }
        try:
            return self._template.render(**context)
        except jinja2.TemplateError as error:
            raise bad_request(f"chat template refused the messages: {error}", "messages") from None

    @property
    def mentions_tools(self) -> bool:
        return "tools" in self.source


def generation_prompt(source: str) -> str | None:
    """What a template adds for add_generation_prompt, or None if it cannot be rendered."""
    messages = [{"role": "user", "content": "hi"}]
    # A fixed clock, so the two renders can only differ by the generation prompt.
    fixed = {"messages": messages, "strftime_now": lambda fmt: ""}
    try:
        template = _environment().from_string(source)
        without = template.render(**fixed, add_generation_prompt=False)
        with_prompt = template.render(**fixed, add_generation_prompt=True)
    except Exception:  # any template may fail on a bare conversation; callers fall back
        return None
    if not with_prompt.startswith(without):
        return None
    return with_prompt[len(without) :]


def _environment() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols]
    )
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env


def _tojson(
    value: Any,
    indent: int | None = None,
    ensure_ascii: bool = False,
    separators: tuple[str, str] | None = None,
    sort_keys: bool = False,
) -> str:
    # Jinja's own tojson HTML-escapes; chat templates need the plain JSON text.
    return json.dumps(
        value, indent=indent, ensure_ascii=ensure_ascii, separators=separators, sort_keys=sort_keys
    )


def _raise_exception(message: str) -> None:
    raise jinja2.TemplateError(message)
