"""Section 5: an agent's conversation, turn by turn, against each server's prompt cache.

A long system prompt (an agent's instructions), then turns that each resend the whole
conversation, as Claude Code or a Codex-style client does. Between turns 2 and 3 another
client sends a conversation of its own; before turn 4 our model is unloaded and loaded
again (the disk tier). Time to first token of each turn, per backend, for our worker,
the gateway and the library's own server; each gets its own conversation, so none
profits from another's cache.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Iterable
from typing import Any

import httpx

from scripts.benchmarks import report
from scripts.benchmarks.servers import library_server
from scripts.benchmarks.stacks import LLAMA_ID, MLX_ID, real_stack, wait_ready, worker_url
from scripts.benchmarks.streams import Clock

# System prompt sizes in tokens (about): MLX prefills ~7 tokens/s on this CPU (a 1,500-token
# cold turn would take 3.5 minutes, and the scenario has six), so its conversation is
# shorter here; the ratios are what the goals speak of.
PROMPT_TOKENS = {"llama_cpp": 1500, "mlx": 600}
QUICK_TOKENS = {"llama_cpp": 600, "mlx": 100}
# Conversations per target, each turn's median reported: one cold turn varied by a third
# from run to run on these shared cores. MLX's take minutes each, so it has one.
REPEATS = {"llama_cpp": 3, "mlx": 1}
MODEL_IDS = {"llama_cpp": LLAMA_ID, "mlx": MLX_ID}
TURNS = ["Summarise rule 3.", "And rule 7?", "Which rule matters most?", "Thanks. One more?"]
MAX_TOKENS = 8
TIMEOUT_S = 900
GOALS = {"warm": 0.10, "after another client": 0.15, "after unload + reload": 0.25}


def run(quick: bool) -> dict[str, Any]:
    sizes = QUICK_TOKENS if quick else PROMPT_TOKENS
    return {
        backend: measure_backend(backend, sizes[backend], 1 if quick else REPEATS[backend])
        for backend in MODEL_IDS
    }


def measure_backend(backend: str, tokens: int, repeats: int) -> dict[str, Any]:
    model_id = MODEL_IDS[backend]
    found: dict[str, Any] = {"system_prompt_words": _words(tokens), "conversations": repeats}
    with real_stack([model_id], auto_load=True) as stack:
        direct = worker_url(stack, model_id)

        def reload() -> None:
            with httpx.Client(base_url=stack.url, timeout=TIMEOUT_S, trust_env=False) as c:
                c.post("/admin/models/unload", json={"model": model_id}).raise_for_status()
                c.post("/admin/models/load", json={"model": model_id}).raise_for_status()
            wait_ready(stack, model_id, 180)

        found["our worker, direct"] = _guarded(
            lambda: _medians(
                conversation(direct, model_id, tokens, f"direct-{i}") for i in range(repeats)
            )
        )
        found["through the gateway"] = _guarded(
            lambda: _medians(
                conversation(stack.url, model_id, tokens, f"gateway-{i}", reload)
                for i in range(repeats)
            )
        )
    found["library's own server"] = _guarded(lambda: _library(backend, tokens, repeats))
    return found


def _medians(conversations: Iterable[dict[str, float]]) -> dict[str, float]:
    """Each turn's median over the conversations (each a dict of turn: TTFT ms)."""
    done = list(conversations)
    return {label: statistics.median(c[label] for c in done) for label in done[0]}


def conversation(
    url: str, model: str | None, tokens: int, salt: str, reload: Callable[[], None] | None = None
) -> dict[str, float]:
    """TTFT in ms of each turn; `salt` makes this target's prompts its own."""
    # A first request pays one-time costs (weights paged in, MLX's lazy load, kernels):
    # a short one here, so the cold turn measures the prompt, not the server's first use.
    _ttft(url, model, [{"role": "user", "content": f"Hello, {salt}."}])
    messages: list[dict[str, str]] = [{"role": "system", "content": _system(salt, tokens)}]
    other = [{"role": "system", "content": _system(salt + "-other", tokens)}]
    found: dict[str, float] = {}
    for turn, label in enumerate(("cold", "warm", "after another client", "after unload + reload")):
        if label == "after another client":
            _ttft(url, model, [*other, {"role": "user", "content": TURNS[0]}])
        if label == "after unload + reload":
            if reload is None:
                break
            reload()
        messages.append({"role": "user", "content": TURNS[turn]})
        found[label], answer = _ttft(url, model, messages)
        messages.append({"role": "assistant", "content": answer})
    return found


def _library(backend: str, tokens: int, repeats: int) -> dict[str, float]:
    with library_server(backend) as url:
        # No `model`: mlx_lm.server would try to load one by that name.
        return _medians(conversation(url, None, tokens, f"library-{i}") for i in range(repeats))


def _ttft(url: str, model: str | None, messages: list[dict[str, str]]) -> tuple[float, str]:
    payload: dict[str, Any] = {"messages": messages, "temperature": 0}
    payload |= {"max_tokens": MAX_TOKENS, "stream": True}
    if model is not None:
        payload["model"] = model
    clock, text = Clock(), []
    with (
        httpx.Client(timeout=TIMEOUT_S, trust_env=False) as client,
        client.stream("POST", url + "/v1/chat/completions", json=payload) as reply,
    ):
        reply.raise_for_status()
        for line in reply.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            choices = json.loads(line[6:]).get("choices") or [{}]
            piece = (choices[0].get("delta") or {}).get("content")
            if piece:
                clock.piece()
                text.append(piece)
    return round(clock.sample().ttft_s * 1e3, 1), "".join(text)


def _system(salt: str, tokens: int) -> str:
    rules = " ".join(f"Rule {i}: check the {salt} result twice." for i in range(_words(tokens)))
    return f"You are the {salt} coding agent. {rules}"


def _words(tokens: int) -> int:
    return max(1, tokens // 12)  # one rule is about 12 tokens


def _guarded(measure: Callable[[], dict[str, float]]) -> dict[str, Any]:
    try:
        return measure()
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {str(exc)[-300:]}"}


def text(results: dict[str, Any]) -> str:
    labels = ["cold", "warm", "after another client", "after unload + reload"]
    rows = []
    for backend, paths in results.items():
        if "error" in paths:
            rows.append([backend, paths["error"]])
            continue
        for path, turns in paths.items():
            if not isinstance(turns, dict):
                continue
            if "error" in turns:
                rows.append([f"{backend}: {path}", turns["error"]])
                continue
            cells = [_cell(turns, label) for label in labels]
            rows.append([f"{backend}: {path}", *cells])
    goals = ", ".join(f"{label} <= {ratio:.0%} of cold" for label, ratio in GOALS.items())
    title = (
        "5. agent conversation, time to first token ms (ratio to cold), medians of"
        f" {_conversations(results)} conversations per target; goals: {goals}"
    )
    return report.table(title, ["", *labels], rows)


def _cell(turns: dict[str, float], label: str) -> str:
    if label not in turns:
        return "-"
    value, cold = turns[label], turns.get("cold") or 0
    return f"{value:.0f}" if label == "cold" or not cold else f"{value:.0f} ({value / cold:.2f})"


def _conversations(results: dict[str, Any]) -> str:
    counts = {f"{backend} {found.get('conversations', 1)}" for backend, found in results.items()
              if isinstance(found, dict) and "error" not in found}  # fmt: skip
    return ", ".join(sorted(counts))
