"""A deterministic backend for tests of everything above the backend.

It replays configured text at a configured pace and can fail on cue: slow loads, failed
loads, crashes mid-answer. With token_delay_s 0 it answers instantly.

The JSON file it reads:
  {"chat_template": null, "load_delay_s": 0, "fail_load": null, "token_delay_s": 0.0,
   "replies": [{"match": "substring of the prompt", "text": "..."}], "default": "text",
   "fail_after_tokens": null, "embedding_dim": 8, "embed_delay_s": 0}
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from workers.backends.base import Backend, BackendError, Sampling, Token

# Small pieces (at most three visible characters), so markup like <tool_call> arrives split
# across tokens the way a real tokenizer splits it.
_TOKEN = re.compile(r"\s*\S{1,3}|\s+")


@dataclass(frozen=True)
class Script:
    chat_template: str | None = None
    load_delay_s: float = 0.0
    fail_load: str | None = None
    token_delay_s: float = 0.0
    replies: tuple[tuple[str, str], ...] = ()
    default: str = "OK"
    fail_after_tokens: int | None = None
    embedding_dim: int = 8
    embed_delay_s: float = 0.0
    special_tokens: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Script:
        replies = tuple((r["match"], r["text"]) for r in data.get("replies", []))
        return cls(
            chat_template=data.get("chat_template"),
            load_delay_s=float(data.get("load_delay_s", 0.0)),
            fail_load=data.get("fail_load"),
            token_delay_s=float(data.get("token_delay_s", 0.0)),
            replies=replies,
            default=data.get("default", "OK"),
            fail_after_tokens=data.get("fail_after_tokens"),
            embedding_dim=int(data.get("embedding_dim", 8)),
            embed_delay_s=float(data.get("embed_delay_s", 0.0)),
            special_tokens=dict(data.get("special_tokens", {})),
        )


def split_tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


class ScriptedBackend(Backend):
    name: ClassVar[str] = "scripted"
    supports_logprobs: ClassVar[bool] = True

    def __init__(self, script_path: Path, context_length: int = 4096) -> None:
        self._path = script_path
        self._context_length = context_length
        self._script = Script()

    def load(self) -> None:
        script = self._read_script()
        time.sleep(script.load_delay_s)
        if script.fail_load:
            raise BackendError(script.fail_load)
        self._script = script

    @property
    def chat_template(self) -> str | None:
        return self._script.chat_template

    @property
    def special_tokens(self) -> dict[str, str]:
        return self._script.special_tokens

    def count_tokens(self, text: str) -> int:
        return len(split_tokens(text))

    def generate(
        self,
        prompt: str,
        sampling: Sampling,
        should_stop: Callable[[], bool],
        on_cached: Callable[[int], None] | None = None,
    ) -> Iterator[Token]:
        pieces = split_tokens(self._reply_for(prompt))[: sampling.max_tokens]
        for index, piece in enumerate(pieces):
            if should_stop():
                return
            if index == self._script.fail_after_tokens:
                raise BackendError(f"scripted failure after {index} tokens")
            if self._script.token_delay_s:
                time.sleep(self._script.token_delay_s)
            yield _token(piece, index, sampling.top_logprobs)

    def embed(self, texts: list[str]) -> list[list[float]]:
        time.sleep(self._script.embed_delay_s)
        return [_hash_embedding(text, self._script.embedding_dim) for text in texts]

    def _reply_for(self, prompt: str) -> str:
        for match, text in self._script.replies:
            if match in prompt:
                return text
        return self._script.default

    def _read_script(self) -> Script:
        try:
            return Script.from_json(json.loads(self._path.read_text()))
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise BackendError(f"cannot read script {self._path.name}: {error}") from None


def _token(piece: str, index: int, top_logprobs: int | None) -> Token:
    # The script is certain of every token: probability 1, logprob 0.
    top = {piece: 0.0} if top_logprobs else None
    return Token(piece, index, 0.0 if top_logprobs is not None else None, top)


def _hash_embedding(text: str, dim: int) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    raw = [(digest[i % len(digest)] - 127.5) / 127.5 for i in range(dim)]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    return [x / norm for x in raw]
