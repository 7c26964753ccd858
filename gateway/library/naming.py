"""Model ids from file and folder names: lowercase, safe characters only, and distinct.

`Qwen3-8B-Q4_K_M.gguf` is `qwen3-8b-q4_k_m`; a split GGUF is named for its set
(`big-00001-of-00003.gguf` is `big`). A name that several models share, or that a config
entry, alias or preset already holds, is qualified by its folders, nearest first, until
the names differ (`bartowski-qwen3-8b-q4_k_m`); models that still collide (one folder,
names differing only in case) get `-2`, `-3`, ... in path order. The ids depend only on
the set of paths, so a restart gives the same ones.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Sequence
from pathlib import PurePosixPath

from gateway.library.scan import MAX_DEPTH, SPLIT_GGUF

MAX_ID_LENGTH = 64
_UNSAFE = re.compile(r"[^a-z0-9._-]+")
_DASHES = re.compile(r"-{2,}")


def slug(text: str) -> str:
    cleaned = _DASHES.sub("-", _UNSAFE.sub("-", text.lower())).strip("-._")
    return cleaned[:MAX_ID_LENGTH].rstrip("-._") or "model"


def model_name(path: str) -> str:
    """The file's name without `.gguf` (and the split suffix), or the folder's name."""
    name = PurePosixPath(path).name
    split = SPLIT_GGUF.search(name)
    if split is not None:
        return name[: split.start()]
    return name[:-5] if name.lower().endswith(".gguf") else name


def assign_ids(paths: Sequence[str], taken: Collection[str]) -> dict[str, str]:
    """path -> id for every path; no id is in `taken`, no two are equal."""
    ids = {p: _candidate(p, 0) for p in paths}
    for level in range(1, MAX_DEPTH + 1):
        clashing = _clashing(ids, taken)
        if not clashing:
            return ids
        for p in clashing:
            ids[p] = _candidate(p, level)
    return _numbered(ids, taken)


def _candidate(path: str, level: int) -> str:
    """The model's name qualified by its `level` nearest folders."""
    folders = PurePosixPath(path).parent.parts
    kept = folders[len(folders) - level :] if level else ()
    return slug("-".join([*kept, model_name(path)]))


def _clashing(ids: dict[str, str], taken: Collection[str]) -> list[str]:
    counts = Counter(ids.values())
    return [p for p, i in ids.items() if counts[i] > 1 or i in taken]


def _numbered(ids: dict[str, str], taken: Collection[str]) -> dict[str, str]:
    clashing = set(_clashing(ids, taken))
    used = set(taken) | {i for p, i in ids.items() if p not in clashing}
    numbered = dict(ids)
    for path in sorted(clashing):
        name, n = ids[path], 1
        while name in used:
            n += 1
            name = f"{ids[path]}-{n}"
        numbered[path] = name
        used.add(name)
    return numbered
