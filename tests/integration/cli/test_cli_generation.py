"""`lmx run` and `lmx chat` against a real stack (scripted workers): the answer streams as
it is generated, Ctrl-C stops it (and the worker), a chat keeps its conversation. The
chat is driven through a pseudo-terminal, as someone at a keyboard drives it."""

from __future__ import annotations

import os
import re
import select
import signal
import time
from collections.abc import Iterator

import httpx
import pexpect
import pytest

from tests.integration.cli.runner import ADMIN_KEY, error_line, lmx, popen_lmx, spawn_lmx
from tests.integration.stack import Stack, base_config, running_stack, scripted_models, wait_until

pytestmark = pytest.mark.slow

COUNTING = "one two three four five six seven eight nine ten eleven twelve"
LONG_STORY = "tick " * 300  # 600 pieces at 0.05 s: half a minute unless stopped
PROMPT = ">>> "
SCRIPTS = {
    "thinker": {"default": "<think>Paris, surely.</think>The capital is Paris."},
    "drip": {"default": COUNTING, "token_delay_s": 0.15},
    # The rendered prompt holds the whole conversation: each reply shows what it held.
    "talk": {
        "token_delay_s": 0.05,
        "default": "I am here.",
        "replies": [
            {"match": "tick", "text": "The stopped answer was kept."},
            {"match": "long story", "text": LONG_STORY},
            {"match": "Nice to meet you", "text": "You told me your name: Zed."},
            {"match": "my name is", "text": "Nice to meet you, Zed."},
        ],
    },
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("cli-generation")
    models = scripted_models(tmp / "models", SCRIPTS, {"thinker": {"reasoning_parser": "think"}})
    config = base_config(models, tmp / "models", security={"admin_key": ADMIN_KEY})
    with running_stack(tmp, config) as running:
        yield running


def worker_in_flight(stack: Stack, model_id: str) -> int:
    """What the worker itself says it is generating (its own /health)."""
    port = next(m["port"] for m in stack.config["models"] if m["id"] == model_id)
    with httpx.Client(timeout=5, trust_env=False) as c:
        return int(c.get(f"http://127.0.0.1:{port}/health").json()["in_flight"])


def read_arrivals(fd: int, limit_s: float) -> list[tuple[float, bytes]]:
    """Each read of a pipe with when it came, until the writer closes it."""
    arrivals = []
    deadline = time.monotonic() + limit_s
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            return arrivals
        arrivals.append((time.monotonic(), chunk))
    raise AssertionError(f"lmx still writing after {limit_s}s")


def test_run_prints_the_answer_as_it_is_generated(stack: Stack) -> None:
    lmx(stack, "load", "drip")  # time the answer, not the load
    process = popen_lmx(stack, "run", "drip", "count for me")
    try:
        assert process.stdout is not None and process.stderr is not None
        arrivals = read_arrivals(process.stdout.fileno(), 60)
        assert process.wait(timeout=30) == 0
        stderr = process.stderr.read().decode()
    finally:
        process.kill()
        process.wait()
    assert b"".join(chunk for _, chunk in arrivals).decode() == COUNTING + "\n"
    # About 25 pieces 0.15 s apart: printed as they came, not all at the end.
    assert len(arrivals) >= 10
    assert arrivals[-1][0] - arrivals[0][0] > 2.0
    assert re.search(
        r"^\d+ tokens, [\d.]+ tok/s, first token [\d.]+s, total [\d.]+s$", stderr, re.M
    )


def test_run_reads_the_prompt_from_stdin(stack: Stack) -> None:
    result = lmx(stack, "run", "talk", input="Hello, my name is Zed\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Nice to meet you, Zed.\n"


def test_run_keeps_reasoning_out_of_a_piped_answer(stack: Stack) -> None:
    result = lmx(stack, "run", "thinker", "capital of France?")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "The capital is Paris.\n"
    assert result.stderr.startswith("Paris, surely.\n")


def test_run_in_a_terminal_shows_reasoning_before_the_answer(stack: Stack) -> None:
    child = spawn_lmx(stack, "run", "thinker", "capital of France?")
    try:
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0
    shown = child.before or ""
    assert shown.startswith("\x1b[2m")  # reasoning is dimmed (a style, so NO_COLOR keeps it)
    plain = re.sub(r"\x1b\[[0-9;]*m", "", shown)
    assert plain.startswith("Paris, surely.\r\n\r\nThe capital is Paris.\r\n")


def test_ctrl_c_stops_run_and_the_generation(stack: Stack) -> None:
    lmx(stack, "load", "talk")
    process = popen_lmx(stack, "run", "talk", "tell me a long story")
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 30)
        assert ready and os.read(process.stdout.fileno(), 4096).startswith(b"tic")
        assert worker_in_flight(stack, "talk") == 1
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 130
    finally:
        process.kill()
        process.wait()
    # The closed stream reaches the worker, which stops: not half a minute later.
    wait_until(lambda: worker_in_flight(stack, "talk") == 0, 5, what="the worker to stop")
    assert stack.status("talk")["in_flight"] == 0


def test_chat_keeps_the_conversation_across_turns(stack: Stack) -> None:
    child = spawn_lmx(stack, "chat", "talk")
    try:
        child.expect_exact(PROMPT)
        child.sendline("Hi, my name is Zed")
        child.expect_exact("Nice to meet you, Zed.")
        child.expect_exact(PROMPT)
        child.sendline("What did I say?")
        child.expect_exact("You told me your name: Zed.")
        child.expect_exact(PROMPT)
        child.sendline("/nope")  # an unknown command is not sent to the model
        child.expect_exact("(no command /nope: ")
        child.expect_exact(PROMPT)
        child.sendline("/exit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0


def test_ctrl_c_in_chat_stops_the_answer_and_returns_to_the_prompt(stack: Stack) -> None:
    child = spawn_lmx(stack, "chat", "talk")
    try:
        child.expect_exact(PROMPT)
        child.sendline("tell me a long story")
        child.expect_exact("tick tick")
        child.sendintr()
        child.expect_exact("(stopped: this question and its partial answer are not kept)")
        child.expect_exact(PROMPT, timeout=5)
        wait_until(lambda: worker_in_flight(stack, "talk") == 0, 5, what="the worker to stop")
        # Neither the question nor the partial answer reached the next prompt.
        child.sendline("Are you there?")
        child.expect_exact("I am here.")
        child.expect_exact(PROMPT)
        child.sendintr()  # at the prompt: a hint, not an exit
        child.expect_exact("(Ctrl-D or /exit leaves)")
        child.sendeof()
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert child.exitstatus == 0


def test_chat_with_an_unknown_model_ends_with_the_close_names(stack: Stack) -> None:
    result = lmx(stack, "chat", "tallk", input="hello\n")
    assert result.returncode == 1
    assert error_line(result) == "lmx: unknown model 'tallk' (did you mean talk?)"
