"""Next-item evaluation table: every registered model on the same split with the
same metric code.

    python -m recommend.evaluate [--types music,podcast,book] [--models ...]
                                 [--stage test|valid] [--max-test-books 2000] [--json PATH]

prints one row per (catalog, model): Recall@10 [95% CI], NDCG@10 [95% CI], the
number of test listeners, the share of held-out items that no listener has in
the fit frame ("cold": no collaborative model can rank them) and the fit seconds. The split is
`recommend.splits.leave_one_out` (music: last purchase by invoice date; book,
podcast: a seeded random held-out interaction), the ranking universe every
catalog item of the type, the metrics `recommend.metrics` (fit-frame items
excluded, bootstrap CIs). `--stage valid` scores the validation item with the
models fitted on train only (the split to tune on); the default `test` fits on
train + validation and scores the test item.

Other models (the LLM recommenders) join the same table through
`register_model(name, factory)`: `factory()` returns an object with
`fit(fit_frame, items)` and `recommend(listener_ids, k) -> [[item_id, ...]]`
(see `recommend.baselines.Recommender`).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from recommend import interactions as ix
from recommend.baselines import BASELINES
from recommend.sasrec import SASRec
from recommend.metrics import K, evaluate_lists
from recommend.splits import Split, leave_one_out

TYPES = ("music", "podcast", "book")
MAX_TEST = {"book": 2000}  # seeded sample of test listeners (20k eligible book listeners)
MODELS: dict[str, Callable[[], Any]] = {**BASELINES, "sasrec": SASRec}


def register_model(name: str, factory: Callable[[], Any]) -> None:
    """Add (or replace) a model in the table; `factory()` builds a fresh, unfitted one."""
    if not name or not callable(factory):
        raise ValueError(f"register_model: need a name and a callable factory, got {name!r}, {factory!r}")
    MODELS[name] = factory


def build_split(item_type: str, *, seed: int = 0, max_test: int | None = None,
                home: str | Path | None = None) -> Split:
    """The leave-one-out split of one catalog, ranked over every catalog item of the type."""
    from linernotes import paths

    df = ix.load_interactions(item_type, home=home)
    cat_dir = (Path(home) if home is not None else paths.home()) / "catalog"
    items, _ = ix.catalog_ids(item_type, cat_dir)
    return leave_one_out(df, item_type, sorted(items), seed=seed,
                         max_test=max_test if max_test is not None else MAX_TEST.get(item_type))


def evaluate_model(split: Split, name: str, factory: Callable[[], Any], *, stage: str = "test",
                   k: int = K, seed: int = 0) -> dict[str, Any]:
    targets = split.targets(stage)
    fit_frame = split.fit_frame(stage)
    t0 = time.perf_counter()
    model = factory().fit(fit_frame, split.items)
    fit_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    lists = model.recommend(targets["listener_id"].tolist(), k)
    rec_s = time.perf_counter() - t0
    est = evaluate_lists(lists, targets["item_id"].tolist(), k, seed)
    return {"catalog": split.item_type, "model": name, "stage": stage,
            "order_known": ix.ORDER_KNOWN[split.item_type],
            **{m: e.to_dict() for m, e in est.items()},
            "n_test": len(targets),
            # held-out items nobody has in the fit frame: no collaborative model can rank them
            "cold_targets": round(float(1 - targets["item_id"].isin(set(fit_frame["item_id"])).mean()), 4),
            "fit_s": round(fit_s, 2), "recommend_s": round(rec_s, 2),
            "epochs": getattr(model, "epochs_run", None)}


def format_row(row: dict[str, Any], k: int = K) -> str:
    def est(d):
        return f"{d['mean']:.4f} [{d['lo']:.4f}, {d['hi']:.4f}]"
    return (f"{row['catalog']:<8} {row['model']:<14} {est(row[f'recall@{k}']):<26} "
            f"{est(row[f'ndcg@{k}']):<26} {row['n_test']:>6} {row['cold_targets']:>6.0%} {row['fit_s']:>8.1f}")


def header(k: int = K) -> str:
    return (f"{'catalog':<8} {'model':<14} {f'Recall@{k} [95% CI]':<26} {f'NDCG@{k} [95% CI]':<26} "
            f"{'n':>6} {'cold':>6} {'fit_s':>8}")


def run(types: Sequence[str] = TYPES, models: Sequence[str] | None = None, *, stage: str = "test",
        seed: int = 0, max_test_books: int | None = None, k: int = K) -> tuple[list[dict], dict]:
    names = list(models) if models else list(MODELS)
    unknown = [m for m in names if m not in MODELS]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; registered: {sorted(MODELS)}")
    rows, splits = [], {}
    print(header(k), flush=True)
    for t in types:
        cap = max_test_books if t == "book" and max_test_books is not None else None
        split = build_split(t, seed=seed, max_test=cap)
        splits[t] = split.counts
        for name in names:
            row = evaluate_model(split, name, MODELS[name], stage=stage, k=k, seed=seed)
            rows.append(row)
            print(format_row(row, k), flush=True)
        print(f"  {t}: {split.counts}", flush=True)
    return rows, splits


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--types", default=",".join(TYPES), help="comma-separated catalogs")
    ap.add_argument("--models", default=None, help=f"comma-separated (default all: {','.join(MODELS)})")
    ap.add_argument("--stage", default="test", choices=("test", "valid"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-test-books", type=int, default=None,
                    help=f"test listeners sampled for books (default {MAX_TEST['book']})")
    ap.add_argument("--json", default=None, help="write the rows and split counts here")
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    types = [t.strip() for t in args.types.split(",") if t.strip()]
    bad = [t for t in types if t not in TYPES]
    if bad:
        ap.error(f"--types: unknown {bad}; expected some of {list(TYPES)}")
    models = [m.strip() for m in args.models.split(",")] if args.models else None
    rows, splits = run(types, models, stage=args.stage, seed=args.seed, max_test_books=args.max_test_books)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"rows": rows, "splits": splits}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
