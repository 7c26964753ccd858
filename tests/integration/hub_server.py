"""A local Hugging Face-compatible hub for tests, on 127.0.0.1: what huggingface_hub's
downloads ask for, serving repos the test makes, recording every request it receives, and
able to cut a download off midway or answer nothing but 503.

What it answers, as the real hub does (huggingface_hub 2.x reads exactly these):

- `GET /api/models/<owner>/<name>[/revision/<rev>]`: repo info, `sha` and `siblings`.
- `GET /api/models/<owner>/<name>/tree/<rev>`: the file list with sizes, git oids and LFS
  sha256 (what `snapshot_download` reads).
- `HEAD|GET /<owner>/<name>/resolve/<rev>/<path>`: a file. Small files answer here, with
  `ETag` (the git blob oid), `X-Repo-Commit` and `Content-Length`. Large files (the real
  hub's LFS files: .gguf, .safetensors, .bin) answer 302 to their blob on another host
  name, as the hub redirects to its CDN, with `X-Linked-Etag` (the sha256) and
  `X-Linked-Size`; the client does not follow that redirect on HEAD and must not send its
  token there.
- `HEAD|GET /blobs/<sha256>` on that other name (`localhost` instead of `127.0.0.1`, the
  same server): the bytes, `Range: bytes=N-` answered with 206 and `Content-Range`.
- Errors carry `X-Error-Code` (`RepoNotFound`, `RevisionNotFound`, `EntryNotFound`), which
  is how the client tells them apart.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import socket
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

LFS_SUFFIXES = (".gguf", ".safetensors", ".bin")
CDN_HOST = "localhost"  # the same server under another name, as the hub's CDN is another host


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case


@dataclass(frozen=True)
class HubFile:
    data: bytes

    @property
    def git_oid(self) -> str:
        return hashlib.sha1(b"blob %d\0" % len(self.data) + self.data).hexdigest()

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass
class Repo:
    files: dict[str, HubFile]

    @property
    def commit(self) -> str:
        digest = hashlib.sha1()
        for name in sorted(self.files):
            digest.update(name.encode() + b"\0" + self.files[name].git_oid.encode())
        return digest.hexdigest()


class LocalHub:
    """Start with `with LocalHub() as hub:`; `hub.url` is what HF_ENDPOINT should be.

    `chunk_size` and `chunk_delay_s` pace every body, so a download lasts long enough for
    progress events. `cut_at` makes the next file GET stop after that many bytes of the
    file (the connection closes mid-body); with `down_after_cut` every request after it gets
    503 until `down` is cleared. With `honour_range` false, Range headers are ignored (200
    and the whole file), as some proxies do.
    """

    def __init__(self, chunk_size: int = 64 * 1024, chunk_delay_s: float = 0.0) -> None:
        self.repos: dict[str, Repo] = {}
        self.chunk_size = chunk_size
        self.chunk_delay_s = chunk_delay_s
        self.cut_at: int | None = None
        self.down_after_cut = False
        self.down = False
        self.honour_range = True
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add_repo(self, repo: str, files: dict[str, bytes]) -> str:
        """Create (or replace) a repo; its commit sha."""
        self.repos[repo] = Repo({name: HubFile(data) for name, data in files.items()})
        return self.repos[repo].commit

    def requests(self, method: str | None = None, path_part: str = "") -> list[Received]:
        with self._lock:
            return [
                r
                for r in self.received
                if (method is None or r.method == method) and path_part in r.path
            ]

    def ranges(self) -> list[str | None]:
        """The Range header of every GET of file bytes, in order (None: the whole file)."""
        return [r.headers.get("range") for r in self.requests("GET") if _is_bytes_path(r.path)]

    def record(self, received: Received) -> None:
        with self._lock:
            self.received.append(received)

    def take_cut(self) -> int | None:
        with self._lock:
            cut, self.cut_at = self.cut_at, None
            return cut

    def _serve(self) -> None:
        self._server.serve_forever(poll_interval=0.05)  # so stopping takes no half second

    def __enter__(self) -> LocalHub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


def _is_bytes_path(path: str) -> bool:
    return path.startswith("/blobs/") or "/resolve/" in path


def _handler(hub: LocalHub) -> type[BaseHTTPRequestHandler]:
    class Handler(_HubHandler):
        pass

    Handler.hub = hub
    return Handler


RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$")
INFO = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)(?:/revision/(?P<rev>[^/]+))?$")
TREE = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)/tree/(?P<rev>[^/]+)(?:/(?P<sub>.*))?$")
BLOB = re.compile(r"^/blobs/(?P<sha>[0-9a-f]{64})$")


class _HubHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hub: LocalHub

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the test reads hub.received instead

    def do_HEAD(self) -> None:
        self._answer(head=True)

    def do_GET(self) -> None:
        self._answer(head=False)

    def _answer(self, head: bool) -> None:
        path = unquote(urlsplit(self.path).path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.hub.record(Received(self.command, path, headers))
        if self.hub.down:
            return self._error(503, "hub is down (test)", None)
        if m := RESOLVE.match(path):
            return self._resolve(m["repo"], m["rev"], m["file"], head)
        if m := TREE.match(path):
            return self._tree(m["repo"], m["rev"], m["sub"] or "")
        if m := INFO.match(path):
            return self._info(m["repo"], m["rev"] or "main")
        if (m := BLOB.match(path)) and (found := self._blob(m["sha"])) is not None:
            return self._bytes(found, head, {"ETag": f'"{found.sha256}"'})
        self._error(404, f"no route {path}", None)

    # ---- the API ---------------------------------------------------------------------

    def _repo(self, name: str, rev: str) -> Repo | None:
        repo = self.hub.repos.get(name)
        if repo is None:
            self._error(404, "Repository not found", "RepoNotFound")
        elif rev not in ("main", repo.commit):
            self._error(404, f"Invalid rev id: {rev}", "RevisionNotFound")
            return None
        return repo

    def _info(self, name: str, rev: str) -> None:
        repo = self._repo(name, rev)
        if repo is not None:
            siblings = [{"rfilename": f} for f in sorted(repo.files)]
            self._json({"id": name, "sha": repo.commit, "siblings": siblings, "private": False})

    def _tree(self, name: str, rev: str, sub: str) -> None:
        repo = self._repo(name, rev)
        if repo is None:
            return
        entries = []
        for path, f in sorted(repo.files.items()):
            if sub and not path.startswith(sub.rstrip("/") + "/"):
                continue
            entry: dict[str, Any] = {"type": "file", "path": path, "size": len(f.data)}
            entry["oid"] = f.git_oid
            if path.endswith(LFS_SUFFIXES):
                entry["lfs"] = {"oid": f.sha256, "size": len(f.data), "pointerSize": 134}
            entries.append(entry)
        self._json(entries)

    def _resolve(self, name: str, rev: str, file: str, head: bool) -> None:
        repo = self._repo(name, rev)
        if repo is None:
            return
        found = repo.files.get(file)
        commit = {"X-Repo-Commit": repo.commit}
        if found is None:
            return self._error(404, "Entry not found", "EntryNotFound", commit)
        if file.endswith(LFS_SUFFIXES):
            location = f"http://{CDN_HOST}:{self.hub.port}/blobs/{found.sha256}"
            linked = {
                "Location": location,
                "X-Linked-Etag": f'"{found.sha256}"',
                "X-Linked-Size": str(len(found.data)),
                "ETag": f'"{found.git_oid}"',
            }
            return self._send(302, {**commit, **linked, "Content-Length": "0"}, b"")
        self._bytes(found, head, {**commit, "ETag": f'"{found.git_oid}"'})

    def _blob(self, sha: str) -> HubFile | None:
        for repo in self.hub.repos.values():
            for f in repo.files.values():
                if f.sha256 == sha:
                    return f
        return None

    # ---- bytes, ranges, cuts -----------------------------------------------------------

    def _bytes(self, f: HubFile, head: bool, extra: dict[str, str]) -> None:
        size = len(f.data)
        start, status = self._range_start(size)
        if start is None:
            return self._send(416, {"Content-Range": f"bytes */{size}", "Content-Length": "0"}, b"")
        headers = {**extra, "Accept-Ranges": "bytes", "Content-Length": str(size - start)}
        if status == 206:
            headers["Content-Range"] = f"bytes {start}-{size - 1}/{size}"
        if head:
            return self._send(status, headers, b"")
        cut = self.hub.take_cut()
        self._send(status, headers, f.data[start : cut if cut is not None else size])
        if cut is not None:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            if self.hub.down_after_cut:
                self.hub.down = True

    def _range_start(self, size: int) -> tuple[int | None, int]:
        header = self.headers.get("Range")
        if header is None or not self.hub.honour_range:
            return 0, 200
        m = re.fullmatch(r"bytes=(\d+)-", header.strip())
        if m is None or int(m[1]) >= size:
            return None, 416
        return int(m[1]), 206

    def _json(self, payload: Any) -> None:
        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
        self._send(200, headers, b"" if self.command == "HEAD" else body)

    def _error(
        self, status: int, message: str, code: str | None, extra: dict[str, str] | None = None
    ) -> None:
        body = json.dumps({"error": message}).encode()
        headers = {**(extra or {}), "Content-Type": "application/json"}
        headers["Content-Length"] = str(len(body))
        headers["X-Error-Message"] = message
        if code:
            headers["X-Error-Code"] = code
        self._send(status, headers, b"" if self.command == "HEAD" else body)

    def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        size, delay = self.hub.chunk_size, self.hub.chunk_delay_s
        try:
            for i in range(0, len(body), size):
                self.wfile.write(body[i : i + size])
                self.wfile.flush()
                if delay:
                    time.sleep(delay)
        except OSError:
            self.close_connection = True  # the client left mid-body
