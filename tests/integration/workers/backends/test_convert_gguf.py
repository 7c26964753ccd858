"""GGUF → MLX conversion: a tiny synthetic llama for the F16 path, the real SmolLM2 for Q4_1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import mlx.core as mx
import pytest
from tokenizers import pre_tokenizers

from workers.backends.mlx.convert_gguf import ConversionError, convert, main

REPO = Path(__file__).resolve().parents[4]
SMOLLM2_GGUF = REPO / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"

HIDDEN, LAYERS, FFN, HEADS, KV_HEADS = 64, 2, 128, 4, 2
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
TEMPLATE = "{% for m in messages %}<|im_start|>{{ m['content'] }}<|im_end|>{% endfor %}"


def converted_smollm2(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real model converted once per session, shared by every test module that asks."""
    if not SMOLLM2_GGUF.is_file():
        pytest.skip(f"real model missing: {SMOLLM2_GGUF.relative_to(REPO)}")
    out = tmp_path_factory.getbasetemp() / "SmolLM2-135M-Instruct-mlx"
    return out if out.is_dir() else convert(SMOLLM2_GGUF, out)


def tiny_llama_gguf(path: Path, architecture: str = "llama", untied: bool = False) -> Path:
    """A 2-layer F16 llama with a byte-level vocabulary, written with MLX's GGUF writer."""
    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    tokens = [*SPECIALS, *alphabet, "Ġt", "he", "Ġthe"]
    mx.random.seed(0)
    weights = _tiny_weights(len(tokens))
    if untied:
        weights["output.weight"] = (mx.random.normal((len(tokens), HIDDEN)) * 0.02).astype(
            mx.float16
        )
    mx.save_gguf(str(path), weights, _tiny_metadata(tokens, architecture))
    return path


def _tiny_weights(vocab: int) -> dict[str, mx.array]:
    head_dim = HIDDEN // HEADS
    shapes = {
        "attn_q": (HIDDEN, HIDDEN),
        "attn_k": (KV_HEADS * head_dim, HIDDEN),
        "attn_v": (KV_HEADS * head_dim, HIDDEN),
        "attn_output": (HIDDEN, HIDDEN),
        "ffn_gate": (FFN, HIDDEN),
        "ffn_up": (FFN, HIDDEN),
        "ffn_down": (HIDDEN, FFN),
    }
    weights = {
        "token_embd.weight": (mx.random.normal((vocab, HIDDEN)) * 0.02).astype(mx.float16),
        "output_norm.weight": mx.ones((HIDDEN,)),
    }
    for layer in range(LAYERS):
        for name, shape in shapes.items():
            weight = (mx.random.normal(shape) * 0.02).astype(mx.float16)
            weights[f"blk.{layer}.{name}.weight"] = weight
        weights[f"blk.{layer}.attn_norm.weight"] = mx.ones((HIDDEN,))
        weights[f"blk.{layer}.ffn_norm.weight"] = mx.ones((HIDDEN,))
    return weights


def _tiny_metadata(tokens: list[str], architecture: str) -> dict[str, mx.array | str | list[str]]:
    def u32(value: int) -> mx.array:
        return mx.array(value, dtype=mx.uint32)

    token_types = [3] * len(SPECIALS) + [1] * (len(tokens) - len(SPECIALS))
    return {
        "general.architecture": architecture,
        "llama.embedding_length": u32(HIDDEN),
        "llama.block_count": u32(LAYERS),
        "llama.feed_forward_length": u32(FFN),
        "llama.attention.head_count": u32(HEADS),
        "llama.attention.head_count_kv": u32(KV_HEADS),
        "llama.context_length": u32(256),
        "tokenizer.ggml.model": "gpt2",
        "tokenizer.ggml.tokens": tokens,
        "tokenizer.ggml.merges": ["Ġ t", "h e", "Ġt he"],
        "tokenizer.ggml.token_type": mx.array(token_types, dtype=mx.int32),
        "tokenizer.ggml.bos_token_id": u32(1),
        "tokenizer.ggml.eos_token_id": u32(2),
        "tokenizer.chat_template": TEMPLATE,
    }


def test_f16_llama_becomes_a_directory_mlx_lm_loads(tmp_path: Path) -> None:
    from mlx_lm import load

    out = convert(tiny_llama_gguf(tmp_path / "tiny.gguf"), tmp_path / "tiny-mlx")

    model, tokenizer = load(str(out))[:2]
    config = json.loads((out / "config.json").read_text())
    assert config["rope_traditional"] is True
    assert config["tie_word_embeddings"] is True
    assert "quantization" not in config
    assert tokenizer.chat_template == TEMPLATE
    assert (tokenizer.bos_token, tokenizer.eos_token) == ("<|im_start|>", "<|im_end|>")
    ids = tokenizer.encode("the theme<|im_end|>", add_special_tokens=False)
    assert tokenizer.decode(ids) == "the theme<|im_end|>"
    assert ids[-1] == 2, "special tokens must encode as one id"
    logits = model(mx.array([ids]))
    assert logits.shape == (1, len(ids), config["vocab_size"])


def test_separate_output_tensor_becomes_lm_head(tmp_path: Path) -> None:
    from mlx_lm import load

    out = convert(tiny_llama_gguf(tmp_path / "tiny.gguf", untied=True), tmp_path / "tiny-mlx")

    assert json.loads((out / "config.json").read_text())["tie_word_embeddings"] is False
    model = load(str(out))[0]
    assert model.lm_head.weight.shape == (len(SPECIALS) + 256 + 3, HIDDEN)


def test_progress_reports_each_step(tmp_path: Path) -> None:
    lines: list[str] = []
    convert(tiny_llama_gguf(tmp_path / "tiny.gguf"), tmp_path / "out", lines.append)
    assert lines[0] == "reading tiny.gguf"
    assert any("tokenizer" in line for line in lines)
    assert lines[-1].startswith("wrote ")


def test_interrupted_conversion_leaves_no_directory_behind(tmp_path: Path) -> None:
    def interrupt(message: str) -> None:
        if message.startswith("wrote weights"):
            raise KeyboardInterrupt

    gguf = tiny_llama_gguf(tmp_path / "tiny.gguf")
    with pytest.raises(KeyboardInterrupt):
        convert(gguf, tmp_path / "out", interrupt)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.gguf"]


def test_existing_output_directory_is_kept_without_force(tmp_path: Path) -> None:
    gguf = tiny_llama_gguf(tmp_path / "tiny.gguf")
    (tmp_path / "out").mkdir()
    with pytest.raises(ConversionError, match="already exists"):
        convert(gguf, tmp_path / "out")
    assert main([str(gguf), str(tmp_path / "out"), "--force"]) == 0
    assert (tmp_path / "out" / "model.safetensors").is_file()


def test_non_gguf_file_is_rejected_with_a_one_line_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text_file = tmp_path / "notes.gguf"
    text_file.write_text("not a model\n")

    assert main([str(text_file), str(tmp_path / "out")]) == 1

    err = capsys.readouterr().err
    assert err == f"error: {text_file} is not a GGUF file (no GGUF header)\n"
    assert not (tmp_path / "out").exists()


def test_non_llama_architecture_is_rejected(tmp_path: Path) -> None:
    gguf = tiny_llama_gguf(tmp_path / "gpt2.gguf", architecture="gpt2")
    with pytest.raises(ConversionError, match="architecture 'gpt2' is not supported"):
        convert(gguf, tmp_path / "out")


def test_script_converts_next_to_the_gguf_by_default(tmp_path: Path) -> None:
    gguf = tiny_llama_gguf(tmp_path / "tiny.gguf")
    # The script falls back to python3 on PATH when the repo has no .venv.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        [str(REPO / "scripts" / "convert-gguf"), str(gguf)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "tiny-mlx" / "config.json").is_file()
    assert f"wrote {tmp_path / 'tiny-mlx'}" in result.stdout


@pytest.mark.slow
def test_smollm2_q4_1_answers_the_capital_of_france(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    from mlx_lm import load, stream_generate
    from mlx_lm.sample_utils import make_sampler

    model, tokenizer = load(str(converted_smollm2(tmp_path_factory)))[:2]
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    pieces = stream_generate(model, tokenizer, prompt, max_tokens=12, sampler=make_sampler(0.0))

    assert "Paris" in "".join(piece.text for piece in pieces)


@pytest.mark.slow
@pytest.mark.parametrize(
    "text",
    [
        "Hello 42 world, 1234567890",
        "  multiple   spaces\n\nnew\tlines",
        "Ünïcødé 日本語 emoji 🎉",
        "<|im_start|>user\nHi<|im_end|>\n",
        "x=3.14159; y = f(x)**2  # don't",
    ],
)
def test_rebuilt_tokenizer_matches_llama_cpp(
    tmp_path_factory: pytest.TempPathFactory, text: str
) -> None:
    from llama_cpp import Llama
    from tokenizers import Tokenizer

    rebuilt = Tokenizer.from_file(str(converted_smollm2(tmp_path_factory) / "tokenizer.json"))
    reference = Llama(str(SMOLLM2_GGUF), vocab_only=True, verbose=False)

    ids = rebuilt.encode(text).ids
    assert ids == reference.tokenize(text.encode(), add_bos=False, special=True)
    assert rebuilt.decode(ids, skip_special_tokens=False) == text
