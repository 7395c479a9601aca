"""Dedupe precision / recall on the hand-written paraphrase pairs (devsets/paraphrase/).

    python -m curation.paraphrase_eval --split dev|holdout|holdout2|tuning|holdout3|all [--show N]
    python -m curation.paraphrase_eval --sweep          # dev + holdout + holdout2: how the thresholds were chosen
    python -m curation.paraphrase_eval --build-jsonl    # <split>.txt (hand-written) -> <split>.jsonl

Every pair is two rows of one frame, each pair its own partition (pairs never meet),
run through the real `DedupeIndex` (exact -> near -> semantic, entity-aware) with
the project's embedder (curation/embed.py, packaged all-MiniLM-L6-v2, offline).
A pair is predicted duplicate when the dedupe removes one of its two rows.

old rule  the pipeline as configured before claim signatures (claim band off)
new rule  + same-item pairs with cosine >= claim_threshold whose claim signatures
          match (curation/claim_signature.py)

Splits (devsets/paraphrase/README.md): dev, holdout and holdout2 are tuning splits (holdout
and holdout2 since 2026-12-04); holdout3 is the reported, never-tuned split. Its misclassified
pairs are not listed unless asked for by name (`--split holdout3 --show N`); `--split all`
lists only the tuning splits' and skips a holdout3 that is not written yet.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from typing import Any

import numpy as np
import pandas as pd

from curation.paraphrase_devset import (
    DISTINCT_CLASSES, DUPLICATE_CLASSES, REPORTED_SPLITS, SPLITS, build_all, load_pairs,
    resolve_records,
)

DEFAULT_SHOW = 20  # misclassified pairs listed for a tuning split; 0 for a reported one

SWEEP_HIGH = (0.85, 0.88)
SWEEP_LOW = (0.55, 0.60, 0.65, 0.70, 0.75)
SWEEP_DESCRIPTOR = (0.1, 0.15, 0.2, 0.25, 0.3)
SWEEP_CERTAIN = (None, 0.92, 0.95, 0.98)  # None: conflict veto off
SWEEP_VETO = (0.05, 0.1, 0.15, 0.2)


def pair_frame(pairs: list[dict[str, Any]], items: dict, listeners: dict) -> pd.DataFrame:
    """Two rows per pair (a, then b), the columns a curated frame has for dedupe."""
    rows = []
    for p in pairs:
        lis = listeners[p["listener_id"]].model_dump_json()
        for side, item_id in (("a", p["item_id"]), ("b", p["item_id_b"])):
            rows.append({"record_id": f"{p['id']}-{side}", "item_id": item_id,
                         "listener_id": p["listener_id"], "explanation": p[side],
                         "item": items[item_id].model_dump_json(), "listener": lis,
                         "passed_all": True})
    return pd.DataFrame(rows)


def embed_pairs(pairs: list[dict[str, Any]], config) -> np.ndarray:
    from curation.embed import Embedder

    emb = Embedder(config.embed_backend, batch_size=config.embed_batch_size)
    return emb.encode([t for p in pairs for t in (p["a"], p["b"])])


class PairBench:
    """One DedupeIndex over all pairs; `predict` re-applies thresholds in milliseconds."""

    def __init__(self, pairs: list[dict[str, Any]], config=None, embeddings: np.ndarray | None = None,
                 catalog_dir=None):
        from curation.dedupe import DedupeIndex
        from linernotes.config import CurateConfig

        self.config = config or CurateConfig()
        self.pairs = pairs
        items, listeners = resolve_records(pairs, catalog_dir)
        self.frame = pair_frame(pairs, items, listeners)
        self.embeddings = embed_pairs(pairs, self.config) if embeddings is None else embeddings
        part = np.repeat(np.arange(len(pairs)), 2)
        # floor 0.45: every sweep value stays an edge filter, never a rebuild
        self.index = DedupeIndex.build(self.frame, self.embeddings, self.config, partition=part,
                                       semantic_floor=0.45)
        e = np.asarray(self.embeddings, dtype=np.float32).reshape(len(pairs), 2, -1)
        self.cosine = (e[:, 0] * e[:, 1]).sum(axis=1)
        self.label = np.array([p["label"] == "duplicate" for p in pairs])
        self.cls = np.array([p["class"] for p in pairs])

    def predict(self, semantic_threshold: float | None = None, claim_threshold: float | None = None,
                descriptor_min: float | None = None, certain_threshold: float | None = None,
                veto_jaccard: float | None = None) -> np.ndarray:
        sem = self.config.semantic_threshold if semantic_threshold is None else semantic_threshold
        kept = self.index.apply(semantic_threshold=sem, claim_threshold=claim_threshold,
                                descriptor_min=descriptor_min, certain_threshold=certain_threshold,
                                veto_jaccard=veto_jaccard,
                                report_examples=0).df["kept"].to_numpy().reshape(-1, 2)
        return ~kept.all(axis=1)

    def old_rule(self) -> np.ndarray:
        """Cosine alone: the claim band and the conflict veto both off."""
        sem = self.config.semantic_threshold
        return self.predict(claim_threshold=sem, certain_threshold=sem)

    def new_rule(self, semantic_threshold: float | None = None, claim_threshold: float | None = None,
                 descriptor_min: float | None = None, certain_threshold: float | None = None,
                 veto_jaccard: float | None = None) -> np.ndarray:
        return self.predict(semantic_threshold, claim_threshold, descriptor_min, certain_threshold, veto_jaccard)


class LabelledBench(PairBench):
    """The same predictions on curation.pairs' generated labelled pairs (a second dev set:
    its other_claim negatives share the history tie and differ in the descriptive claim)."""

    def __init__(self, config=None):
        from curation.dedupe import DedupeIndex
        from curation.pairs import labelled_pairs
        from linernotes.config import CurateConfig

        self.config = config or CurateConfig()
        lp = labelled_pairs(self.config.seed)
        self.frame = pd.concat([p.frame() for p in lp], ignore_index=True)
        from curation.embed import Embedder

        self.embeddings = Embedder(self.config.embed_backend, batch_size=self.config.embed_batch_size).encode(
            self.frame["explanation"].tolist())
        self.index = DedupeIndex.build(self.frame, self.embeddings, self.config,
                                       partition=np.repeat(np.arange(len(lp)), 2), semantic_floor=0.45)
        self.label = np.array([p.label == 1 for p in lp])
        self.cls = np.array([p.kind for p in lp])


def metrics(pred: np.ndarray, label: np.ndarray, cls: np.ndarray) -> dict[str, Any]:
    tp = int((pred & label).sum())
    fp = int((pred & ~label).sum())
    fn = int((~pred & label).sum())
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    out: dict[str, Any] = {"n": int(len(pred)), "precision": round(p, 4), "recall": round(r, 4),
                           "f1": round(f, 4), "tp": tp, "fp": fp, "fn": fn}
    out["recall_by_class"] = {c: round(float(pred[cls == c].mean()), 4) for c in DUPLICATE_CLASSES
                              if (cls == c).any()}
    out["false_merge_by_class"] = {c: round(float(pred[cls == c].mean()), 4) for c in DISTINCT_CLASSES
                                   if (cls == c).any()}
    return out


def _pr(pred: np.ndarray, label: np.ndarray) -> tuple[float, float]:
    tp, fp, fn = int((pred & label).sum()), int((pred & ~label).sum()), int((~pred & label).sum())
    return (tp / (tp + fp) if tp + fp else 1.0), (tp / (tp + fn) if tp + fn else 0.0)


def sweep(bench: PairBench, labelled: PairBench | None = None, highs=SWEEP_HIGH, lows=SWEEP_LOW,
          descriptor_mins=SWEEP_DESCRIPTOR, certains=SWEEP_CERTAIN, vetoes=SWEEP_VETO) -> pd.DataFrame:
    """P/R per (high, low, descriptor_min, certain, veto_jaccard) on the tuning pairs, and on
    the labelled pairs when given. certain None: no conflict veto above `high`."""
    rows = []
    for high in highs:
        for low in lows:
            for dmin in descriptor_mins:
                for certain in certains:
                    for veto in (vetoes if certain is not None else (None,)):
                        c = high if certain is None else certain
                        pred = bench.new_rule(high, low, dmin, c, veto)
                        m = metrics(pred, bench.label, bench.cls)
                        row = {"high": high, "low": low, "dmin": dmin, "certain": certain, "veto": veto,
                               "precision": m["precision"], "recall": m["recall"], "fp": m["fp"], "fn": m["fn"],
                               "paraphrase_recall": m["recall_by_class"].get("paraphrase"),
                               "hard_neg_merge": m["false_merge_by_class"].get("same_item_different_claim")}
                        if labelled is not None:
                            lp, lr = _pr(labelled.new_rule(high, low, dmin, c, veto), labelled.label)
                            row.update({"labelled_precision": round(lp, 4), "labelled_recall": round(lr, 4)})
                        rows.append(row)
    return pd.DataFrame(rows)


def _fmt(name: str, m: dict[str, Any]) -> str:
    rec = "  ".join(f"{k}={v:.3f}" for k, v in m["recall_by_class"].items())
    fm = "  ".join(f"{k}={v:.3f}" for k, v in m["false_merge_by_class"].items())
    return (f"  {name:4s} P={m['precision']:.3f} R={m['recall']:.3f} F1={m['f1']:.3f} "
            f"(tp={m['tp']} fp={m['fp']} fn={m['fn']})\n"
            f"       recall: {rec}\n       false merge: {fm}")


def default_show(split: str) -> int:
    """How many misclassified pairs to list when --show is not given: none for a reported split."""
    return 0 if split in REPORTED_SPLITS else DEFAULT_SHOW


def report(split: str, show: int = 0, config=None) -> dict[str, Any]:
    pairs = load_pairs(split)
    bench = PairBench(pairs, config)
    old, new = bench.old_rule(), bench.new_rule()
    out: dict[str, Any] = {"split": split, "thresholds": {
        "semantic_threshold": bench.config.semantic_threshold,
        "claim_threshold": bench.index.apply(report_examples=0).thresholds["claim_threshold"]}}
    present = [s for s in SPLITS if any(p["split"] == s for p in pairs)]
    for s in present:
        sel = np.array([p["split"] == s for p in pairs])
        out[s] = {"old": metrics(old[sel], bench.label[sel], bench.cls[sel]),
                  "new": metrics(new[sel], bench.label[sel], bench.cls[sel]),
                  "role": "reported" if s in REPORTED_SPLITS else "tuning"}
    # a reported split's errors are listed only when it was asked for by name
    listable = np.array([p["split"] not in REPORTED_SPLITS or split == p["split"] for p in pairs])
    wrong = np.flatnonzero((new != bench.label) & listable)
    out["misclassified"] = [{"id": pairs[k]["id"], "class": pairs[k]["class"], "label": pairs[k]["label"],
                             "cosine": round(float(bench.cosine[k]), 3), "a": pairs[k]["a"], "b": pairs[k]["b"]}
                            for k in wrong[:show]]
    out["n_misclassified"] = int(len(wrong))
    return out


def sweep_pairs() -> list[dict[str, Any]]:
    """The pairs thresholds are chosen on: the tuning splits, never a reported one."""
    return load_pairs("tuning")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m curation.paraphrase_eval", description=__doc__.split("\n")[0])
    ap.add_argument("--split", default="dev", choices=(*SPLITS, "tuning", "all"))
    ap.add_argument("--show", type=int, default=None,
                    help=f"print up to N pairs the new rule gets wrong (default {DEFAULT_SHOW}; 0 for holdout3)")
    ap.add_argument("--sweep", action="store_true", help="threshold sweep on dev + holdout + holdout2 (never holdout3)")
    ap.add_argument("--build-jsonl", action="store_true", help="convert the hand-written .txt sources")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.build_jsonl:
        for path in build_all():
            print(path)
        return
    if args.sweep:
        table = sweep(PairBench(sweep_pairs()), LabelledBench())
        with pd.option_context("display.max_rows", 1000, "display.width", 250):
            print(table.to_string(index=False))
        return
    out = report(args.split, default_show(args.split) if args.show is None else args.show)
    if args.json:
        print(json.dumps(out, indent=2, ensure_ascii=False))
        return
    print(f"thresholds: {out['thresholds']}")
    for s in SPLITS:
        if s in out:
            print(f"[{s}] {out[s]['old']['n']} pairs ({out[s]['role']})")
            print(_fmt("old", out[s]["old"]))
            print(_fmt("new", out[s]["new"]))
    if out["misclassified"]:
        print(f"misclassified by the new rule: {out['n_misclassified']} (showing {len(out['misclassified'])})")
        for w in out["misclassified"]:
            print(f"  {w['id']} {w['class']} ({w['label']}) cos={w['cosine']}\n    a: {w['a']}\n    b: {w['b']}")


if __name__ == "__main__":
    main()
