"""Code tokens in the vocabulary; LoRA + trainable rows for only the new tokens; ties kept.

A tiny word-level tokenizer and a tiny tied Llama are built in memory (no model
files), the same shape as SmolLM2 (tied input/output embeddings). The
real-model path is exercised by recommend.train_codes.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("peft")

from recommend.code_tokens import (  # noqa: E402
    add_code_tokens,
    code_lora_model,
    effective_rows,
    embeddings_tied,
    lora_config,
    titles_by_code_token,
)

WORDS = ["<pad>", "<eos>", "<unk>", "rock", "jazz", "blues", "night", "train", "love", "song",
         "river", "fire", "blue", "moon", "a", "the", "of", "next", "is", "listened", "to"]
CODE_VOCAB = ["<a_0>", "<a_1>", "<b_0>", "<b_1>", "<b_2>", "<c_0>", "<c_1>"]
# stand-in for H5's table: item -> code
ITEM_CODES = {"music:1": "<a_0><b_0><c_0>", "music:2": "<a_0><b_1><c_0>", "music:3": "<a_1><b_2><c_0>",
              "music:4": "<a_1><b_2><c_1>"}
TITLES = {"music:1": "rock fire", "music:2": "rock night train", "music:3": "blue moon jazz",
          "music:4": "jazz river"}


def tiny_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return transformers.PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>",
                                                eos_token="<eos>", unk_token="<unk>")


def tiny_model(vocab_size=len(WORDS), seed=0):
    torch.manual_seed(seed)
    cfg = transformers.LlamaConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64,
                                   num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                   max_position_embeddings=64, pad_token_id=0, eos_token_id=1,
                                   bos_token_id=None, tie_word_embeddings=True)
    return transformers.LlamaForCausalLM(cfg)


@pytest.fixture
def setup():
    tok, model = tiny_tokenizer(), tiny_model()
    titles = titles_by_code_token(ITEM_CODES, TITLES)
    old = model.get_input_embeddings().weight.detach().clone()
    report = add_code_tokens(tok, model, CODE_VOCAB, titles_by_token=titles, seed=0)
    return tok, model, report, old


def test_tokens_are_added_whole_and_rows_resized(setup):
    tok, model, report, old = setup
    assert report.ids == list(range(len(WORDS), len(WORDS) + len(CODE_VOCAB)))
    assert model.get_input_embeddings().weight.shape[0] == len(WORDS) + len(CODE_VOCAB)
    ids = tok("next is <a_1><b_2><c_1>", add_special_tokens=False)["input_ids"]
    assert ids[-3:] == [report.token_to_id[t] for t in ("<a_1>", "<b_2>", "<c_1>")]
    # not special: decoding that drops special tokens keeps the code
    assert "<a_1><b_2><c_1>" in tok.decode(ids, skip_special_tokens=True).replace(" ", "")
    assert embeddings_tied(model)
    new = model.get_input_embeddings().weight.detach()
    assert torch.equal(new[:len(WORDS)], old)  # old rows untouched by the resize


def test_rows_start_from_the_titles_under_each_token(setup):
    tok, model, report, old = setup
    w = model.get_input_embeddings().weight.detach()
    assert report.rows_from_titles == len(CODE_VOCAB) and report.rows_from_mean == 0
    a0, a1 = w[report.token_to_id["<a_0>"]], w[report.token_to_id["<a_1>"]]
    rock, jazz = old[WORDS.index("rock")], old[WORDS.index("jazz")]
    cos = torch.nn.functional.cosine_similarity
    # <a_0> is over rock titles, <a_1> over jazz ones: each leans to its own words
    assert cos(a0, rock, dim=0) > cos(a0, jazz, dim=0)
    assert cos(a1, jazz, dim=0) > cos(a1, rock, dim=0)
    mean_norm = old.norm(dim=1).mean()
    assert abs(float(a0.norm() / mean_norm) - 1.0) < 0.2  # norm-matched (noise aside)


def test_mean_init_and_bad_vocab():
    tok, model = tiny_tokenizer(), tiny_model()
    old = model.get_input_embeddings().weight.detach().clone()
    report = add_code_tokens(tok, model, CODE_VOCAB, init="mean", noise_scale=0.1)
    w = model.get_input_embeddings().weight.detach()
    assert report.rows_from_mean == len(CODE_VOCAB)
    rows = w[report.ids]
    assert torch.allclose(rows.mean(0), old.mean(0), atol=0.1 * float(old.std()) * 2)
    assert not torch.equal(rows[0], rows[1])  # noise separates them
    with pytest.raises(ValueError, match="not a code token"):
        add_code_tokens(tiny_tokenizer(), tiny_model(), ["rock"])
    with pytest.raises(ValueError, match="empty"):
        add_code_tokens(tiny_tokenizer(), tiny_model(), [])


def test_lora_config_trains_only_the_new_rows():
    cfg = lora_config([23, 21, 22])
    assert cfg.trainable_token_indices == {"embed_tokens": [21, 22, 23]}
    assert not cfg.modules_to_save
    with pytest.raises(ValueError):
        lora_config([])


def _train_steps(peft_model, tok, steps=5):
    params = [p for p in peft_model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=5e-2)
    batch = tok(["rock fire is <a_0><b_0><c_0>", "jazz river is <a_1><b_2><c_1>"],
                return_tensors="pt", padding=True, add_special_tokens=False)
    labels = batch["input_ids"].clone()
    losses = []
    for _ in range(steps):
        out = peft_model(**batch, labels=labels)
        out.loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(float(out.loss))
    return losses


def test_training_changes_lora_and_new_rows_only_and_ties_stay(setup):
    tok, model, report, _old = setup
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    emb_before = model.get_input_embeddings().weight.detach().clone()
    peft_model = code_lora_model(model, report.ids, r=4, alpha=8)
    trainable = {n for n, p in peft_model.named_parameters() if p.requires_grad}
    assert trainable and all(("lora_" in n) or ("trainable_tokens" in n) for n in trainable)
    assert any("trainable_tokens" in n for n in trainable)

    losses = _train_steps(peft_model, tok)
    assert losses[-1] < losses[0]

    # base weights frozen (the wrapped base modules hold the same values as before)
    base_now = dict(peft_model.get_base_model().named_parameters())
    for name, value in before.items():
        cands = [n for n in base_now if n.replace("token_adapter.", "").replace("base_layer.", "") == name
                 and "lora_" not in n and "trainable_tokens" not in n]
        assert cands, name
        assert torch.equal(base_now[cands[0]].detach(), value), name
    # LoRA moved (B starts at zero)
    lora_b = [p for n, p in peft_model.named_parameters() if "lora_B" in n]
    assert lora_b and any(float(p.abs().sum()) > 0 for p in lora_b)

    vocab_ids = list(range(len(WORDS)))
    eff_old = effective_rows(peft_model, vocab_ids)
    eff_new = effective_rows(peft_model, report.ids)
    assert torch.equal(eff_old, emb_before[vocab_ids])  # old rows unchanged
    changed = (eff_new - emb_before[report.ids]).abs().sum(dim=1)
    assert bool((changed > 0).all())  # every code row trained (all occur in the batch)

    # ties: still one matrix underneath, and the head scores with the trained rows
    assert embeddings_tied(peft_model)
    with torch.no_grad():
        batch = tok(["rock is <a_0>"], return_tensors="pt", add_special_tokens=False)
        out = peft_model(**batch, output_hidden_states=True)
        hidden = out.hidden_states[-1][0, -1]
        logits = out.logits[0, -1]
    full = effective_rows(peft_model, list(range(len(WORDS) + len(CODE_VOCAB))))
    assert torch.allclose(logits, full @ hidden, atol=1e-4)

    merged = peft_model.merge_and_unload()
    assert embeddings_tied(merged)
    assert merged.config.tie_word_embeddings
    assert torch.allclose(merged.get_input_embeddings().weight[report.ids], eff_new, atol=1e-6)


def test_saved_adapter_holds_rows_not_full_matrices(setup, tmp_path):
    tok, model, report, _old = setup
    peft_model = code_lora_model(model, report.ids, r=4, alpha=8)
    _train_steps(peft_model, tok, steps=2)
    peft_model.save_pretrained(tmp_path / "adapter")
    from safetensors.torch import load_file

    state = load_file(str(tmp_path / "adapter" / "adapter_model.safetensors"))
    tokens_keys = [k for k in state if "trainable_tokens" in k]
    assert tokens_keys
    for k in tokens_keys:
        assert state[k].shape[0] == len(report.ids)  # delta rows only, not the vocab
    assert not any(k.endswith("embed_tokens.weight") or k.endswith("lm_head.weight") for k in state)
