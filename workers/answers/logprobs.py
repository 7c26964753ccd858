"""Token logprobs in the two shapes OpenAI uses: chat (`content` entries) and the
legacy completions arrays."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from workers.backends.base import Token


def chat_entries(tokens: Sequence[Token]) -> list[dict[str, Any]]:
    return [_chat_entry(token) for token in tokens if token.logprob is not None]


def _chat_entry(token: Token) -> dict[str, Any]:
    top = token.top_logprobs or {}
    return {
        **_entry(token.text, token.logprob),
        "top_logprobs": [_entry(text, logprob) for text, logprob in top.items()],
    }


def _entry(text: str, logprob: float | None) -> dict[str, Any]:
    return {"token": text, "logprob": logprob, "bytes": list(text.encode())}


class CompletionLogprobs:
    """Accumulates the completions-style arrays; text offsets count from the answer start."""

    def __init__(self) -> None:
        self.tokens: list[str] = []
        self.token_logprobs: list[float | None] = []
        self.top_logprobs: list[dict[str, float]] = []
        self.text_offset: list[int] = []
        self._offset = 0

    def add(self, tokens: Sequence[Token]) -> dict[str, Any]:
        """Record tokens; returns the arrays for just these tokens (one stream chunk)."""
        part = CompletionLogprobs()
        part._offset = self._offset
        for token in tokens:
            part._append(token)
            self._append(token)
        return part.as_dict()

    def as_dict(self) -> dict[str, Any]:
        return {
            "tokens": self.tokens,
            "token_logprobs": self.token_logprobs,
            "top_logprobs": self.top_logprobs,
            "text_offset": self.text_offset,
        }

    def _append(self, token: Token) -> None:
        self.tokens.append(token.text)
        self.token_logprobs.append(token.logprob)
        self.top_logprobs.append(dict(token.top_logprobs or {}))
        self.text_offset.append(self._offset)
        self._offset += len(token.text)
