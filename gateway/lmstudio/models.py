"""LM Studio's model documents: /api/v0/models entries, and the `model_info` and
`runtime` objects its chat and completion answers carry."""

from __future__ import annotations

from importlib import metadata
from typing import Any

from gateway.fleet.states import State
from gateway.model_facts import model_facts
from gateway.service import Gateway

Json = dict[str, Any]
_RUNTIMES = {"llama_cpp": "llama.cpp", "mlx": "mlx-lm"}


def model_entry(gateway: Gateway, model_id: str) -> Json:
    """`max_context_length` is the context the model runs with here (its context_length
    in the config): LM Studio would load it with up to that much."""
    facts = model_facts(gateway.config, model_id)
    model = gateway.config.model(model_id)
    loaded = gateway.fleet.workers[model_id].state in (State.READY, State.DRAINING)
    return {
        "id": model_id,
        "object": "model",
        "type": "vlm" if model.vision else "llm",
        "publisher": str(facts.metadata.get("general.organization") or "local"),
        "arch": facts.arch,
        "compatibility_type": facts.format,
        "quantization": facts.quantization,
        "state": "loaded" if loaded else "not-loaded",
        "max_context_length": gateway.config.worker_settings(model_id).context_length,
    }


def model_info(gateway: Gateway, model_id: str) -> Json:
    facts = model_facts(gateway.config, model_id)
    return {
        "arch": facts.arch,
        "quant": facts.quantization,
        "format": facts.format,
        "context_length": gateway.config.worker_settings(model_id).context_length,
    }


def runtime(gateway: Gateway, model_id: str) -> Json:
    backend = gateway.config.model(model_id).backend
    facts = model_facts(gateway.config, model_id)
    return {
        "name": _RUNTIMES.get(backend, backend),
        "version": _version(),
        "supported_formats": [facts.format],
    }


def _version() -> str:
    try:
        return metadata.version("opta-lmx")
    except metadata.PackageNotFoundError:
        return "unknown"
