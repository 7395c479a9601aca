"""Semantic-ID tokens in the student's vocabulary, and a LoRA that trains only their rows.

1. `add_code_tokens(tokenizer, model, token_vocab, ...)` adds `<a_0>...<d_N>` as
   added tokens and resizes the (tied) embedding matrix.

   Added, not *special*: llama.cpp's GGUF converter marks special added tokens
   CONTROL, and a CONTROL token's text is not rendered in the served answer (nor
   kept by `decode(skip_special_tokens=True)`), so a code written in them would
   come back empty. Non-special added tokens are still matched whole by the
   tokenizer before BPE (`normalized=False`, no stripping), so `<a_12>` is always
   one id; they become USER_DEFINED in the GGUF and print as their text.

2. The new rows are initialised from content, not left random: the row of
   `<a_12>` is the mean input embedding of the titles of (up to `max_titles`)
   items whose level-a digit is 12, rescaled to the average row norm of the
   pretrained vocabulary, plus small Gaussian noise (`noise_scale` x the
   per-element std of the old rows). Why: the embeddings are tied, so a row is
   also the output direction for that token; a title-mean row starts the coarse
   level near the words of its cluster (the model can already "point" at a
   cluster it reads about), and the norm match keeps the new logits on the scale
   of the old ones. Residual levels and the de-dup digit mix unrelated items and
   their title means sit near the global mean, so for them this degrades
   gracefully to "mean of all rows + noise"; the noise separates rows whose means
   coincide (e.g. `<d_0>` and `<d_1>`), which the tied output needs to tell them
   apart. A token with no titles gets the mean of all old rows + noise.
   `init="mean"` skips the titles (mean + noise for every new row).

3. `code_lora_model(model, new_ids, ...)` wraps the model in LoRA on the attention
   / MLP projections plus PEFT `trainable_token_indices` on the input embedding:
   only the new rows train, as a delta. PEFT ties the lm_head to that delta when
   the model ties its embeddings, so input and output stay one matrix; putting
   `embed_tokens`/`lm_head` in `modules_to_save` would copy each separately and
   untie them, and a full copy of a 49k-row matrix per adapter besides.

Heavy imports (torch, transformers, peft) are inside the functions.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

DEFAULT_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass
class CodeTokens:
    """What `add_code_tokens` did: the new tokens, their ids, and how rows were set."""

    tokens: list[str]
    ids: list[int]
    old_vocab_size: int
    init: str
    rows_from_titles: int = 0
    rows_from_mean: int = 0
    titles_used: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def token_to_id(self) -> dict[str, int]:
        return dict(zip(self.tokens, self.ids))

    def summary(self) -> dict[str, Any]:
        return {"tokens": len(self.tokens), "first_id": min(self.ids), "last_id": max(self.ids),
                "old_vocab_size": self.old_vocab_size, "init": self.init,
                "rows_from_titles": self.rows_from_titles, "rows_from_mean": self.rows_from_mean,
                "titles_used": self.titles_used}


def titles_by_code_token(item_codes: Mapping[str, str], titles: Mapping[str, str],
                         max_titles: int = 64, seed: int = 0) -> dict[str, list[str]]:
    """Code token -> titles of (a seeded sample of up to `max_titles`) items whose code has
    that token. `item_codes`: item_id -> code string (a table's `code_of` over its items)."""
    from recommend.trie import split_code

    by_token: dict[str, list[str]] = {}
    for item_id in sorted(item_codes):
        title = (titles.get(item_id) or "").strip()
        if not title:
            continue
        for tok in split_code(item_codes[item_id]):
            by_token.setdefault(tok, []).append(title)
    rng = random.Random(seed)
    return {tok: (rng.sample(ts, max_titles) if len(ts) > max_titles else ts)
            for tok, ts in by_token.items()}


def add_code_tokens(tokenizer, model, token_vocab: Sequence[str], *, init: str = "titles",
                    titles_by_token: Mapping[str, Sequence[str]] | None = None,
                    noise_scale: float = 0.1, seed: int = 0) -> CodeTokens:
    """Add the code tokens, resize the embeddings, initialise the new rows (see module doc)."""
    import torch
    from tokenizers import AddedToken

    from recommend.trie import CODE_TOKEN

    tokens = list(dict.fromkeys(token_vocab))
    if not tokens:
        raise ValueError("token_vocab is empty")
    for tok in tokens:
        if not CODE_TOKEN.fullmatch(tok):
            raise ValueError(f"token_vocab entry {tok!r} is not a code token like <a_12>")
    if init not in ("titles", "mean"):
        raise ValueError(f"init must be 'titles' or 'mean', got {init!r}")
    emb = model.get_input_embeddings()
    old_rows = emb.weight.shape[0]
    old_vocab = len(tokenizer)
    clashes = [t for t in tokens if t in tokenizer.get_vocab() and t not in tokenizer.get_added_vocab()]
    if clashes:  # re-adding our own added tokens is fine; a base-vocabulary word is not
        raise ValueError(f"code tokens already in the base vocabulary: {clashes[:5]}")
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False, single_word=False,
                                     lstrip=False, rstrip=False) for t in tokens])
    ids = [int(i) for i in tokenizer.convert_tokens_to_ids(tokens)]
    for tok, tid in zip(tokens, ids):
        piece = tokenizer(tok, add_special_tokens=False)["input_ids"]
        if piece != [tid]:
            raise RuntimeError(f"code token {tok!r} does not tokenize to its own id ({piece})")
    new_size = max(len(tokenizer), old_rows)
    model.resize_token_embeddings(new_size, mean_resizing=False)
    report = CodeTokens(tokens=tokens, ids=ids, old_vocab_size=old_vocab, init=init)

    weight = model.get_input_embeddings().weight
    with torch.no_grad():
        base = weight[:old_rows].float()
        mean_row = base.mean(dim=0)
        mean_norm = base.norm(dim=1).mean()
        elem_std = base.std()
        gen = torch.Generator().manual_seed(seed)
        for tok, tid in zip(tokens, ids):
            row = None
            titles = list((titles_by_token or {}).get(tok, ())) if init == "titles" else []
            if titles:
                row = _mean_title_embedding(tokenizer, base, titles)
            if row is None:
                row = mean_row.clone()
                report.rows_from_mean += 1
            else:
                row = row * (mean_norm / row.norm().clamp_min(1e-8))
                report.rows_from_titles += 1
                report.titles_used += len(titles)
            noise = torch.randn(row.shape, generator=gen) * (noise_scale * elem_std)
            weight[tid] = (row + noise).to(weight.dtype)
    if _tied(model) is False and getattr(model.config, "tie_word_embeddings", False):
        model.tie_weights()
    return report


def _mean_title_embedding(tokenizer, base_rows, titles: Sequence[str]):
    """Mean over titles of the mean input-embedding row of each title's tokens (old ids only)."""
    import torch

    enc = tokenizer(list(titles), add_special_tokens=False)["input_ids"]
    per_title = []
    for ids in enc:
        ids = [i for i in ids if i < base_rows.shape[0]]
        if ids:
            per_title.append(base_rows[torch.tensor(ids)].mean(dim=0))
    if not per_title:
        return None
    return torch.stack(per_title).mean(dim=0)


def _tied(model) -> bool | None:
    out = model.get_output_embeddings()
    if out is None:
        return None
    return out.weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()


def embeddings_tied(model) -> bool:
    """True when the output head and the input embedding are one tensor (a PEFT model: its base)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    emb = base.get_input_embeddings()
    out = base.get_output_embeddings()
    return _base_weight(emb).data_ptr() == _base_weight(out).data_ptr()


def _base_weight(module):
    """The weight under PEFT's wrappers (TrainableTokensWrapper -> token_adapter -> base_layer)."""
    for attr in ("token_adapter", "base_layer"):
        inner = getattr(module, attr, None)
        if inner is not None:
            module = inner
    return module.weight


def lora_config(new_ids: Sequence[int], r: int = 16, alpha: int = 32, dropout: float = 0.0,
                target_modules: Sequence[str] = DEFAULT_TARGET_MODULES,
                layers: Sequence[int] | None = None):
    """LoRA on the projections (of `layers` only, when given) + trainable rows for the code
    tokens only; no modules_to_save."""
    from peft import LoraConfig

    if not new_ids:
        raise ValueError("no new token ids to train")
    return LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(target_modules),
                      bias="none", task_type="CAUSAL_LM",
                      trainable_token_indices={"embed_tokens": sorted(int(i) for i in new_ids)},
                      modules_to_save=None,
                      layers_to_transform=sorted(int(i) for i in layers) if layers is not None else None)


def code_lora_model(model, new_ids: Sequence[int], **lora_kw):
    """`get_peft_model` with `lora_config`; checks the embeddings are still tied afterwards."""
    from peft import get_peft_model

    tied_before = embeddings_tied(model)
    peft_model = get_peft_model(model, lora_config(new_ids, **lora_kw))
    if tied_before and not embeddings_tied(peft_model):
        raise RuntimeError("wrapping the model untied its input and output embeddings")
    return peft_model


def effective_rows(peft_model, ids: Sequence[int]):
    """The embedding rows the (un-merged) PEFT model uses for `ids`: base row + trained delta."""
    import torch

    emb = peft_model.get_input_embeddings()
    with torch.no_grad():
        return emb(torch.tensor([list(ids)]))[0].detach().clone()
