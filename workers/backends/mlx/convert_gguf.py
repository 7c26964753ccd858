"""Turn a llama-architecture GGUF file into an MLX model directory.

`mlx.core.load` reads GGUF directly: F16/F32/BF16 tensors as they are, Q4_0/Q4_1/Q8_0
as MLX affine-quantized `weight`/`scales`/`biases` (group size 32). What is left is
renaming tensors to mlx-lm's llama names, writing `config.json`, and rebuilding the
tokenizer from the GGUF metadata, so `mlx_lm.load(out_dir)` needs no network.

    python -m workers.backends.mlx.convert_gguf IN.gguf OUT_DIR [--force]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import mlx.core as mx
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, processors

Progress = Callable[[str], None]
Metadata = dict[str, Any]

_GGUF_MAGIC = b"GGUF"
_GROUP_SIZE = 32  # every GGUF block format MLX reads packs 32 weights per block

_TOP_LEVEL_NAMES = {
    "token_embd": "model.embed_tokens",
    "output_norm": "model.norm",
    "output": "lm_head",
}
_LAYER_NAMES = {
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
}
_LAYER_TENSOR = re.compile(r"blk\.(\d+)\.(\w+)\.(weight|scales|biases|bias)")
_TOP_TENSOR = re.compile(r"(\w+)\.(weight|scales|biases|bias)")

_CONTROL_TOKEN = 3  # llama.cpp's token_type for special tokens
_USER_DEFINED_TOKEN = 4
# Llama 3's split pattern, as llama.cpp applies it for tokenizer.ggml.pre "llama-bpe".
_LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)


class ConversionError(Exception):
    """The file cannot be converted; the message says why, in one line."""


def convert(gguf_path: Path, out_dir: Path, progress: Progress | None = None) -> Path:
    """Write an MLX model directory for `gguf_path` at `out_dir` (which must not exist)."""
    return _convert(Path(gguf_path), Path(out_dir), progress or _silent, overwrite=False)


def _convert(gguf_path: Path, out_dir: Path, say: Progress, overwrite: bool) -> Path:
    if out_dir.exists() and not overwrite:
        raise ConversionError(f"{out_dir} already exists (use --force to replace it)")
    say(f"reading {gguf_path.name}")
    tensors, meta = read_gguf(gguf_path)
    _check_llama(meta, tensors)
    weights = rename_tensors(tensors)
    say("building the tokenizer from the GGUF vocabulary")
    files = {"config.json": _json(model_config(meta, weights)), **tokenizer_files(meta, say)}
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        staging.chmod(0o755)  # mkdtemp makes it private; the model is not a secret
        _write_model(staging, weights, files, say)
        _move_into_place(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    say(f"wrote {out_dir}")
    return out_dir


def read_gguf(path: Path) -> tuple[dict[str, mx.array], Metadata]:
    if not path.is_file():
        raise ConversionError(f"{path} is not a file")
    with path.open("rb") as f:
        if f.read(4) != _GGUF_MAGIC:
            raise ConversionError(f"{path} is not a GGUF file (no GGUF header)")
    try:
        loaded = mx.load(str(path), return_metadata=True)
    except (RuntimeError, ValueError) as e:
        raise ConversionError(
            f"MLX cannot read {path.name} ({e}); MLX reads F32/F16/BF16/Q8_0/Q4_0/Q4_1 GGUF "
            "tensors, so use a GGUF with one of those types"
        ) from e
    tensors, meta = cast(tuple[dict[str, mx.array], Metadata], loaded)
    return tensors, meta


def _check_llama(meta: Metadata, tensors: dict[str, mx.array]) -> None:
    arch = meta.get("general.architecture")
    if arch != "llama":
        raise ConversionError(f"architecture {arch!r} is not supported (only 'llama')")
    if "rope_freqs.weight" in tensors:
        raise ConversionError("Llama 3.1-style rope frequency scaling is not supported")
    for key in ("llama.embedding_length", "llama.block_count", "llama.attention.head_count"):
        if key not in meta:
            raise ConversionError(f"the GGUF metadata has no {key}")


def rename_tensors(tensors: dict[str, mx.array]) -> dict[str, mx.array]:
    return {_mlx_name(name): value for name, value in tensors.items()}


def _mlx_name(gguf_name: str) -> str:
    if match := _LAYER_TENSOR.fullmatch(gguf_name):
        layer, part, kind = match.groups()
        if part in _LAYER_NAMES:
            return f"model.layers.{layer}.{_LAYER_NAMES[part]}.{kind}"
    elif (match := _TOP_TENSOR.fullmatch(gguf_name)) and match[1] in _TOP_LEVEL_NAMES:
        return f"{_TOP_LEVEL_NAMES[match[1]]}.{match[2]}"
    raise ConversionError(f"unexpected tensor {gguf_name!r} for a llama model")


def model_config(meta: Metadata, weights: dict[str, mx.array]) -> dict[str, Any]:
    hidden = _meta_int(meta, "llama.embedding_length")
    heads = _meta_int(meta, "llama.attention.head_count")
    config: dict[str, Any] = {
        "model_type": "llama",
        "architectures": ["LlamaForCausalLM"],
        "hidden_size": hidden,
        "num_hidden_layers": _meta_int(meta, "llama.block_count"),
        "intermediate_size": _meta_int(meta, "llama.feed_forward_length"),
        "num_attention_heads": heads,
        "num_key_value_heads": _meta_int(meta, "llama.attention.head_count_kv", heads),
        "head_dim": _meta_int(meta, "llama.attention.key_length", hidden // heads),
        "rms_norm_eps": _meta_float(meta, "llama.attention.layer_norm_rms_epsilon", 1e-5),
        "rope_theta": _meta_float(meta, "llama.rope.freq_base", 10000.0),
        # llama.cpp stores Q and K permuted for interleaved rotary pairs.
        "rope_traditional": True,
        "vocab_size": _vocab_size(meta, weights),
        "max_position_embeddings": _meta_int(meta, "llama.context_length", 2048),
        "tie_word_embeddings": "lm_head.weight" not in weights,
        "bos_token_id": _meta_int(meta, "tokenizer.ggml.bos_token_id", None),
        "eos_token_id": _meta_int(meta, "tokenizer.ggml.eos_token_id", None),
    }
    if scaling := _rope_scaling(meta):
        config["rope_scaling"] = scaling
    if quantization := quantization_config(weights):
        config["quantization"] = quantization
        config["quantization_config"] = quantization
    return config


def _vocab_size(meta: Metadata, weights: dict[str, mx.array]) -> int:
    if "llama.vocab_size" in meta:
        return _meta_int(meta, "llama.vocab_size")
    return int(weights["model.embed_tokens.weight"].shape[0])


def _rope_scaling(meta: Metadata) -> dict[str, Any] | None:
    kind = meta.get("llama.rope.scaling.type")
    if kind in (None, "none"):
        return None
    if kind != "linear":
        raise ConversionError(f"rope scaling {kind!r} is not supported (only 'linear')")
    return {"type": "linear", "factor": _meta_float(meta, "llama.rope.scaling.factor")}


def quantization_config(weights: dict[str, mx.array]) -> dict[str, Any] | None:
    """The MLX quantization block: a default plus one entry per module that differs."""
    bits = {
        name.removesuffix(".scales"): _bits(weights, name.removesuffix(".scales"))
        for name in weights
        if name.endswith(".scales")
    }
    if not bits:
        return None
    default = max(set(bits.values()), key=list(bits.values()).count)
    config: dict[str, Any] = {"group_size": _GROUP_SIZE, "bits": default}
    for module, module_bits in sorted(bits.items()):
        if module_bits != default:
            config[module] = {"group_size": _GROUP_SIZE, "bits": module_bits}
    return config


def _bits(weights: dict[str, mx.array], module: str) -> int:
    packed_columns = weights[f"{module}.weight"].shape[-1]
    in_features = weights[f"{module}.scales"].shape[-1] * _GROUP_SIZE
    return int(packed_columns * 32 // in_features)


def _write_model(
    staging: Path, weights: dict[str, mx.array], files: dict[str, str], say: Progress
) -> None:
    say(f"writing {len(weights)} tensors")
    started = time.monotonic()
    mx.save_safetensors(str(staging / "model.safetensors"), weights, metadata={"format": "mlx"})
    say(f"wrote weights in {time.monotonic() - started:.1f}s")
    for name, text in files.items():
        (staging / name).write_text(text, encoding="utf-8")


def tokenizer_files(meta: Metadata, say: Progress) -> dict[str, str]:
    """tokenizer.json and tokenizer_config.json, rebuilt from the GGUF vocabulary."""
    tokens: list[str] = list(_meta_value(meta, "tokenizer.ggml.tokens", ...))
    return {
        "tokenizer.json": _bpe_tokenizer(meta, tokens, say).to_str(),
        "tokenizer_config.json": _json(_tokenizer_config(meta, tokens)),
    }


def _bpe_tokenizer(meta: Metadata, tokens: list[str], say: Progress) -> Tokenizer:
    kind = meta.get("tokenizer.ggml.model")
    if kind != "gpt2":
        raise ConversionError(f"tokenizer {kind!r} is not supported (only byte-level BPE 'gpt2')")
    merges = [tuple(m.split(" ", 1)) for m in _meta_value(meta, "tokenizer.ggml.merges", ...)]
    vocab = {token: index for index, token in enumerate(tokens)}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges, fuse_unk=False))
    tokenizer.pre_tokenizer = _pre_tokenizer(meta.get("tokenizer.ggml.pre"), say)
    tokenizer.decoder = decoders.ByteLevel()
    types = _token_types(meta, len(tokens))
    tokenizer.add_special_tokens(_added(tokens, types, _CONTROL_TOKEN, special=True))
    tokenizer.add_tokens(_added(tokens, types, _USER_DEFINED_TOKEN, special=False))
    tokenizer.post_processor = _post_processor(meta, tokens)
    return tokenizer


def _pre_tokenizer(pre: str | None, say: Progress) -> pre_tokenizers.PreTokenizer:
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    if pre == "smollm":
        digits = pre_tokenizers.Digits(individual_digits=True)
        return pre_tokenizers.Sequence([digits, byte_level])
    if pre == "llama-bpe":
        split = pre_tokenizers.Split(Regex(_LLAMA3_SPLIT), behavior="isolated")
        plain = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
        return pre_tokenizers.Sequence([split, plain])
    if pre not in (None, "default", "gpt2"):
        say(f"warning: unknown pre-tokenizer {pre!r}; using GPT-2 byte-level splitting")
    return byte_level


def _token_types(meta: Metadata, count: int) -> list[int]:
    types = meta.get("tokenizer.ggml.token_type")
    return [1] * count if types is None else [int(t) for t in types.tolist()]


def _added(tokens: list[str], types: list[int], wanted: int, special: bool) -> list[AddedToken]:
    return [
        AddedToken(token, special=special, normalized=False)
        for token, kind in zip(tokens, types, strict=True)
        if kind == wanted
    ]


def _post_processor(meta: Metadata, tokens: list[str]) -> processors.PostProcessor:
    bos_id = _meta_int(meta, "tokenizer.ggml.bos_token_id", None)
    if bos_id is None or not _meta_value(meta, "tokenizer.ggml.add_bos_token", False):
        return processors.ByteLevel(trim_offsets=False)
    bos = tokens[bos_id]
    return processors.TemplateProcessing(
        single=f"{bos}:0 $A:0", pair=f"{bos}:0 $A:0 {bos}:1 $B:1", special_tokens=[(bos, bos_id)]
    )


def _tokenizer_config(meta: Metadata, tokens: list[str]) -> dict[str, Any]:
    def token(key: str) -> str | None:
        index = _meta_int(meta, f"tokenizer.ggml.{key}_token_id", None)
        return tokens[index] if index is not None and index < len(tokens) else None

    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": token("bos"),
        "eos_token": token("eos"),
        "unk_token": token("unknown"),
        "pad_token": token("padding"),
        "add_bos_token": bool(_meta_value(meta, "tokenizer.ggml.add_bos_token", False)),
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": _meta_int(meta, "llama.context_length", 2048),
        "chat_template": meta.get("tokenizer.chat_template"),
    }


def _move_into_place(staging: Path, out_dir: Path) -> None:
    if not out_dir.exists():
        staging.rename(out_dir)
        return
    # Swap via a sibling name so a crash leaves either the old or the new model whole.
    old = out_dir.with_name(f".{out_dir.name}.old-{time.time_ns()}")
    out_dir.rename(old)
    staging.rename(out_dir)
    shutil.rmtree(old, ignore_errors=True)


def _meta_int(meta: Metadata, key: str, default: Any = ...) -> Any:
    value = _meta_value(meta, key, default)
    return value if value is None else int(value)


def _meta_float(meta: Metadata, key: str, default: Any = ...) -> float:
    return float(_meta_value(meta, key, default))


def _meta_value(meta: Metadata, key: str, default: Any) -> Any:
    if key not in meta:
        if default is ...:
            raise ConversionError(f"the GGUF metadata has no {key}")
        return default
    value = meta[key]
    return value.item() if isinstance(value, mx.array) else value


def _json(value: dict[str, Any]) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def _silent(_message: str) -> None:
    pass


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m workers.backends.mlx.convert_gguf",
        description="Convert a llama-architecture GGUF file into an MLX model directory.",
    )
    parser.add_argument("gguf", type=Path, help="the .gguf file")
    parser.add_argument("out_dir", type=Path, help="the MLX model directory to create")
    parser.add_argument("--force", action="store_true", help="replace out_dir if it exists")
    args = parser.parse_args(argv)
    try:
        _convert(args.gguf, args.out_dir, _print_progress, overwrite=args.force)
    except ConversionError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


def _print_progress(message: str) -> None:
    print(message, flush=True)


if __name__ == "__main__":
    sys.exit(main())
