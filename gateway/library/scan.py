"""Find the models under models_dir: GGUF files and MLX folders, to a bounded depth.

What counts: a `*.gguf` file (not a vision projector `mmproj*`, not a later shard of a
split `-0000N-of-0000M.gguf`: the first shard stands for the set), and a folder with
`config.json` and `*.safetensors` (an MLX model; nothing inside it is looked at further).
What does not: hidden entries (`.cache`, where downloads sit half-done), partial files
(`*.incomplete`, ...), a split or sharded model with a part missing, a file that is not
GGUF inside (a Git LFS pointer), and anything that resolves outside models_dir.
Scripted-backend .json files are never found here: they stay config-only.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from workers.contract.settings import BackendName

# models_dir/<owner>/<repo>/<file> is where pulls land; deeper folders are not searched.
MAX_DEPTH = 3
PARTIAL_SUFFIXES = (".incomplete", ".part", ".partial", ".tmp", ".download", ".crdownload")
SPLIT_GGUF = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$", re.IGNORECASE)
SHARD_INDEX = "model.safetensors.index.json"


@dataclass(frozen=True)
class Found:
    path: str  # relative to models_dir, "/"-separated
    backend: BackendName
    size_bytes: int
    changed_at: float  # the newest mtime or ctime of its files


@dataclass(frozen=True)
class Skipped:
    path: str
    reason: str


@dataclass(frozen=True)
class Scan:
    found: tuple[Found, ...] = ()
    skipped: tuple[Skipped, ...] = ()


def scan_models(models_dir: Path) -> Scan:
    root = models_dir.resolve()
    found: list[Found] = []
    skipped: list[Skipped] = []
    if root.is_dir():
        _walk(root, root, 1, found, skipped)
    return Scan(tuple(sorted(found, key=lambda f: f.path)), tuple(skipped))


def _walk(root: Path, folder: Path, depth: int, found: list[Found], skipped: list[Skipped]) -> None:
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except OSError:
        return
    for entry in entries:
        if entry.name.startswith(".") or entry.name.lower().endswith(PARTIAL_SUFFIXES):
            continue
        path = Path(entry.path)
        relative = path.relative_to(root).as_posix()
        if not path.resolve().is_relative_to(root):
            if _looks_like_model(path):
                skipped.append(Skipped(relative, "points outside models_dir"))
            continue
        outcome = _judge(path, relative)
        if isinstance(outcome, Found):
            found.append(outcome)
        elif isinstance(outcome, Skipped):
            skipped.append(outcome)
        elif entry.is_dir(follow_symlinks=False) and depth < MAX_DEPTH:
            _walk(root, path, depth + 1, found, skipped)


def _looks_like_model(path: Path) -> bool:
    return path.name.lower().endswith(".gguf") or is_mlx_folder(path)


def _judge(path: Path, relative: str) -> Found | Skipped | None:
    """A model, a model refused (with why), or neither (None: look inside if a folder)."""
    if path.is_dir():
        return _mlx_model(path, relative) if is_mlx_folder(path) else None
    if path.is_file() and path.name.lower().endswith(".gguf"):
        return _gguf_model(path, relative)
    return None


def is_mlx_folder(path: Path) -> bool:
    return (path / "config.json").is_file() and any(path.glob("*.safetensors"))


def _mlx_model(path: Path, relative: str) -> Found | Skipped:
    missing = _missing_shards(path)
    if missing:
        return Skipped(relative, f"{missing} is missing ({SHARD_INDEX} lists it)")
    files = [p for p in path.rglob("*") if p.is_file()]
    return Found(relative, BackendName.MLX, _size(files), _changed_at(files))


def _missing_shards(path: Path) -> str | None:
    index = path / SHARD_INDEX
    if not index.is_file():
        return None
    try:
        shards = set(json.loads(index.read_text())["weight_map"].values())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return SHARD_INDEX
    return next((s for s in sorted(shards) if not (path / s).is_file()), None)


def _gguf_model(path: Path, relative: str) -> Found | Skipped | None:
    name = path.name.lower()
    if "mmproj" in name:
        return None  # a vision projector: part of a model, not one
    split = SPLIT_GGUF.search(path.name)
    if split is not None and int(split.group(1)) != 1:
        return None  # a later shard: the first one stands for the set
    parts = gguf_parts(path)
    absent = [p.name for p in parts if not p.is_file()]
    if absent:
        return Skipped(relative, f"split GGUF: {absent[0]} is missing")
    if not _gguf_magic(path):
        return Skipped(relative, "not a GGUF file inside (a Git LFS pointer?)")
    return Found(relative, BackendName.LLAMA_CPP, _size(parts), _changed_at(parts))


def gguf_parts(path: Path) -> list[Path]:
    """Every file of a GGUF model: itself, or all shards of a split one."""
    split = SPLIT_GGUF.search(path.name)
    if split is None:
        return [path]
    total = int(split.group(2))
    stem = path.name[: split.start()]
    return [path.with_name(f"{stem}-{i:05d}-of-{total:05d}.gguf") for i in range(1, total + 1)]


def _gguf_magic(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(4) == b"GGUF"
    except OSError:
        return False


def _size(files: list[Path]) -> int:
    return sum(_stat(p)[0] for p in files)


def _changed_at(files: list[Path]) -> float:
    return max((_stat(p)[1] for p in files), default=0.0)


def _stat(path: Path) -> tuple[int, float]:
    try:
        st = path.stat()
    except OSError:
        return 0, 0.0
    return st.st_size, max(st.st_mtime, st.st_ctime)
