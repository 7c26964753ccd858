"""Ollama's model documents: names with tags, /api/tags, /api/ps and /api/show.

Ollama names carry a tag (`smollm2:latest`); a model id or alias here answers to its
bare name and to `<name>:latest`. The figures come from the files (gateway.model_facts)
and the fleet (what is loaded, its memory, when its idle time runs out).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.config.schema import ModelConfig
from gateway.fleet.states import State
from gateway.fleet.worker_handle import WorkerHandle
from gateway.model_facts import ModelFacts, model_facts
from gateway.routing import Route, Router
from gateway.service import Gateway
from workers.contract.errors import ApiError
from workers.contract.settings import PARSER_OFF, ReasoningParserName

Json = dict[str, Any]
LATEST = ":latest"
# Ollama's "forever" (keep_alive < 0): the longest duration Go can hold, from now.
_FOREVER = timedelta(microseconds=(2**63 - 1) // 1000)
# Request defaults under the names Ollama's `parameters` use.
_PARAMETER_NAMES = {
    "temperature": "temperature",
    "top_p": "top_p",
    "seed": "seed",
    "max_tokens": "num_predict",
    "max_completion_tokens": "num_predict",
    "stop": "stop",
}


def ollama_name(name: str) -> str:
    return name if ":" in name else name + LATEST


def resolve_model(router: Router, name: Any) -> Route:
    """A name as Ollama clients write it: `name:latest` means `name` here."""
    try:
        return router.resolve(name)
    except ApiError as exc:
        if exc.status != 404 or not isinstance(name, str) or not name.endswith(LATEST):
            raise
    return router.resolve(name.removesuffix(LATEST))


def iso_time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def details(facts: ModelFacts) -> Json:
    return {
        "parent_model": "",
        "format": facts.format,
        "family": facts.arch,
        "families": [facts.arch] if facts.arch else None,
        "parameter_size": facts.parameter_size,
        "quantization_level": facts.quantization,
    }


def tags(gateway: Gateway) -> Json:
    """Every model, then every alias (described by its first model), as /api/tags lists them."""
    named = [(m.id, m.id) for m in gateway.config.models]
    named += [(alias, chain[0]) for alias, chain in gateway.config.file.routing.aliases.items()]
    return {"models": [_tag(gateway, name, model_id) for name, model_id in named]}


def _tag(gateway: Gateway, name: str, model_id: str) -> Json:
    facts = model_facts(gateway.config, model_id)
    return {
        "name": ollama_name(name),
        "model": ollama_name(name),
        "modified_at": iso_time(facts.modified),
        "size": facts.size_bytes,
        "digest": facts.digest,
        "details": details(facts),
    }


def running(gateway: Gateway) -> Json:
    """/api/ps: the loaded models, their memory and when their idle time runs out."""
    loaded = [w for w in gateway.fleet.workers.values() if w.state in (State.READY, State.DRAINING)]
    return {"models": [_running(gateway, w) for w in loaded]}


def _running(gateway: Gateway, w: WorkerHandle) -> Json:
    entry = _tag(gateway, w.id, w.id)
    del entry["modified_at"]
    ttl = gateway.watch.idle_ttl(w)
    expires = (
        datetime.fromtimestamp(w.last_activity() + ttl, UTC)
        if ttl > 0
        else datetime.now(UTC) + _FOREVER
    )
    settings = gateway.config.worker_settings(w.id)
    return {
        **entry,
        "size": max(w.rss, gateway.fleet.estimate(w)),
        "size_vram": 0,  # not measured: the workers report no split between RAM and GPU
        "expires_at": expires.isoformat().replace("+00:00", "Z"),
        "context_length": settings.context_length,
    }


def show(gateway: Gateway, route: Route) -> Json:
    """/api/show for a model, alias or preset: the first model of its chain, the preset's
    system prompt and parameters over the model's own defaults."""
    model = gateway.config.model(route.chain[0])
    facts = model_facts(gateway.config, model.id)
    settings = gateway.config.worker_settings(model.id)
    parameters = _parameters(settings.context_length, {**model.defaults, **route.params})
    document: Json = {
        "modelfile": _modelfile(gateway, model, facts, parameters, route.system),
        "parameters": "\n".join(f"{name:<30} {value}" for name, value in parameters),
        "template": facts.chat_template or "",
        "details": details(facts),
        "model_info": _model_info(facts),
        "capabilities": _capabilities(model, facts),
        "modified_at": iso_time(facts.modified),
    }
    if route.system:
        document["system"] = route.system
    return document


def _parameters(context_length: int, defaults: dict[str, Any]) -> list[tuple[str, str]]:
    lines = [("num_ctx", str(context_length))]
    for key, value in defaults.items():
        name = _PARAMETER_NAMES.get(key)
        if name == "stop":
            stops = [value] if isinstance(value, str) else value
            lines += [("stop", f'"{stop}"') for stop in stops]
        elif name is not None:
            lines.append((name, str(value)))
    return lines


def _modelfile(
    gateway: Gateway,
    model: ModelConfig,
    facts: ModelFacts,
    parameters: list[tuple[str, str]],
    system: str | None,
) -> str:
    lines = [
        "# Modelfile generated by Opta-LMX (config/lmx.yaml holds the real settings)",
        f"FROM {gateway.config.model_path(model)}",
    ]
    if facts.chat_template:
        lines.append(f'TEMPLATE """{facts.chat_template}"""')
    if system:
        lines.append(f'SYSTEM """{system}"""')
    lines += [f"PARAMETER {name} {value}" for name, value in parameters]
    return "\n".join(lines) + "\n"


def _model_info(facts: ModelFacts) -> Json:
    info: Json = {"general.architecture": facts.arch, **facts.metadata}
    if facts.parameters:
        info["general.parameter_count"] = facts.parameters
    return info


def _capabilities(model: ModelConfig, facts: ModelFacts) -> list[str]:
    """Tools work with every model here (described in the prompt when the template has no
    tool support) unless the config turns the parser off."""
    capabilities = ["completion"]
    if model.tool_parser != PARSER_OFF:
        capabilities.append("tools")
    template = facts.chat_template or ""
    detected = "<think>" in template or "enable_thinking" in template
    if model.reasoning_parser == ReasoningParserName.THINK or (
        model.reasoning_parser is None and detected
    ):
        capabilities.append("thinking")
    if model.embeddings:
        capabilities.append("embedding")
    if model.vision:
        capabilities.append("vision")
    return capabilities
