"""`lmx run` (one prompt, streamed) and `lmx chat` (a conversation at a prompt).

In a chat, Ctrl-C during an answer stops it and returns to the prompt; the stopped
exchange (the question and the partial answer) is left out of the conversation, so the
model never sees a half answer as its own. Ctrl-C at the prompt clears the line; Ctrl-D
or /exit leaves.
"""

from __future__ import annotations

import contextlib
import re
import sys
from typing import Annotated, Any

import typer

from gateway.cli import output
from gateway.cli.client import Client, CliError, GatewayError, connect
from gateway.cli.generation import stream_answer
from gateway.cli.options import ModelArg

PROMPT = ">>> "
EXIT_INTERRUPTED = 130  # what a shell reports for a program ended by Ctrl-C
EXIT_WORDS = ("/exit", "/bye", "/quit")
COMMAND = re.compile(r"/\w+")  # a lone /word is a command; "/etc/hosts?" is a question
HELP = "/exit or Ctrl-D leaves, Ctrl-C stops an answer, /clear forgets the conversation"

SystemOpt = Annotated[str | None, typer.Option("--system", "-s", help="A system message.")]
MaxTokensOpt = Annotated[
    int | None, typer.Option("--max-tokens", "-m", min=1, help="Stop after this many tokens.")
]
TemperatureOpt = Annotated[
    float | None, typer.Option("--temperature", "-t", min=0, help="Sampling temperature.")
]


def run(
    model: ModelArg,
    prompt: Annotated[
        str | None,
        typer.Argument(
            metavar="PROMPT",
            help="What to ask; read from stdin when left out and stdin is not a terminal, "
            "else a chat starts.",
            show_default=False,
        ),
    ] = None,
    system: SystemOpt = None,
    max_tokens: MaxTokensOpt = None,
    temperature: TemperatureOpt = None,
) -> None:
    """Answer one prompt, streamed to the terminal as it is generated."""
    if prompt is None and sys.stdin.isatty():
        chat(model, system, max_tokens, temperature)
        return
    text = prompt if prompt is not None else sys.stdin.read()
    messages = [*_system(system), {"role": "user", "content": text}]
    with connect() as client:
        answer = stream_answer(client, model, messages, _params(max_tokens, temperature))
    if answer.stopped:
        output.note_err("(stopped)")
        raise typer.Exit(EXIT_INTERRUPTED)


def chat(
    model: ModelArg,
    system: SystemOpt = None,
    max_tokens: MaxTokensOpt = None,
    temperature: TemperatureOpt = None,
) -> None:
    """Chat with a model: multi-turn, with the conversation kept."""
    params = _params(max_tokens, temperature)
    with connect() as client:
        client.get("/healthz")  # not running: say so now, not after the first question
        output.note(f"Chatting with {model}. {HELP}.")
        _enable_line_editing()
        _converse(client, model, _system(system), params)


def _converse(
    client: Client, model: str, start: list[dict[str, Any]], params: dict[str, Any]
) -> None:
    history = list(start)
    while (line := _read_line()) is not None:
        text = line.strip()
        if not text:
            continue
        if text in EXIT_WORDS:
            return
        if text == "/clear":
            history = list(start)
            output.note("(conversation cleared)")
            continue
        if text in ("/help", "/?"):
            output.note(HELP)
            continue
        if COMMAND.fullmatch(text):
            output.note(f"(no command {text}: {HELP})")
            continue
        question = {"role": "user", "content": text}
        try:
            answer = stream_answer(client, model, [*history, question], params)
        except GatewayError as exc:
            if exc.code == "model_not_found":
                raise
            output.error(exc.message)
            continue
        except CliError as exc:
            output.error(exc.message)
            continue
        if answer.stopped:
            output.note_err("(stopped: this question and its partial answer are not kept)")
        else:
            history += [question, {"role": "assistant", "content": answer.text}]


def _read_line() -> str | None:
    """One line from the user; None at end of input (Ctrl-D)."""
    try:
        return input(PROMPT)
    except EOFError:
        output.say("")
        return None
    except KeyboardInterrupt:
        output.say("")
        output.note("(Ctrl-D or /exit leaves)")
        return ""


def _enable_line_editing() -> None:
    # Importing readline gives input() line editing and history (arrow keys).
    with contextlib.suppress(ImportError):
        import readline  # noqa: F401


def _system(system: str | None) -> list[dict[str, Any]]:
    return [{"role": "system", "content": system}] if system else []


def _params(max_tokens: int | None, temperature: float | None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if max_tokens is not None:
        params["max_tokens"] = max_tokens
    if temperature is not None:
        params["temperature"] = temperature
    return params
