"""Backend name -> backend instance. Each backend is imported only when chosen, so a
llama_cpp worker never imports mlx (and the reverse)."""

from __future__ import annotations

from collections.abc import Callable

from workers.backends.base import Backend, BackendError
from workers.backends.prompt_cache import CacheLimits
from workers.contract.settings import BackendName, WorkerSettings


def _llama_cpp(settings: WorkerSettings) -> Backend:
    from workers.backends.llama_cpp.backend import LlamaCppBackend

    return LlamaCppBackend(
        settings.path, settings.context_length, settings.max_concurrent, cache_limits(settings)
    )


def _mlx(settings: WorkerSettings) -> Backend:
    from workers.backends.mlx.backend import MlxBackend

    return MlxBackend(
        settings.path,
        settings.context_length,
        max_batch=settings.max_concurrent,
        cache_limits=cache_limits(settings),
    )


def cache_limits(settings: WorkerSettings) -> CacheLimits:
    return CacheLimits(
        ram_bytes=settings.prompt_cache_bytes,
        disk_dir=settings.prompt_cache_dir,
        disk_bytes=settings.prompt_cache_disk_bytes,
    )


def _scripted(settings: WorkerSettings) -> Backend:
    from workers.backends.scripted import ScriptedBackend

    return ScriptedBackend(settings.path, settings.context_length)


_FACTORIES: dict[BackendName, Callable[[WorkerSettings], Backend]] = {
    BackendName.LLAMA_CPP: _llama_cpp,
    BackendName.MLX: _mlx,
    BackendName.SCRIPTED: _scripted,
}


def create_backend(settings: WorkerSettings) -> Backend:
    factory = _FACTORIES[settings.backend]  # WorkerSettings admits only BackendName values
    try:
        return factory(settings)
    except ImportError as error:
        raise BackendError(f"the {settings.backend} backend is not installed: {error}") from None
