"""How curation's embed + dedupe scale with N, and the Embedder vs raw sentence-transformers.

Corpus: `curation.pairs.synthetic_corpus(max(sizes))` (generated items x ten claims x
three phrasings, half lightly edited, 15% planted duplicates: surface edits,
word edits, other phrasings of the same claim about the same item); each size N
is the first N rows of it, so the sizes are nested.

Per N:
  embed      Embedder(--backend, cold cache in a temp dir), for N <= --embed-max.
             The prefixes are embedded incrementally (rows [0, 10k), then
             [10k, 30k), ...), each text a cache miss, so time(N) is a cold
             embedding of N rows. Above --embed-max the vectors of rows beyond it
             are REUSED: row i takes the vector of row i mod embed-max, rotated by
             a random orthogonal matrix per tile (i // embed-max): each tile keeps
             the real neighbourhood structure (what the kNN index works on) and
             tiles do not overlap (no fake duplicates). Printed as "REUSED";
             timings stay representative, planted-duplicate recall of those rows
             does not (their texts differ from the rotated source's).
  prepare    normalise texts, entity keys, representative order
  exact      exact-stage groups
  near       MinHash signatures (--shingle) + LSH candidates + Jaccard check
  semantic   kNN graph (entity-blocked; with --blind also the global FAISS index)
  apply      one DedupeIndex.apply at the config thresholds (what a slider move costs)
Growth exponent per stage: least-squares slope of log(seconds) vs log(N)
(1.0 = linear, 2.0 = quadratic).

Embedder vs raw: on the first --compare-n texts, in this run: Embedder(--backend)
with a cold cache, Embedder("torch") cold, and raw
`SentenceTransformer(...).encode(texts, batch_size, normalize_embeddings=True)`;
texts/s and ratios (Embedder / raw).

    .venv/bin/python bench/curation_scale.py [--sizes 10000,30000,100000] [--embed-max 30000]
        [--compare-n 2000] [--backend auto] [--blind]
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from linernotes import paths  # noqa: E402

paths.use_offline_hub()

import numpy as np  # noqa: E402

from linernotes.config import CurateConfig  # noqa: E402

STAGE_KEYS = ("prepare", "exact", "near", "semantic", "apply")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,30000,100000", help="comma-separated N")
    ap.add_argument("--embed-max", type=int, default=30000,
                    help="embed at most this many rows; larger N reuse those vectors (printed)")
    ap.add_argument("--compare-n", type=int, default=2000, help="texts for Embedder vs raw encode (0: skip)")
    ap.add_argument("--backend", default="auto", help="Embedder backend: auto | torch | onnx | onnx-int8")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--shingle", default=None, help="override CurateConfig.shingle")
    ap.add_argument("--minhash-threshold", type=float, default=None)
    ap.add_argument("--semantic-threshold", type=float, default=None)
    ap.add_argument("--blind", action="store_true", help="also time entity-blind dedupe (global kNN index)")
    ap.add_argument("--seed", type=int, default=17)
    return ap.parse_args(argv)


def slope(ns: list[int], ts: list[float]) -> float | None:
    pts = [(math.log(n), math.log(t)) for n, t in zip(ns, ts) if t and t > 0]
    if len(pts) < 2:
        return None
    x, y = np.array(pts).T
    return float(np.polyfit(x, y, 1)[0])


def embed_incremental(texts: list[str], sizes: list[int], backend: str, batch_size: int,
                      cache_dir: Path) -> tuple[np.ndarray, dict[int, float], str]:
    """Embed texts[:max(sizes)] in prefix increments with a cold cache; seconds per prefix."""
    from curation.embed import Embedder

    emb = Embedder(backend, batch_size=batch_size, cache_path=cache_dir / "scale.sqlite")
    t0 = time.perf_counter()
    emb.encoder  # model load (and ONNX export on a fresh machine) outside the timings
    load = time.perf_counter() - t0
    out = np.empty((max(sizes), emb.dim), dtype=np.float32)
    seconds: dict[int, float] = {}
    done, total = 0, 0.0
    for n in sorted(sizes):
        t0 = time.perf_counter()
        out[done:n] = emb.encode(texts[done:n])
        total += time.perf_counter() - t0
        seconds[n] = total
        print(f"  embedded {n:>7,} rows: {total:7.1f}s cumulative ({n / total:6.1f} texts/s; "
              f"hits {emb.hits}, misses {emb.misses})", flush=True)
        done = n
    return out, seconds, f"{emb.backend} (model load {load:.1f}s, not timed)"


def reuse_vectors(emb: np.ndarray, n: int, seed: int) -> np.ndarray:
    m, d = emb.shape
    rng = np.random.default_rng(seed)
    out = np.empty((n, d), dtype=np.float32)
    out[:m] = emb
    for tile, start in enumerate(range(m, n, m), start=1):
        q, _ = np.linalg.qr(rng.normal(size=(d, d)))
        stop = min(start + m, n)
        out[start:stop] = emb[:stop - start] @ q.astype(np.float32)
    return out


def compare_raw(texts: list[str], backend: str, batch_size: int, cache_dir: Path) -> list[tuple[str, float]]:
    from curation.embed import Embedder, model_path
    from sentence_transformers import SentenceTransformer

    rows = []
    st = SentenceTransformer(str(model_path()), device="cpu")
    st.encode(texts[:batch_size], batch_size=batch_size)  # warm-up
    studio = Embedder(backend, batch_size=batch_size, cache_path=cache_dir / "cmp.sqlite")
    torch_path = Embedder("torch", batch_size=batch_size, cache_path=cache_dir / "cmp_torch.sqlite")
    for e in (studio, torch_path):
        e.encoder.encode(texts[:batch_size], batch_size)  # load + warm-up, not timed
    t0 = time.perf_counter()
    st.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True,
              show_progress_bar=False)
    rows.append(("raw SentenceTransformer.encode (torch)", len(texts) / (time.perf_counter() - t0)))
    t0 = time.perf_counter()
    studio.encode(texts)
    rows.append((f"Embedder('{backend}' -> {studio.backend}), cold cache", len(texts) / (time.perf_counter() - t0)))
    t0 = time.perf_counter()
    torch_path.encode(texts)
    rows.append(("Embedder('torch'), cold cache", len(texts) / (time.perf_counter() - t0)))
    t0 = time.perf_counter()
    studio.encode(texts)
    rows.append((f"Embedder('{backend}'), warm cache (all hits)", len(texts) / (time.perf_counter() - t0)))
    return rows


def time_dedupe(df, emb, config) -> tuple[dict[str, float], dict]:
    from curation.dedupe import DedupeIndex

    t0 = time.perf_counter()
    index = DedupeIndex.build(df, emb, config)
    build = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = index.apply()
    apply_s = time.perf_counter() - t0
    secs = {k: index.build_seconds.get(k, 0.0) for k in ("prepare", "exact", "near", "semantic")}
    secs["apply"] = apply_s
    merged = res.df.groupby("dup_group")["record_id"].transform("size") > 1
    found = merged.groupby(res.df["planted"]).mean().to_dict()
    info = {"build": build, "removed": {s["stage"]: s["removed"] for s in res.stages},
            "near_candidates": index.near_candidates, "semantic_edges": len(index.semantic_edges[0]),
            "planted_found": {k: round(v, 3) for k, v in found.items() if k}}
    return secs, info


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    from curation.pairs import synthetic_corpus

    sizes = sorted(int(s) for s in args.sizes.split(","))
    cfg = CurateConfig()
    over = {k: v for k, v in (("shingle", args.shingle), ("minhash_threshold", args.minhash_threshold),
                              ("semantic_threshold", args.semantic_threshold)) if v is not None}
    cfg = dataclasses.replace(cfg, embed_backend=args.backend, embed_batch_size=args.batch_size, **over)
    print(f"curation scale bench: sizes {sizes}, embed-max {args.embed_max}, backend {args.backend}, "
          f"cpus {os.cpu_count()}")
    print(f"thresholds: minhash {cfg.minhash_threshold} ({cfg.shingle}, {cfg.minhash_num_perm} perms), "
          f"semantic {cfg.semantic_threshold} (k={cfg.semantic_k}), entity_aware {cfg.entity_aware}")
    t0 = time.perf_counter()
    corpus = synthetic_corpus(max(sizes), seed=args.seed)
    print(f"corpus: {len(corpus):,} rows, {corpus['item_id'].nunique():,} items, "
          f"{(corpus['planted'] != '').mean():.1%} planted duplicates ({time.perf_counter() - t0:.1f}s)")
    texts = corpus["explanation"].tolist()

    with tempfile.TemporaryDirectory(prefix="curation-bench-") as tmp:
        tmp = Path(tmp)
        if args.compare_n:
            n = min(args.compare_n, len(texts))
            print(f"\nEmbedder vs raw sentence-transformers on {n:,} texts (batch {args.batch_size}):")
            rows = compare_raw(texts[:n], args.backend, args.batch_size, tmp)
            raw = rows[0][1]
            for name, rate in rows:
                print(f"  {name:<52} {rate:9.1f} texts/s   ratio vs raw {rate / raw:5.2f}")

        embed_sizes = [n for n in sizes if n <= args.embed_max] or [min(args.embed_max, sizes[0])]
        print(f"\nembedding (cold cache) at {embed_sizes}:")
        emb_all, embed_secs, backend_note = embed_incremental(texts, embed_sizes, args.backend,
                                                              args.batch_size, tmp)
        print(f"  backend: {backend_note}")

    # warm-up (FAISS/OpenMP thread pools, numpy/pandas first calls), not timed
    warm = min(500, len(emb_all))
    time_dedupe(corpus.iloc[:warm].reset_index(drop=True), emb_all[:warm], cfg)
    time_dedupe(corpus.iloc[:warm].reset_index(drop=True), emb_all[:warm], dataclasses.replace(cfg, entity_aware=False))

    table: dict[int, dict[str, float]] = {}
    infos: dict[int, dict] = {}
    blind_sem: dict[int, float] = {}
    print("\ndedupe (DedupeIndex.build + one apply):")
    for n in sizes:
        df = corpus.iloc[:n].reset_index(drop=True)
        if n <= len(emb_all):
            emb, note = emb_all[:n], "embedded"
        else:
            emb, note = reuse_vectors(emb_all, n, args.seed), f"REUSED vectors of the first {len(emb_all):,} rows, rotated per tile"
        secs, info = time_dedupe(df, emb, cfg)
        secs["embed"] = embed_secs.get(n, float("nan"))
        table[n], infos[n] = secs, info
        print(f"  N={n:>7,} ({note}): " + ", ".join(f"{k} {secs[k]:.2f}s" for k in STAGE_KEYS)
              + f" | removed {info['removed']} | near candidates {info['near_candidates']:,}, "
              f"kNN edges {info['semantic_edges']:,} | planted found {info['planted_found']}", flush=True)
        if args.blind:
            bcfg = dataclasses.replace(cfg, entity_aware=False)
            bsecs, binfo = time_dedupe(df, emb, bcfg)
            blind_sem[n] = bsecs["semantic"]
            print(f"           entity-blind: " + ", ".join(f"{k} {bsecs[k]:.2f}s" for k in STAGE_KEYS)
                  + f" | removed {binfo['removed']}", flush=True)

    print("\nseconds per stage (embed: cold Embedder; '-' = not embedded, see --embed-max)")
    header = f"{'stage':<10}" + "".join(f"{n:>12,}" for n in sizes) + f"{'exponent':>10}"
    print(header)
    for key in ("embed",) + STAGE_KEYS:
        vals = [table[n][key] for n in sizes]
        cells = "".join(f"{'-':>12}" if not v == v else f"{v:>12.3f}" for v in vals)
        ns = [n for n, v in zip(sizes, vals) if v == v]
        k = slope(ns, [v for v in vals if v == v])
        print(f"{key:<10}{cells}{(f'{k:.2f}' if k is not None else '-'):>10}")
    if blind_sem:
        vals = [blind_sem[n] for n in sizes]
        k = slope(sizes, vals)
        print(f"{'sem-blind':<10}" + "".join(f"{v:>12.3f}" for v in vals) + f"{(f'{k:.2f}' if k else '-'):>10}")
    for n in sizes:
        if n in embed_secs:
            print(f"embedding rate at N={n:,}: {n / embed_secs[n]:.1f} texts/s")


if __name__ == "__main__":
    main()
