"""The one small interface every inference backend implements.

Everything above it (chat templates, tool and reasoning parsing, stop sequences, usage,
SSE framing) lives once in the worker, so every backend answers the same way.
`generate` is a plain blocking iterator: the worker runs it on a thread and checks
`should_stop` between tokens, which is how a client disconnect stops generation.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

from workers.contract.health import PromptCacheStats


@dataclass(frozen=True)
class Sampling:
    max_tokens: int = 256
    temperature: float = 0.8
    top_p: float = 0.95
    seed: int | None = None
    # A JSON schema the output must match (grammar-constrained where supported).
    json_schema: dict[str, Any] | None = None
    # Number of top logprobs wanted per token (None: no logprobs).
    top_logprobs: int | None = None


@dataclass(frozen=True)
class Token:
    text: str
    token_id: int
    logprob: float | None = None
    top_logprobs: dict[str, float] | None = None


class BackendError(RuntimeError):
    """A backend could not do what was asked (bad file, unsupported feature)."""


class Backend(ABC):
    name: ClassVar[str]
    supports_json_schema: ClassVar[bool] = False
    supports_logprobs: ClassVar[bool] = False

    @abstractmethod
    def load(self) -> None:
        """Load the model; raise BackendError with a one-line reason on failure."""

    @property
    @abstractmethod
    def chat_template(self) -> str | None:
        """The model's own Jinja chat template, if it ships one."""

    @property
    def special_tokens(self) -> dict[str, str]:
        """Template variables such as bos_token and eos_token."""
        return {}

    @abstractmethod
    def count_tokens(self, text: str) -> int: ...

    @abstractmethod
    def generate(
        self,
        prompt: str,
        sampling: Sampling,
        should_stop: Callable[[], bool],
        on_cached: Callable[[int], None] | None = None,
    ) -> Iterator[Token]:
        """Yield tokens until end-of-sequence, max_tokens, or should_stop() is true.
        `on_cached` hears, once, how many prompt tokens came from the prompt cache."""

    def warm(self, prompt: str) -> None:  # noqa: B027 (an optional hook, not abstract)
        """Prefill `prompt` into the prompt cache (a backend without one ignores it)."""

    def prompt_cache_stats(self) -> PromptCacheStats | None:
        return None

    def close(self) -> None:  # noqa: B027 (an optional hook, not abstract)
        """Stop the backend's own threads and keep what should outlive the process."""

    def embed(self, texts: list[str]) -> list[list[float]]:
        raise BackendError(f"the {self.name} backend does not compute embeddings")

    def memory_bytes(self) -> int | None:
        """Accelerator memory held by the model, where the backend can tell (MLX)."""
        return None
