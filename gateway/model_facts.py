"""What a configured model's files say about it: format, architecture, quantization,
parameter count, trained context, chat template, size and version.

Read from a GGUF header or an MLX folder's config.json and safetensors headers, never
from the weights, and cached per file version: the Ollama and LM Studio listings ask on
every call. A file that cannot be read gives empty facts, not an error: a listing should
still show the model, and loading it says what is wrong.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.config.loader import Config
from gateway.memory.admission import weights_bytes
from gateway.memory.gguf_meta import GgufError, read_gguf_header

# llama.cpp's `general.file_type` values (enum llama_ftype), as their quantization names.
_GGUF_FILE_TYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1",
    10: "Q2_K", 11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M",
    16: "Q5_K_S", 17: "Q5_K_M", 18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S",
    22: "IQ3_XS", 23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL", 26: "IQ3_S", 27: "IQ3_M",
    28: "IQ2_S", 29: "IQ2_M", 30: "IQ4_XS", 31: "IQ1_M", 32: "BF16", 36: "TQ1_0",
    37: "TQ2_0", 38: "MXFP4_MOE",
}  # fmt: skip
_DTYPES = {"bfloat16": "BF16", "float16": "F16", "float32": "F32"}


@dataclass(frozen=True)
class ModelFacts:
    format: str  # "gguf", "mlx", or the backend's name for anything else
    arch: str = ""  # "llama", "qwen3", ...; "" when the files do not say
    quantization: str = ""  # "Q4_K_M" (GGUF), "4bit" (MLX), "BF16", ...
    parameters: int | None = None
    trained_context: int | None = None  # what the model was trained for, not what it runs at
    chat_template: str | None = None
    size_bytes: int = 0
    modified: float = 0.0  # seconds since the epoch
    digest: str = ""  # names this version of the files (path, size, time), not their content
    metadata: dict[str, Any] = field(default_factory=dict)  # the GGUF header's scalars

    @property
    def parameter_size(self) -> str:
        """As Ollama writes it: 134515008 -> "134.52M"."""
        if not self.parameters:
            return ""
        for unit, scale in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
            if self.parameters >= scale:
                return f"{self.parameters / scale:.2f}".rstrip("0").rstrip(".") + unit
        return str(self.parameters)


def model_facts(config: Config, model_id: str) -> ModelFacts:
    model = config.model(model_id)
    path = config.model_path(model)
    try:
        stat = path.stat()
    except OSError:
        return ModelFacts(format=_format(model.backend))
    facts = _read(path, model.backend, stat.st_mtime_ns)
    if model.chat_template:  # the config's override is what the worker renders with
        facts = dataclasses.replace(facts, chat_template=model.chat_template)
    return facts


def _format(backend: str) -> str:
    return {"llama_cpp": "gguf"}.get(backend, backend)


@functools.lru_cache(maxsize=64)
def _read(path: Path, backend: str, stamp: int) -> ModelFacts:
    size = weights_bytes(path)
    common: dict[str, Any] = {
        "size_bytes": size,
        "modified": stamp / 1e9,
        "digest": hashlib.sha256(f"{path}|{size}|{stamp}".encode()).hexdigest(),
    }
    try:
        if backend == "llama_cpp":
            return ModelFacts(format="gguf", **_gguf(path), **common)
        if backend == "mlx":
            return ModelFacts(format="mlx", **_mlx(path), **common)
    except (OSError, GgufError, ValueError, KeyError, TypeError, struct.error):
        pass
    return ModelFacts(format=_format(backend), **common)


def _gguf(path: Path) -> dict[str, Any]:
    header = read_gguf_header(path)
    meta = header.metadata
    arch = str(meta.get("general.architecture", ""))
    file_type = meta.get("general.file_type")
    return {
        "arch": arch,
        "quantization": _GGUF_FILE_TYPES.get(file_type, "") if isinstance(file_type, int) else "",
        "parameters": header.parameter_count or None,
        "trained_context": meta.get(f"{arch}.context_length"),
        "chat_template": meta.get("tokenizer.chat_template"),
        "metadata": {k: v for k, v in meta.items() if k != "tokenizer.chat_template"},
    }


def _mlx(folder: Path) -> dict[str, Any]:
    config = json.loads((folder / "config.json").read_text())
    quantization = config.get("quantization")
    if isinstance(quantization, dict):
        quant = f"{quantization['bits']}bit"
    else:
        quant = _DTYPES.get(str(config.get("torch_dtype") or config.get("dtype")), "")
    return {
        "arch": str(config.get("model_type", "")),
        "quantization": quant,
        "parameters": _safetensors_parameters(folder, quantization) or None,
        "trained_context": config.get("max_position_embeddings"),
        "chat_template": _mlx_chat_template(folder),
        "metadata": _mlx_metadata(config),
    }


def _mlx_metadata(config: dict[str, Any]) -> dict[str, Any]:
    """The config.json figures under the GGUF names Ollama's model_info uses."""
    arch = str(config.get("model_type", ""))
    names = {
        "max_position_embeddings": "context_length",
        "hidden_size": "embedding_length",
        "num_hidden_layers": "block_count",
        "intermediate_size": "feed_forward_length",
        "num_attention_heads": "attention.head_count",
        "num_key_value_heads": "attention.head_count_kv",
        "vocab_size": "vocab_size",
    }
    meta: dict[str, Any] = {"general.architecture": arch}
    meta.update({f"{arch}.{gguf}": config[key] for key, gguf in names.items() if key in config})
    return meta


def _mlx_chat_template(folder: Path) -> str | None:
    jinja = folder / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text()
    tokenizer_config = folder / "tokenizer_config.json"
    if tokenizer_config.is_file():
        template = json.loads(tokenizer_config.read_text()).get("chat_template")
        return template if isinstance(template, str) else None
    return None


def _safetensors_parameters(folder: Path, quantization: Any) -> int:
    """Weights counted from the safetensors headers. A quantized MLX layer packs its
    weight into uint32 words, so its true width is its scales' count times the group size."""
    shapes: dict[str, list[int]] = {}
    for file in sorted(folder.glob("*.safetensors")):
        with file.open("rb") as f:
            (length,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(length))
        shapes.update({k: v["shape"] for k, v in header.items() if k != "__metadata__"})
    total = 0
    for name, shape in shapes.items():
        module, _, kind = name.rpartition(".")
        scales = shapes.get(f"{module}.scales")
        if scales is None or kind not in ("weight", "scales", "biases"):
            total += math.prod(shape)
        elif kind == "weight":
            total += math.prod(shape[:-1]) * scales[-1] * _group_size(quantization, module)
    return total


def _group_size(quantization: Any, module: str) -> int:
    layer = quantization.get(module) if isinstance(quantization, dict) else None
    source = layer if isinstance(layer, dict) else quantization
    return int(source.get("group_size", 64)) if isinstance(source, dict) else 64
