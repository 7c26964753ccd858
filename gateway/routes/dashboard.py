"""The dashboard page at / and /ui, and its files under /ui/assets/. Served without a key:
the page holds no data, it fetches everything from /admin/* and /v1/* with the key the
user types in (kept in the tab's sessionStorage)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.dashboard import STATIC
from workers.contract.errors import ApiError

ASSETS_PREFIX = "/ui/assets/"

_MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    # Set here, not guessed: module scripts with a wrong type (some systems' mimetypes say
    # text/plain for .js) are refused by the browser under nosniff.
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}

# Only our own files, no inline script or style, no eval, no frames, no form posts.
# require-trusted-types-for keeps innerHTML-style sinks shut, so text from the server
# (model ids, log lines, answers) can only ever land as text.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
        "require-trusted-types-for 'script'",
    ]
)

SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",  # frame-ancestors, for browsers that predate it
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    # Revalidate every time (a 304 is cheap): an upgraded gateway serves its own page.
    "cache-control": "no-cache",
}


@dataclass(frozen=True)
class Asset:
    body: bytes
    media_type: str
    etag: str

    @classmethod
    def read(cls, path: Path) -> Asset:
        body = path.read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        return cls(body, _MEDIA_TYPES[path.suffix], etag)

    def response(self, request: Request) -> Response:
        headers = {**SECURITY_HEADERS, "etag": self.etag}
        if request.headers.get("if-none-match") == self.etag:
            return Response(status_code=304, headers=headers)
        return Response(self.body, media_type=self.media_type, headers=headers)


def read_assets(folder: Path = STATIC) -> dict[str, Asset]:
    """Every file the page may load, by its path under the folder: a lookup in this table
    is all a request can reach, so no path from a URL ever touches the disk."""
    return {
        path.relative_to(folder).as_posix(): Asset.read(path)
        for path in sorted(folder.rglob("*"))
        if path.suffix in _MEDIA_TYPES
    }


def routes() -> list[Route]:
    assets = read_assets()
    page = assets["index.html"]

    async def index(request: Request) -> Response:
        return page.response(request)

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        found = assets.get(name)
        if found is None:
            raise ApiError(404, f"no dashboard file {name!r}", code="not_found")
        return found.response(request)

    return [
        Route("/", index, methods=["GET"]),
        Route("/ui", index, methods=["GET"]),
        Route(ASSETS_PREFIX + "{name:path}", asset, methods=["GET"]),
    ]
