"""The CLI's HTTP client for the gateway, and the errors a command ends with.

Every failure becomes a `CliError`: one line for the user and an exit code. A refused
connection means the gateway is not running (its own code, so scripts can tell); an
answer in the OpenAI error envelope becomes its message; an unknown model gets the close
names the gateway knows.
"""

from __future__ import annotations

import contextlib
import difflib
from collections.abc import Iterator
from typing import Any

import httpx

from gateway.cli.settings import Settings, from_environment
from gateway.cli.sse import MalformedEvent, sse_payloads

EXIT_ERROR = 1  # the gateway refused or failed; an unknown model
EXIT_USAGE = 2  # bad arguments (typer's own code)
EXIT_UNREACHABLE = 3  # nothing answers at LMX_URL

CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 30.0
# Loads wait for the worker to be ready (workers.load_timeout_s, 180 s by default);
# generations and pulls may be silent for long stretches.
LONG_READ_TIMEOUT_S = 3600.0
NO_ROUTE = "not_found"  # the gateway's code for a path it does not serve


class CliError(Exception):
    """What a command failed with: shown as `lmx: <message>`, exits with `exit_code`."""

    def __init__(self, message: str, exit_code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class GatewayError(CliError):
    """The gateway answered with an error envelope."""

    def __init__(self, status: int, message: str, code: str | None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class Client:
    def __init__(self, settings: Settings, transport: httpx.BaseTransport | None = None) -> None:
        self.settings = settings
        timeout = httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S)
        self._http = httpx.Client(
            base_url=settings.url, timeout=timeout, trust_env=False, transport=transport
        )

    @property
    def url(self) -> str:
        return self.settings.url

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, path: str, model: str | None = None, **params: Any) -> Any:
        return self._call("GET", path, model, params=params or None)

    def post(self, path: str, body: dict[str, Any], model: str | None = None) -> Any:
        return self._call("POST", path, model, json=body, timeout=_long_timeout())

    def delete(self, path: str, model: str | None = None) -> Any:
        return self._call("DELETE", path, model)

    @contextlib.contextmanager
    def stream(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        model: str | None = None,
        **params: Any,
    ) -> Iterator[Iterator[Any]]:
        """The JSON payloads of an SSE answer; leaving the block closes the stream, so the
        gateway sees the client go (and stops a generation)."""
        request = self._http.build_request(
            method,
            path,
            json=body,
            params=params or None,
            headers=self._auth(path),
            timeout=_long_timeout(),
        )
        with self._transport_errors():
            response = self._http.send(request, stream=True)
        try:
            if response.status_code >= 400:
                response.read()
                self._refuse(response, model)
            with self._transport_errors():
                yield sse_payloads(response.iter_lines())
        finally:
            response.close()

    def model_names(self) -> list[str]:
        """Every id and alias the gateway serves."""
        return [m["id"] for m in self.get("/v1/models")["data"]]

    # ---- internals ----------------------------------------------------------------------

    def _call(self, method: str, path: str, model: str | None, **kwargs: Any) -> Any:
        with self._transport_errors():
            response = self._http.request(method, path, headers=self._auth(path), **kwargs)
        if response.status_code >= 400:
            self._refuse(response, model)
        return response.json()

    def _auth(self, path: str) -> dict[str, str]:
        s = self.settings
        key = s.admin_key if path.startswith("/admin/") else s.api_key
        return {"Authorization": f"Bearer {key}"} if key else {}

    @contextlib.contextmanager
    def _transport_errors(self) -> Iterator[None]:
        try:
            yield
        except (httpx.ConnectError, httpx.ConnectTimeout):
            raise CliError(
                f"the gateway at {self.url} is not running "
                "(start it with `lmx serve` or ./scripts/serve)",
                EXIT_UNREACHABLE,
            ) from None
        except httpx.TransportError as exc:
            raise CliError(f"the gateway at {self.url} failed to answer: {exc!r}") from None
        except MalformedEvent as exc:
            raise CliError(f"the gateway at {self.url} sent a malformed event: {exc}") from None

    def _refuse(self, response: httpx.Response, model: str | None) -> None:
        status, message, code = _envelope(response)
        if status == 401:
            variable = "LMX_ADMIN_KEY" if response.url.path.startswith("/admin/") else "LMX_API_KEY"
            message = f"{message}; set {variable}"
        elif code == NO_ROUTE and message.startswith("no route "):
            message = (
                f"the gateway at {self.url} does not serve {response.url.path} (older than lmx?)"
            )
        elif status == 404 and model is not None:
            raise self._unknown_model(model, message) from None
        raise GatewayError(status, message, code)

    def _unknown_model(self, name: str, message: str) -> GatewayError:
        try:
            names = self.model_names()
        except CliError:
            return GatewayError(404, message, "model_not_found")
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
        hint = f"did you mean {' or '.join(close)}?" if close else f"known: {', '.join(names)}"
        return GatewayError(404, f"unknown model {name!r} ({hint})", "model_not_found")


def connect() -> Client:
    """A client for the gateway that LMX_URL (or the config file) names."""
    return Client(from_environment())


def _envelope(response: httpx.Response) -> tuple[int, str, str | None]:
    status = response.status_code
    try:
        error = response.json()["error"]
        return status, str(error["message"]), error.get("code")
    except (ValueError, KeyError, TypeError):
        text = response.text.strip().splitlines()
        return status, f"HTTP {status}: {text[0] if text else response.reason_phrase}", None


def _long_timeout() -> httpx.Timeout:
    return httpx.Timeout(LONG_READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S)
