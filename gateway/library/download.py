"""One pull's blocking work: ask a Hugging Face-compatible hub what to fetch, then fetch
each file into models_dir, continuing a partial file left by an earlier, interrupted pull.

huggingface_hub does the talking to the hub: the repo listing, each file's metadata (its
HEAD request with the hub's redirect, ETag and error rules), the session, the headers and
the token (from `HF_TOKEN` or the stored login; `HF_ENDPOINT` picks the hub). This module
keeps the bytes. `hf_hub_download` is not used for them: since huggingface_hub 2.x it writes
each attempt to a uniquely named temporary file and deletes it on failure
(huggingface/huggingface_hub#4228), so an interrupted download starts over, and it reads the
body 10 MiB at a time, too coarse for progress. Here the partial file has a stable name per
ETag and the next attempt asks for the rest with a Range request.

Runs in a thread; `emit` receives the progress events and must be thread-safe.
"""

from __future__ import annotations

import errno
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urljoin, urlparse

import httpx2
from huggingface_hub import HfApi, constants, get_hf_file_metadata, hf_hub_url
from huggingface_hub.errors import (
    FileMetadataError,
    GatedRepoError,
    HfHubHTTPError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

from gateway.library.pull_spec import PullSpec, check_repo_path, inside
from workers.contract.errors import ApiError

Emit = Callable[[dict[str, Any]], None]

# Partial files and the ETag of each finished file, inside the repo's folder.
STATE_DIR = PurePosixPath(".cache") / "lmx-pull"
EMIT_INTERVAL_S = 0.2
ATTEMPTS = 3  # per file, for a connection that breaks mid-transfer
RETRY_DELAY_S = 1.0
# The file a snapshot's folder is recognised by (an MLX model's config.json) comes last,
# so a folder looks like a model only once the rest of it is there.
LAST_FILES = ("config.json",)


class Cancelled(Exception):
    """The gateway is stopping; the partial file stays for the next pull."""


@dataclass(frozen=True)
class RemoteFile:
    name: str  # its path in the repo
    url: str  # where its bytes are, after the hub's redirect
    etag: str
    size: int | None
    same_host: bool  # whether that is the hub itself (the token goes only there)


@dataclass
class Download:
    spec: PullSpec
    models_dir: Path
    emit: Emit
    cancelled: threading.Event
    endpoint: str | None = None  # the hub; None: HF_ENDPOINT's, else the public one

    def run(self) -> int:
        """Fetch everything the spec names; the bytes of all its files."""
        inside(self.models_dir, self.spec.folder)
        if self.spec.file is not None:
            return self._fetch(self.spec.file, self.spec.revision)
        commit, names = self._snapshot_files()
        return sum(self._fetch(name, commit) for name in names)

    def _snapshot_files(self) -> tuple[str, list[str]]:
        """The commit the revision points at (every file is fetched from that one commit,
        as snapshot_download does) and the repo's files, LAST_FILES at the end."""
        api = HfApi(endpoint=self.endpoint)
        timeout = constants.HF_HUB_ETAG_TIMEOUT  # the library's default here is none at all
        info = api.model_info(self.spec.repo, revision=self.spec.revision, timeout=timeout)
        names = [s.rfilename for s in info.siblings or []]
        for name in names:
            try:
                check_repo_path(name, "file")
            except ApiError:
                message = f"the hub listed a file name that could leave the folder: {name!r}"
                raise ApiError(502, message, code="unsafe_path") from None
        names.sort(key=lambda n: n in LAST_FILES)
        return info.sha or self.spec.revision, names

    def _fetch(self, name: str, revision: str) -> int:
        remote = self._locate(name, revision)
        dest = inside(self.models_dir, self.spec.folder / name)
        etag_file = inside(self.models_dir, self.spec.folder / STATE_DIR / f"{name}.etag")
        if _up_to_date(dest, etag_file, remote):
            size = dest.stat().st_size
            self.emit(_downloading(name, size, size, 0.0))
            return size
        partial = etag_file.with_name(f"{Path(name).name}.{_safe(remote.etag)}.partial")
        partial.parent.mkdir(parents=True, exist_ok=True)
        _discard_stale(partial, name)
        self._transfer(remote, partial)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(partial, dest)
        etag_file.write_text(remote.etag)
        return dest.stat().st_size

    def _locate(self, name: str, revision: str) -> RemoteFile:
        url = hf_hub_url(self.spec.repo, name, revision=revision, endpoint=self.endpoint)
        meta = get_hf_file_metadata(url, endpoint=self.endpoint)
        location = urljoin(url, meta.location)
        if meta.etag is None:
            raise ApiError(502, f"the hub sent no ETag for {name}", code="hub_error")
        same_host = urlparse(location).netloc == urlparse(url).netloc
        return RemoteFile(name, location, meta.etag, meta.size, same_host)

    def _transfer(self, remote: RemoteFile, partial: Path) -> None:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                self._get(remote, partial)
                return
            except httpx2.TransportError:
                if attempt == ATTEMPTS or self.cancelled.wait(RETRY_DELAY_S):
                    raise

    def _get(self, remote: RemoteFile, partial: Path) -> None:
        offset = partial.stat().st_size if partial.exists() else 0
        if remote.size is not None and offset > remote.size:
            offset = 0
        if remote.size is not None and offset == remote.size:
            self.emit(_downloading(remote.name, offset, remote.size, 0.0))
            return
        _check_space(partial.parent, (remote.size or 0) - offset)
        headers = build_hf_headers(headers={"Accept-Encoding": "identity"})
        if not remote.same_host:
            headers.pop("authorization", None)  # a signed CDN address needs no token
        if offset:
            headers["Range"] = f"bytes={offset}-"
        timeout = constants.HF_HUB_DOWNLOAD_TIMEOUT
        with get_session().stream(
            "GET", remote.url, headers=headers, timeout=timeout, follow_redirects=True
        ) as response:
            hf_raise_for_status(response)
            if offset and not _continues_at(response, offset):
                offset = 0  # the server sent the whole file instead
            progress = Progress(remote.name, remote.size, offset, self.emit)
            with partial.open("ab") as out:
                out.truncate(offset)
                for chunk in response.iter_bytes():
                    if self.cancelled.is_set():
                        raise Cancelled
                    out.write(chunk)
                    progress.advance(len(chunk))
            progress.finish()
        got = partial.stat().st_size
        if remote.size is not None and got != remote.size:
            raise ApiError(
                502, f"{remote.name}: got {got} bytes, the hub said {remote.size}", code="hub_error"
            )


class Progress:
    """One file's `downloading` events: at most one per EMIT_INTERVAL_S, and one at its end.
    `rate_bytes_s` is the average since this request for the file began."""

    def __init__(self, name: str, total: int | None, start: int, emit: Emit) -> None:
        self.name, self.total, self.emit = name, total, emit
        self.bytes = self.start = start
        self.started = self.last = time.monotonic()

    def advance(self, n: int) -> None:
        self.bytes += n
        now = time.monotonic()
        if now - self.last >= EMIT_INTERVAL_S:
            self.last = now
            self._send(now)

    def finish(self) -> None:
        self._send(time.monotonic())

    def _send(self, now: float) -> None:
        elapsed = now - self.started
        rate = (self.bytes - self.start) / elapsed if elapsed > 0 else 0.0
        self.emit(_downloading(self.name, self.bytes, self.total, rate))


def hub_error(exc: BaseException, spec: PullSpec, endpoint: str | None = None) -> ApiError:
    """What a failed pull tells its client, in the API's error shape. Messages carry the
    hub's address and answer, never the request's headers (the token is one of them)."""
    hub = endpoint or constants.ENDPOINT
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, Cancelled):
        message = "the gateway stopped during the pull; pull again to resume"
        return ApiError(503, message, code="cancelled")
    if isinstance(exc, GatedRepoError):
        message = f"{spec.repo} is gated on {hub}: a token with access is needed (HF_TOKEN)"
        return ApiError(403, message, code="gated_repo")
    if isinstance(exc, RevisionNotFoundError):
        message = f"{spec.repo} has no revision {spec.revision!r} on {hub}"
        return ApiError(404, message, code="revision_not_found")
    if isinstance(exc, RemoteEntryNotFoundError):
        message = f"{spec.repo} has no file {spec.file!r} at {spec.revision!r} on {hub}"
        return ApiError(404, message, code="file_not_found")
    if isinstance(exc, RepositoryNotFoundError):
        message = f"no repo {spec.repo} on {hub} (or it is private and needs a token: HF_TOKEN)"
        return ApiError(404, message, code="repo_not_found")
    if isinstance(exc, HfHubHTTPError | FileMetadataError):
        return ApiError(502, f"the hub at {hub} refused: {_hub_answer(exc)}", code="hub_error")
    if isinstance(exc, httpx2.TransportError):
        return ApiError(503, f"cannot reach the hub at {hub}: {exc}", code="hub_unreachable")
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return _disk_full(str(exc))
    if isinstance(exc, OSError):
        return ApiError(500, f"writing the model failed: {exc}", code="io_error")
    return ApiError(500, f"the pull failed: {type(exc).__name__}: {exc}", code="pull_failed")


def _downloading(name: str, done: int, total: int | None, rate: float) -> dict[str, Any]:
    return {
        "status": "downloading",
        "file": name,
        "bytes": done,
        "total": total,
        "rate_bytes_s": round(rate, 1),
    }


def _up_to_date(dest: Path, etag_file: Path, remote: RemoteFile) -> bool:
    """Pulled before from the same ETag and still whole: nothing to fetch."""
    if not dest.is_file() or not etag_file.is_file():
        return False
    if remote.size is not None and dest.stat().st_size != remote.size:
        return False
    return etag_file.read_text() == remote.etag


def _discard_stale(partial: Path, name: str) -> None:
    """Partial files of the same name from another ETag: the file changed on the hub."""
    prefix, suffix = f"{Path(name).name}.", ".partial"
    for other in partial.parent.iterdir():
        n = other.name
        etag = n[len(prefix) : -len(suffix)]
        if other != partial and n.startswith(prefix) and n.endswith(suffix) and etag.isalnum():
            other.unlink(missing_ok=True)


def _continues_at(response: httpx2.Response, offset: int) -> bool:
    if response.status_code != 206:
        return False
    content_range = response.headers.get("Content-Range", "")
    return content_range.startswith(f"bytes {offset}-")


def _check_space(folder: Path, needed: int) -> None:
    free = shutil.disk_usage(folder).free
    if needed > free:
        raise _disk_full(f"{needed} bytes needed in {folder}, {free} free")


def _disk_full(detail: str) -> ApiError:
    return ApiError(507, f"not enough disk space: {detail}", code="disk_full", type="server_error")


def _safe(etag: str) -> str:
    """An ETag as part of a file name."""
    return "".join(c for c in etag if c.isalnum())[:64] or "unknown"


def _hub_answer(exc: BaseException) -> str:
    """The status and the hub's own message, else the error's first line."""
    response = getattr(exc, "response", None)
    status = f"{response.status_code} " if response is not None else ""
    detail = getattr(exc, "server_message", None) or str(exc).strip().split("\n")[0]
    return f"{status}{detail}".strip() or type(exc).__name__
