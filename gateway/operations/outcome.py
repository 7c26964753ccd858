"""What a finished request came to, read from its ticket (gateway.operations.requests)
once the client has its answer: the one record the request history keeps and the
metrics count, so the two cannot disagree.

Everything here runs once per request, after the last byte went out; the hot path only
left references on the ticket. Token counts are the worker's own: a stream's trailer
(workers.contract.trailer), a whole answer's `usage`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from gateway.operations.requests import RequestTicket, client_address
from workers.contract.sse import DONE
from workers.contract.trailer import StreamTrailer

# The most of a request body or an answer text a history entry keeps (logging.capture_bodies).
CAPTURE_LIMIT = 64 * 1024
CLIENT_LEFT = 499  # as a cancel: the request ended without its answer, not a server failure
_USAGE_KEY = b'"usage":'
_ERROR_EVENT = b'data: {"error":'


@dataclass(frozen=True, slots=True)
class FinishedRequest:
    id: str
    model: str | None  # the concrete model tried last; None: no model was reached
    requested: str | None  # what the client asked for (an id, an alias, a preset)
    route: str
    status: int
    stream: bool
    client: str | None
    started: float  # unix time of arrival
    duration_s: float
    ttft_s: float | None  # arrival to the first output the worker streamed
    prompt_tokens: int | None
    completion_tokens: int | None
    error: str | None
    request_body: str | None = None  # only with logging.capture_bodies
    answer: str | None = None  # likewise, and only for whole answers

    @property
    def generating_s(self) -> float:
        """The time spent producing output: after the first token when it is known."""
        return self.duration_s - (self.ttft_s or 0.0)

    @property
    def tokens_per_s(self) -> float | None:
        if not self.completion_tokens or self.generating_s <= 0:
            return None
        return self.completion_tokens / self.generating_s

    @property
    def inter_token_s(self) -> float | None:
        """The mean gap between a stream's tokens after its first."""
        if self.ttft_s is None or not self.completion_tokens or self.completion_tokens < 2:
            return None
        return self.generating_s / (self.completion_tokens - 1)

    def view(self) -> dict[str, Any]:
        """The entry of GET /admin/requests/recent."""
        entry = {
            "id": self.id,
            "model": self.model,
            "requested": self.requested,
            "route": self.route,
            "status": self.status,
            "stream": self.stream,
            "client": self.client,
            "started": round(self.started, 3),
            "ttft_ms": _ms(self.ttft_s),
            "duration_ms": _ms(self.duration_s),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "tokens_per_s": None if self.tokens_per_s is None else round(self.tokens_per_s, 2),
            "error": self.error,
        }
        if self.request_body is not None:
            entry["request_body"] = self.request_body
            entry["answer"] = self.answer
        return entry


def finished_request(ticket: RequestTicket, ended: float, capture: bool) -> FinishedRequest:
    duration = ended - ticket.started
    status, error = _ending(ticket)
    trailer = ticket.trailer or StreamTrailer.find(ticket.tail)
    prompt, completion = _token_counts(ticket, trailer)
    answer = _answer_json(ticket.answer) if capture else None
    return FinishedRequest(
        id=ticket.id,
        model=ticket.model,
        requested=ticket.requested,
        route=ticket.route,
        status=status,
        stream=ticket.stream,
        client=client_address(ticket.client),
        started=time.time() - (time.monotonic() - ticket.started),
        duration_s=duration,
        ttft_s=_ttft(ticket, trailer, duration),
        prompt_tokens=prompt,
        completion_tokens=completion,
        error=error,
        request_body=_captured(ticket.body) if capture else None,
        answer=_answer_text(answer) if answer is not None else None,
    )


def _ending(ticket: RequestTicket) -> tuple[int, str | None]:
    """The status the request ended with, and why it failed (None: it did not)."""
    if ticket.error is not None:
        return ticket.error.status, ticket.error.message
    if ticket.status == 0 or (ticket.client_left and not ticket.tail.endswith(DONE)):
        # A client that closes once it has read `data: [DONE]` (a benchmark run, many
        # SDKs) had its whole answer: only one that left before that counts as gone.
        return CLIENT_LEFT, "the client closed the connection before the answer ended"
    if ticket.status >= 400:  # a worker's refusal, relayed as it came
        return ticket.status, _error_message(ticket.answer or ticket.tail, ticket.status)
    event = ticket.tail.rfind(_ERROR_EVENT)
    if event >= 0 and StreamTrailer.find(ticket.tail) is None:
        # A worker's stream that failed after its head: its error event, then [DONE].
        body = ticket.tail[event + len(b"data: ") :].split(b"\n", 1)[0]
        return 502, _error_message(body, 502)
    return ticket.status, None


def _error_message(body: bytes | dict[str, Any] | None, status: int) -> str:
    try:
        data = json.loads(body) if isinstance(body, bytes) else body
        return str(data["error"]["message"])  # type: ignore[index]
    except (ValueError, KeyError, TypeError):
        return f"HTTP {status}"


def _token_counts(
    ticket: RequestTicket, trailer: StreamTrailer | None
) -> tuple[int | None, int | None]:
    if trailer is not None:
        return trailer.prompt_tokens, trailer.completion_tokens
    usage = _usage(ticket.answer)
    if usage is None:
        return None, None
    return _count(usage.get("prompt_tokens")), _count(usage.get("completion_tokens"))


def _usage(answer: bytes | dict[str, Any] | None) -> dict[str, Any] | None:
    """A whole answer's `usage`. In the worker's bytes it is the last key, so it is found
    from the end and decoded alone, not with the whole (maybe long) answer."""
    if isinstance(answer, bytes):
        at = answer.rfind(_USAGE_KEY)
        if at < 0:
            return None
        try:
            usage, _ = json.JSONDecoder().raw_decode(answer[at + len(_USAGE_KEY) :].decode())
        except (ValueError, UnicodeDecodeError):
            return None
    else:
        usage = answer.get("usage") if answer is not None else None
    return usage if isinstance(usage, dict) else None


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _ttft(ticket: RequestTicket, trailer: StreamTrailer | None, duration: float) -> float | None:
    """Arrival to the worker's first output: the gateway's time until it sent the request
    to the worker (a load included), then the worker's own time from its arrival there.
    Both are durations, each on its own process's clock; the sum cannot exceed the whole."""
    if trailer is None or trailer.first_output_s is None or not ticket.sent:
        return None
    return min(ticket.sent - ticket.started + trailer.first_output_s, duration)


def _answer_json(answer: bytes | dict[str, Any] | None) -> dict[str, Any] | None:
    if isinstance(answer, bytes):
        try:
            answer = json.loads(answer)
        except ValueError:
            return None
    return answer if isinstance(answer, dict) else None


def _answer_text(answer: dict[str, Any]) -> str | None:
    """A chat or text completion's text (None for other answers: embeddings, counts)."""
    try:
        choice = answer["choices"][0]
        text = choice["message"]["content"] if "message" in choice else choice["text"]
    except (KeyError, IndexError, TypeError):
        return None
    return text[:CAPTURE_LIMIT] if isinstance(text, str) else None


def _captured(body: bytes) -> str:
    return body[:CAPTURE_LIMIT].decode("utf-8", "replace")


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)
