"""What to pull, parsed once from the request body: a repo, maybe one file, a revision,
and where it lands under models_dir. Names that could leave models_dir are refused here,
before anything touches the network or the disk."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from huggingface_hub.utils import HFValidationError, validate_repo_id

from workers.contract.errors import ApiError, bad_request

DEFAULT_REVISION = "main"
MAX_NAME = 1024


@dataclass(frozen=True)
class PullSpec:
    repo: str  # "owner/name"
    file: str | None  # one file of the repo; None: the whole snapshot
    revision: str

    @classmethod
    def parse(cls, payload: dict[str, Any]) -> PullSpec:
        repo = _repo(payload.get("repo"))
        file = payload.get("file")
        if file is not None:
            file = check_repo_path(file, "file")
        revision = _revision(payload.get("revision", DEFAULT_REVISION))
        return cls(repo, file, revision)

    @property
    def folder(self) -> PurePosixPath:
        """The repo's folder under models_dir: <owner>/<name>."""
        return PurePosixPath(self.repo)

    @property
    def target(self) -> PurePosixPath:
        """What this pull writes, relative to models_dir: the file, or the whole folder."""
        return self.folder / self.file if self.file else self.folder

    def overlaps(self, other: PullSpec) -> bool:
        """Whether the two pulls would write the same files."""
        return paths_overlap(self.target, other.target)


def paths_overlap(a: PurePosixPath, b: PurePosixPath) -> bool:
    """The same path, or one inside the other."""
    return a.is_relative_to(b) or b.is_relative_to(a)


def check_repo_path(name: Any, field: str) -> str:
    """A file name from a repo as a safe relative path: no '..', '.', empty segments,
    backslashes, drive letters or absolute paths (checked under POSIX and Windows rules)."""
    if not isinstance(name, str) or not name:
        raise bad_request(f"{field} must be a non-empty string (a file of the repo)", field)
    parts = name.split("/")
    unsafe = (
        len(name) > MAX_NAME
        or "\\" in name
        or "\x00" in name
        or any(part in ("", ".", "..") for part in parts)
        or PurePosixPath(name).is_absolute()
        or any(PureWindowsPath(part).drive for part in parts)
    )
    if unsafe:
        raise bad_request(
            f"{field} {name!r} is not a plain relative path: it could leave the models directory",
            field,
            code="unsafe_path",
        )
    return name


def inside(models_dir: Path, relative: PurePosixPath) -> Path:
    """models_dir/relative, refused unless it resolves (symlinks included) inside models_dir."""
    root = models_dir.resolve()
    path = (root / relative).resolve()
    if path == root or not path.is_relative_to(root):
        raise ApiError(400, f"{relative} resolves outside the models directory", code="unsafe_path")
    return path


def _repo(value: Any) -> str:
    if not isinstance(value, str) or value.count("/") != 1:
        raise bad_request("repo must be a string 'owner/name'", "repo")
    try:
        validate_repo_id(value)
    except HFValidationError as exc:
        raise bad_request(
            f"repo: {exc}", "repo", code="unsafe_path" if ".." in value else None
        ) from None
    return value


def _revision(value: Any) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 255:
        raise bad_request("revision must be a branch, tag or commit name", "revision")
    if any(ord(c) < 32 for c in value):
        raise bad_request("revision must not contain control characters", "revision")
    return value
