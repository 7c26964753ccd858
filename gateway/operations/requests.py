"""The requests in flight at the gateway, for `GET /admin/requests` and their cancel.

Every request to a model route holds a ticket from its arrival to its end (the route's
`finally`). The proxy notes on it which model it waits for or runs on, and the relays
count the chunks they pass on. The ticket travels in a context variable, so the proxy and
the relays need no extra parameter on the hot path.

At its end the ticket also holds what the request came to, as cheap references noted
where things happen (the status sent, the error raised, the answer or a stream's last
bytes); gateway.operations.outcome reads them once the client has its answer, for the
request history and the metrics.

Cancelling cancels the request's task while the proxy holds the worker's answer open. The
proxy first closes the upstream connection (so the worker sees its client go and stops
generating, exactly as on a disconnect), then turns the cancellation into an ApiError
(499 `request_cancelled`), which every route already renders in its own API's envelope:
an error response, or an error event if the stream had begun.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import secrets
import time
from collections.abc import Callable
from contextvars import ContextVar, Token
from typing import Any

from starlette.types import Scope

from gateway.events import log_event
from workers.contract.errors import ApiError
from workers.contract.trailer import StreamTrailer

# 499 as nginx uses it ("closed request"): not a server failure, and one the OpenAI and
# Anthropic SDKs do not retry (they retry 408, 409, 429 and 5xx), so a cancel stays one.
CANCELLED_STATUS = 499
CANCELLED_CODE = "request_cancelled"


class RequestState(enum.StrEnum):
    RECEIVING = "receiving"  # the body is still arriving; not listed (no model yet)
    WAITING_FOR_LOAD = "waiting_for_load"
    RUNNING = "running"  # sent to the worker, which may still queue it


def cancelled_error() -> ApiError:
    return ApiError(
        CANCELLED_STATUS, "the request was cancelled by an operator", code=CANCELLED_CODE
    )


class RequestTicket:
    """One request's entry, and the window in which a cancel can still reach it."""

    __slots__ = (
        "_proxied",
        "_proxying",
        "answer",
        "body",
        "cancelled",
        "client",
        "client_left",
        "error",
        "id",
        "model",
        "requested",
        "route",
        "sent",
        "started",
        "state",
        "status",
        "stream",
        "tail",
        "task",
        "tokens",
        "trailer",
    )

    def __init__(self, request_id: str, scope: Scope, task: asyncio.Task[Any] | None) -> None:
        self.id = request_id
        self.route: str = scope.get("path", "")
        self.client: tuple[str, int] | None = scope.get("client")
        self.started = time.monotonic()
        self.task = task
        self.model: str | None = None
        self.state = RequestState.RECEIVING
        self.stream = False
        self.tokens = 0  # chunks relayed so far, on a stream
        self.cancelled = False
        self._proxying = False
        self._proxied = False
        # What the request came to (gateway.operations.outcome reads these at its end):
        self.requested: str | None = None  # the client's `model`, as written
        self.body = b""
        # The response head's status (gateway.asgi.start_response notes it: every answer of
        # a model route but an error response, whose status is `error`'s); 0: none went out.
        self.status = 0
        self.error: ApiError | None = None  # the error the request ended with
        self.client_left = False
        self.sent = 0.0  # when it was last sent to a worker (monotonic)
        self.tail = b""  # a relayed stream's last bytes: its trailer, or an error event
        self.trailer: StreamTrailer | None = None  # a stream read back event by event
        self.answer: bytes | dict[str, Any] | None = None  # a whole answer, as read

    def asked_for(self, name: str) -> None:
        if self.requested is None:  # the first name: Ollama's `x:latest` is tried as `x` too
            self.requested = name

    def comment(self, line: str) -> None:
        """A comment line of a worker's stream read back event by event."""
        trailer = StreamTrailer.from_line(line)
        if trailer is not None:
            self.trailer = trailer

    def trying(self, model_id: str, ready: bool) -> None:
        """The proxy turns to `model_id` (the next of an alias chain, after a failure)."""
        self.model = model_id
        self.state = RequestState.RUNNING if ready else RequestState.WAITING_FOR_LOAD

    def running(self) -> None:
        """The proxy sends the request to the worker now."""
        self.state = RequestState.RUNNING
        self.sent = time.monotonic()

    def cancellable(self) -> RequestTicket:
        """`with ticket.cancellable():` around the proxy's work. There a cancel becomes
        `cancelled_error()` once the upstream answer is closed (the proxy's own `finally`
        runs first, inside the block). A class, not @contextmanager: this runs per request."""
        return self

    def __enter__(self) -> None:
        if self.cancelled:
            raise cancelled_error()
        self._proxying = True

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: Any
    ) -> None:
        self._proxying = False
        self._proxied = True
        if isinstance(error, ApiError):  # every failure the proxy's work ends with
            self.error = error
        if kind is asyncio.CancelledError and self.cancelled and self.task is not None:
            self.task.uncancel()
            self.error = cancelled_error()
            raise self.error from None

    def cancel(self) -> bool:
        """False when the proxy is done with the request: it is only sending what it has."""
        if self._proxied or self.task is None:
            return False
        if not self.cancelled:
            self.cancelled = True
            if self._proxying:
                self.task.cancel()
            # else: the body is still arriving; the proxy refuses it when it starts
        return True

    def view(self, now: float) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model,
            "route": self.route,
            "state": self.state.value,
            "age_s": round(now - self.started, 3),
            "tokens": self.tokens,
            "client": client_address(self.client),
            "stream": self.stream,
        }


def client_address(client: tuple[str, int] | None) -> str | None:
    if client is None:
        return None
    host, port = client
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# A ticket that belongs to no registry: what the proxy sees when nobody tracks the request.
_UNTRACKED = RequestTicket("req_untracked", {}, None)
current_request: ContextVar[RequestTicket] = ContextVar("lmx_request", default=_UNTRACKED)


Finished = Callable[[RequestTicket, float], None]


class RequestRegistry:
    def __init__(self, finished: Finished | None = None) -> None:
        """`finished(ticket, ended)` is called as each request ends (monotonic `ended`)."""
        self._tickets: dict[str, RequestTicket] = {}
        self._finished = finished
        # Ids: this gateway's random prefix and a count (cheaper than random bytes each).
        self._prefix = secrets.token_hex(4)
        self._count = itertools.count(1)

    def track(self, scope: Scope) -> Tracking:
        """`with registry.track(scope):` holds a ticket for the request running in this
        task, until it ends."""
        request_id = f"req_{self._prefix}{next(self._count):08x}"
        ticket = RequestTicket(request_id, scope, asyncio.current_task())
        return Tracking(self._tickets, ticket, self._finished)

    def listing(self) -> list[dict[str, Any]]:
        """Requests whose model is known, oldest first."""
        now = time.monotonic()
        tickets = [t for t in self._tickets.values() if t.model is not None]
        return [t.view(now) for t in sorted(tickets, key=lambda t: t.started)]

    def cancel(self, request_id: str) -> None:
        ticket = self._tickets.get(request_id)
        if ticket is None or not ticket.cancel():
            raise ApiError(
                404, f"no request {request_id!r} in flight", param="id", code="request_not_found"
            )
        log_event("request_cancelled", id=ticket.id, model=ticket.model, route=ticket.route)


class Tracking:
    """A ticket in the registry and in `current_request` for one request's lifetime."""

    __slots__ = ("finished", "ticket", "tickets", "token")

    def __init__(
        self, tickets: dict[str, RequestTicket], ticket: RequestTicket, finished: Finished | None
    ) -> None:
        self.tickets = tickets
        self.ticket = ticket
        self.finished = finished
        self.token: Token[RequestTicket] | None = None

    def __enter__(self) -> RequestTicket:
        self.tickets[self.ticket.id] = self.ticket
        self.token = current_request.set(self.ticket)
        return self.ticket

    def __exit__(self, *exc_info: object) -> None:
        if self.token is not None:
            current_request.reset(self.token)
        del self.tickets[self.ticket.id]
        if self.finished is not None:
            self.finished(self.ticket, time.monotonic())
