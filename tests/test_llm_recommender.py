"""The LLM recommender: fast beam search == HF's, bans, the evaluate protocol, and a tiny
end-to-end train_codes run. Model, tokenizer and code table are in-memory stand-ins
(the semantic-ID table is H5's; SmolLM2 itself is used by `python -m recommend.train_codes`)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("peft")

from recommend.llm_recommender import (  # noqa: E402
    LLMCodeRecommender,
    LLMTitleRecommender,
    beam_search,
    hf_topk_codes,
    register,
    topk_codes,
)
from recommend.trie import CodeTrie, split_code  # noqa: E402

WORDS = ["<pad>", "<|im_start|>", "<|im_end|>", "<unk>", "system", "user", "assistant", "song", "songs",
         "the", "a", "next", "code", "Which", "should", "they", "get", "Answer", "with", "its", "listener",
         "oldest", "first", "rock", "jazz", "title", "creator", "Rock", "Jazz", "Band", "One", "Two"]
CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


class StandInTable:
    """Stand-in for H5's SemanticIdTable over 12 songs, 3 levels."""

    def __init__(self, n=12):
        self.item_codes = {f"music:{i}": f"<a_{i % 3}><b_{(i // 3) % 2}><c_{i // 6}>" for i in range(n)}
        self.by_code = {c: i for i, c in self.item_codes.items()}
        assert len(self.by_code) == n
        self.version = "standin-1"

    def code_of(self, item_id):
        return self.item_codes[item_id]

    def item_of(self, code):  # raises like the real table
        try:
            return self.by_code[code]
        except KeyError:
            raise KeyError(f"code {code!r} names no item") from None

    def codes(self):
        return list(self.item_codes.values())

    def token_vocab(self):
        return sorted({t for c in self.item_codes.values() for t in split_code(c)})


def tiny_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    hf = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<|im_end|>",
                                              unk_token="<unk>", bos_token=None)
    hf.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
    hf.chat_template = CHATML
    return hf


def tiny_model(vocab_size, seed=0, spread=20.0):
    torch.manual_seed(seed)
    cfg = transformers.LlamaConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64,
                                   num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                   max_position_embeddings=512, pad_token_id=0, eos_token_id=2,
                                   bos_token_id=None, tie_word_embeddings=True)
    model = transformers.LlamaForCausalLM(cfg).eval()
    with torch.no_grad():
        model.get_input_embeddings().weight.mul_(spread)
    model.generation_config = transformers.GenerationConfig(do_sample=True, top_k=2, top_p=0.3,
                                                            temperature=0.2, eos_token_id=2, pad_token_id=0)
    return model


@pytest.fixture
def student():
    from recommend.code_tokens import add_code_tokens

    table = StandInTable()
    tok = tiny_tokenizer()
    model = tiny_model(len(WORDS))
    add_code_tokens(tok, model, table.token_vocab(), init="mean")
    trie = CodeTrie.from_codes(table.codes(), tok.convert_tokens_to_ids, tok.eos_token_id)
    return table, tok, model.eval(), trie


PROMPT = [1, 5, 23, 7, 2, 1, 6]


def test_fast_beam_search_matches_hf_generate(student):
    _table, _tok, model, trie = student
    for beams, k in ((12, 12), (6, 4), (3, 1)):
        fast = topk_codes(model, PROMPT, trie, num_beams=beams, k=k)
        hf = hf_topk_codes(model, PROMPT, trie, num_beams=beams, k=k)
        assert [c for c, _ in fast] == [c for c, _ in hf], (beams, k)
        assert [s for _, s in fast] == pytest.approx([s for _, s in hf], abs=1e-3)
        assert None not in [c for c, _ in fast]
        assert len({c for c, _ in fast}) == k


def test_banned_codes_never_come_back(student):
    table, tok, model, trie = student
    best = [c for c, _ in topk_codes(model, PROMPT, trie, num_beams=12, k=12)]
    ban = best[:5]
    banned = trie.banned_counts(trie.ids_of_code(c, tok.convert_tokens_to_ids) for c in ban)
    got = [c for c, _ in topk_codes(model, PROMPT, trie, num_beams=7, k=7, banned=banned)]
    assert not set(got) & set(ban)
    assert got == best[5:]  # the rest, in the same order
    hf = [c for c, _ in hf_topk_codes(model, PROMPT, trie, num_beams=7, k=7, banned=banned)]
    assert hf == got
    # a whole subtree banned: its prefix is closed, the search still fills k from elsewhere
    sub = [c for c in table.codes() if c.startswith("<a_0>")]
    banned = trie.banned_counts(trie.ids_of_code(c, tok.convert_tokens_to_ids) for c in sub)
    assert tok.convert_tokens_to_ids("<a_0>") not in trie.allowed_next([], banned)
    got = [c for c, _ in topk_codes(model, PROMPT, trie, num_beams=8, k=8, banned=banned)]
    assert len(got) == 8 and not any(c.startswith("<a_0>") for c in got)


def test_unconstrained_beam_search_is_plain_beam_search():
    model = tiny_model(len(WORDS), seed=3, spread=5.0)
    hyps = beam_search(model, PROMPT, num_beams=4, k=4, max_new_tokens=5, end_id=2)
    ref = model.generate(input_ids=torch.tensor([PROMPT]), attention_mask=torch.ones(1, len(PROMPT), dtype=torch.long),
                         num_beams=4, num_return_sequences=4, do_sample=False, top_k=None, top_p=None,
                         temperature=None, max_new_tokens=5, length_penalty=0.0, early_stopping=True,
                         eos_token_id=2, pad_token_id=0, output_scores=True, return_dict_in_generate=True)
    ref_seqs = [[t for t in s[len(PROMPT):] if t != 2 and t != 0] for s in ref.sequences.tolist()]
    assert [h[0] for h in hyps] == ref_seqs
    assert [h[1] for h in hyps] == pytest.approx(ref.sequences_scores.tolist(), abs=1e-3)
    with pytest.raises(ValueError):
        beam_search(model, PROMPT, num_beams=2, k=3, max_new_tokens=3, end_id=2)


def _fit_frame():
    rows = [{"listener_id": f"music-customer:{u}", "item_id": f"music:{(u * 3 + t) % 12}", "ts": float(t),
             "rating": None, "_order": u * 10 + t} for u in range(3) for t in range(4)]
    return pd.DataFrame(rows)


def test_code_recommender_follows_the_evaluate_protocol(student):
    table, tok, model, _trie = student
    items = sorted(table.item_codes)
    rec = LLMCodeRecommender("unused", "music", table, num_beams=6, model=model, tokenizer=tok)
    fit = _fit_frame()
    lists = rec.fit(fit, items).recommend(["music-customer:0", "music-customer:2", "nobody"], k=5)
    assert len(lists) == 3 and all(len(x) == 5 for x in lists)
    for lid, recs in zip(["music-customer:0", "music-customer:2"], lists):
        seen = set(fit.loc[fit["listener_id"] == lid, "item_id"])
        assert not seen & set(recs) and len(set(recs)) == 5
    assert rec.stats["valid_code_rate"] == 1.0
    assert 0.0 <= rec.stats["free_valid_code_rate"] <= 1.0


def test_title_matching_and_register():
    catalog = [{"item_id": "music:1", "title": "Imagine", "creator": "U2"},
               {"item_id": "music:2", "title": "Imagine", "creator": "John Lennon"},
               {"item_id": "music:3", "title": "Déjà Vu", "creator": "X"}]
    rec = LLMTitleRecommender("unused", "music", catalog, model=object(), tokenizer=object())
    assert rec.match("imagine!", "john lennon") == "music:2"
    assert rec.match("Imagine", "nobody") == "music:1"
    assert rec.match("deja vu", "") == "music:3"
    assert rec.match("Nothing", "U2") is None
    from recommend import evaluate

    built = register("music", codes_run="x", titles_run="y", table=StandInTable(), catalog=catalog)
    assert "llm-codes" in evaluate.MODELS and "llm-titles" in evaluate.MODELS
    made = evaluate.MODELS["llm-codes"]()
    assert isinstance(made, LLMCodeRecommender) and built["llm-codes"] == [made]
    with pytest.raises(ValueError, match="table"):
        register("music", codes_run="x")


def test_train_codes_writes_a_complete_run(tmp_path):
    from recommend.splits import leave_one_out
    from recommend.tasks import build_mix
    from recommend.train_codes import CodeTrainConfig, task_limits, train

    table = StandInTable()
    items = [{"item_id": i, "title": f"Song {i[-1]}", "creator": "Band", "genres": ["Rock"]}
             for i in sorted(table.item_codes)]
    inter = _fit_frame().drop(columns=["_order"])
    split = leave_one_out(inter, "music", sorted(table.item_codes))
    cfg = CodeTrainConfig(item_type="music", steps=4, batch_size=4, lr=5e-2, lora_r=2, lora_alpha=4,
                          runs_dir=str(tmp_path))
    rows = build_mix(item_type="music", items=items, fit_frame=split.train, table=table,
                     limits=task_limits(cfg), seed=0)
    tok = tiny_tokenizer()
    model = tiny_model(len(WORDS), spread=1.0)
    run = train(cfg, rows, model=model, tokenizer=tok, table=table, items=items, log=lambda s: None)
    assert run.is_complete()
    m = run.manifest()
    assert m["steps"] == 4 and len(m["losses"]) == 4 and m["code_tokens"]["tokens"] == len(table.token_vocab())
    assert m["table_version"] == "standin-1"
    assert (run.path / "adapter" / "adapter_model.safetensors").exists()
    saved = json.loads((run.path / "adapter" / "adapter_config.json").read_text())
    assert saved["trainable_token_indices"] and not saved.get("modules_to_save")
    assert len((run.path / "train_log.jsonl").read_text().splitlines()) == 4
    # a finished run is returned as it is
    again = train(cfg, rows, model=None, tokenizer=None, table=table)
    assert again.path == run.path


def test_top_layer_lora_and_row_lr(tmp_path):
    """lora_top_layers=1 on a 2-layer model: LoRA in layer 1 only, inputs detached, rows still
    train (through the tied head) at their own learning rate."""
    from recommend.splits import leave_one_out
    from recommend.tasks import build_mix
    from recommend.train_codes import CodeTrainConfig, _batches, task_limits, train

    table = StandInTable()
    items = [{"item_id": i, "title": f"Song {i[-1]}", "creator": "Band"} for i in sorted(table.item_codes)]
    split = leave_one_out(_fit_frame().drop(columns=["_order"]), "music", sorted(table.item_codes))
    cfg = CodeTrainConfig(steps=3, batch_size=4, lr=1e-2, lora_r=2, lora_alpha=4, lora_top_layers=1,
                          init="mean", runs_dir=str(tmp_path))
    rows = build_mix(item_type="music", items=items, fit_frame=split.train, table=table,
                     limits=task_limits(cfg), seed=0)
    tok = tiny_tokenizer()
    model = tiny_model(len(WORDS), spread=1.0)
    run = train(cfg, rows, model=model, tokenizer=tok, table=table, items=items, log=lambda s: None)
    saved = json.loads((run.path / "adapter" / "adapter_config.json").read_text())
    assert saved["layers_to_transform"] == [1]
    assert run.manifest()["lora_layers"] == [1]
    from safetensors.torch import load_file

    state = load_file(str(run.path / "adapter" / "adapter_model.safetensors"))
    assert not any(".layers.0." in k for k in state)
    assert any("trainable_tokens" in k for k in state)
    # batches: each epoch covers every example once
    lengths = [5, 1, 9, 3, 7, 2, 8]
    batches = _batches(lengths, 2, 4, seed=0)
    assert sorted(i for b in batches for i in b) == list(range(7))
    assert len(batches) == 4
