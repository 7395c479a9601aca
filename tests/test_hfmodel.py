"""The packaged SmolLM2 GGUF converted to a Hugging Face safetensors folder."""

from __future__ import annotations

import json
import time

import pytest

from linernotes import hfmodel, paths  # noqa: E402

PROMPT = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def hf_dir():
    return hfmodel.smollm2_hf_dir()


@pytest.fixture(scope="module")
def loaded(hf_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32)
    model.eval()
    tok = AutoTokenizer.from_pretrained(hf_dir)
    return model, tok


def test_folder_layout(hf_dir):
    assert hf_dir == paths.models_dir() / "SmolLM2-135M-Instruct-hf"
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                 "generation_config.json", hfmodel.META_FILE):
        assert (hf_dir / name).is_file(), name
    cfg = json.loads((hf_dir / "config.json").read_text())
    assert cfg["architectures"] == ["LlamaForCausalLM"]
    assert "quantization_config" not in cfg  # a plain checkpoint for vLLM
    assert cfg["dtype"] == "bfloat16"
    assert (cfg["num_hidden_layers"], cfg["hidden_size"], cfg["vocab_size"]) == (30, 576, 49152)
    assert cfg["eos_token_id"] == 2
    size = (hf_dir / "model.safetensors").stat().st_size
    assert 200e6 < size < 330e6  # bf16, tied embeddings stored once (~270 MB)
    # No half-written temp folders left beside it.
    assert not list(paths.models_dir().glob(".SmolLM2-135M-Instruct-hf.tmp-*"))


def test_second_call_is_cached(hf_dir):
    t0 = time.monotonic()
    assert hfmodel.smollm2_hf_dir() == hf_dir
    assert time.monotonic() - t0 < 1.0


def test_tokenizer_has_chatml_template(loaded):
    _, tok = loaded
    assert tok.chat_template and "<|im_start|>" in tok.chat_template
    text = tok.apply_chat_template(PROMPT, tokenize=False, add_generation_prompt=True)
    assert text.startswith("<|im_start|>system\n")
    assert text.endswith("<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n")
    assert tok.eos_token == "<|im_end|>" and tok.eos_token_id == 2
    ids = tok(text)["input_ids"]
    assert ids[0] == tok.convert_tokens_to_ids("<|im_start|>")  # no extra BOS prepended


def test_logits_finite_and_answers(loaded):
    import torch
    model, tok = loaded
    ids = tok.apply_chat_template(PROMPT, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        logits = model(**ids).logits
    assert torch.isfinite(logits).all()
    out = model.generate(**ids, max_new_tokens=16, do_sample=False)
    answer = tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
    assert answer.strip()
    assert "paris" in answer.lower()


@pytest.mark.slow
def test_greedy_matches_gguf(loaded):
    """Converted folder vs the GGUF dequantized in float32 (the source of truth).

    bf16 rounding may flip greedy near-ties, so compare the first tokens and
    the next-token distribution, not whole strings.
    """
    import torch
    from transformers import AutoModelForCausalLM, GgufConfig

    from linernotes import assets
    model, tok = loaded
    gguf = assets.smollm2_gguf()
    ref = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, quantization_config=GgufConfig(dequantize=True),
        dtype=torch.float32)
    ref.eval()
    ids = tok.apply_chat_template(PROMPT, add_generation_prompt=True, return_tensors="pt", return_dict=True)
    n = ids["input_ids"].shape[1]
    with torch.no_grad():
        a = model(**ids).logits[0, -1]
        b = ref(**ids).logits[0, -1]
        ga = model.generate(**ids, max_new_tokens=8, do_sample=False)[0, n:].tolist()
        gb = ref.generate(**ids, max_new_tokens=8, do_sample=False)[0, n:].tolist()
    assert a.argmax() == b.argmax()
    assert torch.topk(a, 5).indices.tolist()[:3] == torch.topk(b, 5).indices.tolist()[:3]
    assert ga[:4] == gb[:4], (tok.decode(ga), tok.decode(gb))
