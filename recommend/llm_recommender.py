"""The student as a recommender: top-K items by trie-constrained beam search over codes
("llm-codes"), or by generating titles and matching them to the catalog ("llm-titles").

    python -m recommend.llm_recommender --type music --codes-run runs/recommend-codes-music-...
        [--titles-run runs/recommend-titles-music-...] [--baselines popularity,item-knn,als,sasrec]
        [--stage test] [--beams 20] [--json out.json]

registers the variants in `recommend.evaluate` (`register_model`) and prints the
same table as the baselines (same split, same metric code), plus the valid-code
rate with and without the trie and the training / inference seconds.

Beam search here (`beam_search`) reads the prompt once and carries one KV cache
row per beam (`reorder_cache`), so a step costs `num_beams` tokens, not
`num_beams` copies of the prompt as in `generate(num_beams=...)`, whose prefill
runs every beam over the whole prompt. Its ranking is HF's beam search with
`length_penalty=0` (tests/test_llm_recommender.py checks they agree on a tiny
model); `hf_topk_codes` is the `generate` path with `recommend.trie.beam_search_kwargs`.

A listener's items in the fit frame are banned from the search (`CodeTrie.banned_counts`),
so K unseen items come back, as the baselines exclude them from their rankings.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from recommend.trie import CodeTrie

DEFAULT_BEAMS = 20
_LOADED: dict[str, tuple[Any, Any]] = {}


# ---------------------------------------------------------------- search

def beam_search(model, prompt_ids: Sequence[int], *, num_beams: int, k: int, max_new_tokens: int,
                end_id: int, allowed: Callable[[list[int]], list[int] | None] | None = None
                ) -> list[tuple[list[int], float]]:
    """Top-k (generated ids without the end token, total log-prob) by beam search.
    `allowed(prefix) -> ids` restricts each step (None or returning None: any token).
    A hypothesis finishes when it picks `end_id` among the best `num_beams` candidates;
    the search stops once no live beam can beat the k-th finished one (log-probs only
    fall) or after `max_new_tokens`."""
    import torch

    if k < 1 or num_beams < k:
        raise ValueError(f"need 1 <= k <= num_beams, got k={k}, num_beams={num_beams}")
    with torch.inference_mode():
        out = model(input_ids=torch.tensor([list(prompt_ids)]), use_cache=True)
        cache = out.past_key_values
        logp = torch.log_softmax(out.logits[:, -1].float(), dim=-1)
        beams: list[list[int]] = [[]]
        scores = torch.zeros(1)
        finished: list[tuple[list[int], float]] = []
        vocab = logp.shape[-1]
        for step in range(max_new_tokens):
            if allowed is not None:
                mask = torch.full_like(logp, float("-inf"))
                for b, seq in enumerate(beams):
                    ids = allowed(seq)
                    if ids is None:
                        mask[b] = 0.0
                    else:
                        mask[b, torch.tensor(ids, dtype=torch.long)] = 0.0
                logp = logp + mask
            total = (scores[:, None] + logp).view(-1)
            n_finite = int(torch.isfinite(total).sum())
            top = total.topk(min(2 * num_beams, n_finite))
            live, live_scores, parents, tokens = [], [], [], []
            for rank, (s, flat) in enumerate(zip(top.values.tolist(), top.indices.tolist())):
                b, t = divmod(flat, vocab)
                if t == end_id or step == max_new_tokens - 1:
                    if rank < num_beams:
                        finished.append((beams[b] if t == end_id else beams[b] + [t], s))
                    continue
                live.append(beams[b] + [t])
                live_scores.append(s)
                parents.append(b)
                tokens.append(t)
                if len(live) == num_beams:
                    break
            finished.sort(key=lambda x: x[1], reverse=True)
            if not live or (len(finished) >= k and live_scores[0] <= finished[k - 1][1]):
                break
            cache.reorder_cache(torch.tensor(parents, dtype=torch.long))
            out = model(input_ids=torch.tensor(tokens)[:, None], past_key_values=cache, use_cache=True)
            cache = out.past_key_values
            logp = torch.log_softmax(out.logits[:, -1].float(), dim=-1)
            beams, scores = live, torch.tensor(live_scores)
    finished.sort(key=lambda x: x[1], reverse=True)
    return finished[:k]


def topk_codes(model, prompt_ids: Sequence[int], trie: CodeTrie, *, num_beams: int, k: int,
               banned: Mapping[int, int] | None = None) -> list[tuple[str | None, float]]:
    """Top-k codes under the trie (the fast path)."""
    hyps = beam_search(model, prompt_ids, num_beams=num_beams, k=k, max_new_tokens=trie.depth + 1,
                       end_id=trie.end_id, allowed=lambda seq: trie.allowed_next(seq, banned))
    return [(trie.code_of_ids(ids), score) for ids, score in hyps]


def hf_topk_codes(model, prompt_ids: Sequence[int], trie: CodeTrie, *, num_beams: int, k: int,
                  banned: Mapping[int, int] | None = None) -> list[tuple[str | None, float]]:
    """Top-k codes by `model.generate` with the trie's prefix_allowed_tokens_fn (the HF path)."""
    import torch

    from recommend.trie import beam_search_kwargs

    ids = torch.tensor([list(prompt_ids)])
    with torch.inference_mode():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                             **beam_search_kwargs(trie, ids.shape[1], num_beams, k, banned=banned))
    gen = out.sequences[:, ids.shape[1]:].tolist()
    return [(trie.code_of_ids(g), float(s)) for g, s in zip(gen, out.sequences_scores.tolist())]


def greedy_ids(model, prompt_ids: Sequence[int], max_new_tokens: int, end_id: int) -> list[int]:
    """Unconstrained greedy continuation (for the valid-code rate without the trie)."""
    hyps = beam_search(model, prompt_ids, num_beams=1, k=1, max_new_tokens=max_new_tokens, end_id=end_id)
    return hyps[0][0] if hyps else []


# ---------------------------------------------------------------- loading

def load_student(run_dir: str | Path, merge: bool = True):
    """(model, tokenizer) of a recommend.train_codes run: base SmolLM2 resized to the saved
    tokenizer, the adapter (LoRA + token rows) loaded and merged for inference."""
    key = str(Path(run_dir).resolve())
    if key in _LOADED:
        return _LOADED[key]
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from linernotes import paths
    from linernotes.hfmodel import smollm2_hf_dir

    paths.use_offline_hub()
    adapter = Path(run_dir) / "adapter"
    if not (adapter / "adapter_config.json").exists():
        raise FileNotFoundError(f"{adapter}: no adapter (is {run_dir} a finished recommend.train_codes run?)")
    tokenizer = AutoTokenizer.from_pretrained(adapter)
    model = AutoModelForCausalLM.from_pretrained(smollm2_hf_dir(), dtype=torch.float32)
    if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    model = PeftModel.from_pretrained(model, adapter)
    if merge:
        model = model.merge_and_unload()
    model.eval()
    _LOADED[key] = (model, tokenizer)
    return model, tokenizer


def chat_prompt_ids(tokenizer, messages) -> list[int]:
    out = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=True, return_dict=True)
    ids = out["input_ids"]
    return list(ids[0] if ids and isinstance(ids[0], list) else ids)


def table_codes(table) -> list[str]:
    codes = table.codes()
    if isinstance(codes, Mapping):  # item -> code or code -> item
        vals = list(codes.values())
        codes = vals if vals and str(vals[0]).startswith("<") else list(codes)
    return [str(c) for c in codes]


def item_of(table, code: str | None) -> str | None:
    """The item a code names, None for no code or an unknown one (the table raises KeyError)."""
    if not code:
        return None
    try:
        return table.item_of(code)
    except KeyError:
        return None


def code_trie(table, tokenizer) -> CodeTrie:
    return CodeTrie.from_codes(table_codes(table), tokenizer.convert_tokens_to_ids, tokenizer.eos_token_id)


# ---------------------------------------------------------------- recommenders

class _LLMBase:
    """evaluate's protocol: fit(fit_frame, items) -> self; recommend(listener_ids, k)."""

    def __init__(self, run_dir: str | Path, item_type: str, num_beams: int = DEFAULT_BEAMS,
                 model=None, tokenizer=None, log: Callable[[str], None] | None = None):
        self.run_dir, self.item_type, self.num_beams = Path(run_dir), item_type, num_beams
        self._model, self._tokenizer = model, tokenizer
        self.log = log or (lambda s: None)
        self.stats: dict[str, Any] = {}

    def _load(self):
        if self._model is None:
            self._model, self._tokenizer = load_student(self.run_dir)
        return self._model, self._tokenizer

    def fit(self, fit_frame, items: Sequence[str]):
        from recommend.tasks import listener_sequences

        self.items = list(items)
        self.sequences = listener_sequences(fit_frame)
        return self


class LLMCodeRecommender(_LLMBase):
    name = "llm-codes"

    def __init__(self, run_dir, item_type, table, num_beams: int = DEFAULT_BEAMS, check_free: bool = True,
                 **kw):
        super().__init__(run_dir, item_type, num_beams, **kw)
        self.table, self.check_free = table, check_free

    def recommend(self, listener_ids: Sequence[str], k: int) -> list[list[str]]:
        from recommend.tasks import next_code_prompt

        model, tok = self._load()
        trie = code_trie(self.table, tok)
        universe = set(self.items)
        out, n_codes, n_valid, n_free, n_free_valid = [], 0, 0, 0, 0
        t0 = time.perf_counter()
        for n, lid in enumerate(listener_ids):
            seq = self.sequences.get(lid, [])
            hist_codes = [self.table.code_of(x) for x in seq]
            prompt = chat_prompt_ids(tok, next_code_prompt(hist_codes, self.item_type))
            banned = trie.banned_counts(trie.ids_of_code(c, tok.convert_tokens_to_ids) for c in hist_codes)
            found = topk_codes(model, prompt, trie, num_beams=max(self.num_beams, k), k=k, banned=banned)
            recs = []
            for code, _score in found:
                n_codes += 1
                item = item_of(self.table, code)
                if item is not None and item in universe:
                    n_valid += 1
                    recs.append(item)
            out.append(recs)
            if self.check_free:  # what the student writes with no trie
                free = greedy_ids(model, prompt, trie.depth + 1, trie.end_id)
                n_free += 1
                code = trie.code_of_ids(free)
                n_free_valid += int(item_of(self.table, code) is not None)
            if (n + 1) % 10 == 0:
                self.log(f"  llm-codes {n + 1}/{len(listener_ids)} listeners, {time.perf_counter() - t0:.0f}s")
        self.stats = {"valid_code_rate": n_valid / n_codes if n_codes else None, "codes": n_codes,
                      "free_valid_code_rate": n_free_valid / n_free if n_free else None,
                      "seconds": round(time.perf_counter() - t0, 1),
                      "seconds_per_listener": round((time.perf_counter() - t0) / max(1, len(listener_ids)), 2)}
        return out


class LLMTitleRecommender(_LLMBase):
    name = "llm-titles"
    max_new_tokens = 40

    def __init__(self, run_dir, item_type, catalog: Sequence[Mapping[str, Any]], num_beams: int = 10, **kw):
        super().__init__(run_dir, item_type, num_beams, **kw)
        from recommend.tasks import title_key

        self.by_id = {str(it["item_id"]): it for it in catalog}
        self.by_title: dict[str, list[str]] = {}
        for it in catalog:
            self.by_title.setdefault(title_key(it.get("title")), []).append(str(it["item_id"]))

    def match(self, title: str, creator: str) -> str | None:
        """The catalog item a generated (title, creator) names: normalised title match, the
        creator breaking ties (else the first in catalog order); None when no title matches."""
        from recommend.tasks import title_key

        cands = self.by_title.get(title_key(title), [])
        if not cands:
            return None
        ck = title_key(creator)
        same = [c for c in cands if ck and title_key(self.by_id[c].get("creator")) == ck]
        return (same or cands)[0]

    def recommend(self, listener_ids: Sequence[str], k: int) -> list[list[str]]:
        from recommend.tasks import next_title_prompt, parse_title_answer

        model, tok = self._load()
        out, n_gen, n_matched = [], 0, 0
        t0 = time.perf_counter()
        for n, lid in enumerate(listener_ids):
            seq = self.sequences.get(lid, [])
            seen = set(seq)
            prompt = chat_prompt_ids(tok, next_title_prompt([self.by_id[x] for x in seq if x in self.by_id],
                                                            self.item_type))
            hyps = beam_search(model, prompt, num_beams=max(self.num_beams, k), k=max(self.num_beams, k),
                               max_new_tokens=self.max_new_tokens, end_id=tok.eos_token_id)
            recs: list[str] = []
            for ids, _score in hyps:
                n_gen += 1
                item = self.match(*parse_title_answer(tok.decode(ids, skip_special_tokens=True)))
                n_matched += int(item is not None)
                if item is not None and item not in seen and item not in recs:
                    recs.append(item)
            out.append(recs[:k])
            if (n + 1) % 10 == 0:
                self.log(f"  llm-titles {n + 1}/{len(listener_ids)} listeners, {time.perf_counter() - t0:.0f}s")
        self.stats = {"title_match_rate": n_matched / n_gen if n_gen else None, "generated": n_gen,
                      "seconds": round(time.perf_counter() - t0, 1)}
        return out


# ---------------------------------------------------------------- evaluate hook

def register(item_type: str, *, codes_run: str | Path | None = None, titles_run: str | Path | None = None,
             table=None, catalog: Sequence[Mapping[str, Any]] | None = None, num_beams: int = DEFAULT_BEAMS,
             log: Callable[[str], None] | None = None) -> dict[str, list]:
    """Register "llm-codes" / "llm-titles" in recommend.evaluate; returns name -> the list the
    built recommenders are appended to (their `.stats` after recommend)."""
    from recommend.evaluate import register_model

    built: dict[str, list] = {}
    if codes_run is not None:
        if table is None:
            raise ValueError("llm-codes needs the semantic-ID table")
        built["llm-codes"] = []

        def make_codes():
            rec = LLMCodeRecommender(codes_run, item_type, table, num_beams=num_beams, log=log)
            built["llm-codes"].append(rec)
            return rec
        register_model("llm-codes", make_codes)
    if titles_run is not None:
        if catalog is None:
            raise ValueError("llm-titles needs the catalog items")
        built["llm-titles"] = []

        def make_titles():
            rec = LLMTitleRecommender(titles_run, item_type, catalog, log=log)
            built["llm-titles"].append(rec)
            return rec
        register_model("llm-titles", make_titles)
    return built


def main(argv: list[str] | None = None) -> int:
    import os

    ap = argparse.ArgumentParser(prog="python -m recommend.llm_recommender", description=__doc__.split("\n")[0])
    ap.add_argument("--type", dest="item_type", default="music", choices=("music", "podcast", "book"))
    ap.add_argument("--codes-run", default=None)
    ap.add_argument("--titles-run", default=None)
    ap.add_argument("--baselines", default="popularity,item-knn,als,sasrec",
                    help="comma-separated recommend.evaluate models to run beside the LLM ('' for none)")
    ap.add_argument("--stage", default="test", choices=("test", "valid"))
    ap.add_argument("--beams", type=int, default=DEFAULT_BEAMS)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    from recommend import evaluate
    from recommend.item_vectors import load_items

    table = None
    if args.codes_run:
        from recommend.train_codes import load_code_table

        table = load_code_table(args.item_type)
    catalog = load_items(args.item_type).to_dict("records") if args.titles_run else None
    built = register(args.item_type, codes_run=args.codes_run, titles_run=args.titles_run, table=table,
                     catalog=catalog, num_beams=args.beams, log=lambda s: print(s, flush=True))
    names = [m for m in args.baselines.split(",") if m.strip()] + list(built)
    rows, splits = evaluate.run([args.item_type], names, stage=args.stage)
    extra = {}
    for name, recs in built.items():
        stats = recs[-1].stats if recs else {}
        run_dir = args.codes_run if name == "llm-codes" else args.titles_run
        manifest = json.loads((Path(run_dir) / "manifest.json").read_text())
        stats = {**stats, "train_seconds": manifest.get("train_seconds"), "train_steps": manifest.get("steps"),
                 "run": str(run_dir)}
        extra[name] = stats
        print(f"{name}: {json.dumps(stats)}", flush=True)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"rows": rows, "splits": splits, "llm": extra}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
