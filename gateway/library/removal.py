"""Deleting a model's file or folder under models_dir, with what a pull kept beside it and
the folders left empty. Nothing whose real path (symlinks resolved) is outside models_dir
is ever touched."""

from __future__ import annotations

import shutil
from pathlib import Path, PurePosixPath

from gateway.library.download import STATE_DIR
from workers.contract.errors import ApiError


def relative_inside(path: Path, models_dir: Path) -> PurePosixPath:
    """`path` relative to models_dir, symlinks resolved; 403 for anything outside it."""
    root, target = models_dir.resolve(), path.resolve()
    if target == root or not target.is_relative_to(root):
        raise ApiError(
            403, f"{path} is not inside the models directory; not deleting it", code="unsafe_path"
        )
    return PurePosixPath(target.relative_to(root).as_posix())


def remove_model_files(path: Path, models_dir: Path) -> list[str]:
    """Delete the model at `path`; its path relative to models_dir, as a one-item list."""
    relative = relative_inside(path, models_dir)
    root, target = models_dir.resolve(), path.resolve()
    if not target.exists():
        raise ApiError(404, f"{path} does not exist", code="model_files_not_found")
    if target.is_dir():
        shutil.rmtree(target)
    else:
        target.unlink()
        _forget_pull_state(target, root)
    _remove_empty_dirs(target.parent, root)
    return [str(relative)]


def _forget_pull_state(file: Path, root: Path) -> None:
    """The ETag a pull recorded for this file, in its repo folder (some folder above it)."""
    for folder in file.parents:
        if folder == root:
            return
        record = folder / STATE_DIR / f"{file.relative_to(folder).as_posix()}.etag"
        if record.is_file():
            record.unlink()
            _remove_empty_dirs(record.parent, folder)
            return


def _remove_empty_dirs(folder: Path, stop: Path) -> None:
    while folder != stop and folder.is_relative_to(stop) and folder.is_dir():
        if any(folder.iterdir()):
            return
        folder.rmdir()
        folder = folder.parent
