"""What a web page in the user's browser may make of a server on their own machine:
nothing, unless the config says so. Every port Opta-LMX opens (the gateway's and each
worker's) is wrapped in the same guard.

- `Host` must name this machine (localhost, 127.0.0.1, [::1], the bound host) or a name
  in `security.allowed_hosts`: a DNS-rebinding page's requests carry its own name.
- A request with an `Origin` must come from the server itself or from an origin in
  `security.cors_origins`; those get CORS headers and answered preflights.
- A POST must say `content-type: application/json`: a plain HTML form can send
  text/plain cross-site without any preflight.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from workers.contract.errors import ApiError

LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
_ALLOWED_METHODS = "GET, POST, DELETE, OPTIONS"
_ALLOWED_HEADERS = "authorization, content-type, x-api-key, anthropic-version, anthropic-beta"
_EXPOSED_HEADERS = "x-lmx-model, x-lmx-error-origin, x-lmx-prompt-tokens, retry-after"
_PREFLIGHT_MAX_AGE_S = "600"

Render = Callable[[Scope, ApiError], Response]


@dataclass(frozen=True)
class BrowserPolicy:
    hosts: frozenset[str]  # lower-case names, without ports
    cors_origins: frozenset[str]  # scheme://host[:port], lower-case

    @classmethod
    def build(
        cls, bound_host: str, allowed_hosts: Iterable[str], cors_origins: Iterable[str]
    ) -> BrowserPolicy:
        hosts = {*LOCAL_HOSTS, bound_host.strip("[]").lower(), *(h.lower() for h in allowed_hosts)}
        return cls(frozenset(hosts), frozenset(o.rstrip("/").lower() for o in cors_origins))

    def host_allowed(self, host_header: str | None) -> bool:
        return host_header is not None and _hostname(host_header) in self.hosts

    def origin_allowed(self, origin: str, host_header: str | None) -> bool:
        origin = origin.rstrip("/").lower()
        same_site = host_header is not None and origin.split("://", 1)[-1] == host_header.lower()
        return same_site or origin in self.cors_origins


class BrowserGuard:
    def __init__(self, app: ASGIApp, policy: BrowserPolicy, render: Render) -> None:
        self.app = app
        self.policy = policy
        self.render = render

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            await self.render(scope, refusal)(scope, receive, send)
            return
        origin = headers.get("origin")
        if origin is None or origin.rstrip("/").lower() not in self.policy.cors_origins:
            await self.app(scope, receive, send)
            return
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            await _preflight(origin)(scope, receive, send)
            return
        await self.app(scope, receive, _with_cors(send, origin))

    def _refusal(self, scope: Scope, headers: Headers) -> ApiError | None:
        host = headers.get("host")
        if not self.policy.host_allowed(host):
            message = f"Host {host!r} is not this server (security.allowed_hosts)"
            return ApiError(403, message, code="host_not_allowed")
        origin = headers.get("origin")
        if origin is not None and not self.policy.origin_allowed(origin, host):
            message = f"requests from {origin} are not allowed (security.cors_origins)"
            return ApiError(403, message, code="origin_not_allowed")
        if scope["method"] == "POST" and not _is_json(headers.get("content-type")):
            message = "request bodies must be JSON (content-type: application/json)"
            return ApiError(415, message, code="unsupported_media_type")
        return None


def _hostname(host_header: str) -> str:
    host = host_header.strip().lower()
    if host.startswith("["):  # [::1]:1234
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _is_json(content_type: str | None) -> bool:
    if content_type is None:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _preflight(origin: str) -> Response:
    return Response(
        status_code=204,
        headers={
            **_cors_headers(origin),
            "access-control-allow-methods": _ALLOWED_METHODS,
            "access-control-allow-headers": _ALLOWED_HEADERS,
            "access-control-max-age": _PREFLIGHT_MAX_AGE_S,
        },
    )


def _cors_headers(origin: str) -> dict[str, str]:
    return {
        "access-control-allow-origin": origin,
        "access-control-expose-headers": _EXPOSED_HEADERS,
        "vary": "origin",
    }


def _with_cors(send: Send, origin: str) -> Send:
    extra = [(k.encode(), v.encode()) for k, v in _cors_headers(origin).items()]

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    return sending
