"""Item vectors for semantic IDs: content (MiniLM) fused with collaborative signal.

content        all-MiniLM-L6-v2 (`curation.embed.Embedder`, through its SQLite
               cache, so a catalog is paid for once) over
               "title | creator | collection | publisher | genres | description"
               (missing fields left out; the description cut at DESCRIPTION_CHARS).
               Books have no genres or descriptions in Book-Crossing, so theirs is
               "title | author | publisher" (onnx-int8, 1 thread: 182 texts/s on 2,000
               book texts, 158 for 2 threads; "title | author" was only 14% faster,
               so the publisher, the one genre-like signal books have, stays; all
               270,918 took 27 min of encoding, once, in the cache).
collaborative  truncated SVD of the item x listener matrix from
               `recommend.interactions` (binary: an interaction is a 1; rows
               scaled by 1/sqrt(item degree) so popular items do not own every
               factor), item factors L2-normalised. `implicit` is not installed in
               this environment (checked), so ALS is not used here; the SVD of the
               same matrix is its closed-form cousin.
fused          [content, w * collaborative] / norm: both parts are unit vectors, so
               w is the collaborative part's share. Items with no interactions get
               content only (the collaborative part is zeros), recorded per item in
               `ItemVectors.has_collab`. w per catalog (FUSION_WEIGHT) is chosen by
               `measure_fusion` (held-out next item by vector kNN on recommend.splits'
               leave-one-out split: tuned on the validation item, the test item
               reported beside it; see its docstring).

`python -m recommend.item_vectors embed --types book` fills the embedding cache
with progress (chunked, so an interrupted run resumes where it stopped);
`python -m recommend.item_vectors fusion --types music,podcast` prints the
measurement.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from linernotes import paths

log = logging.getLogger(__name__)

ITEM_TYPES = ("music", "podcast", "book")
DESCRIPTION_CHARS = 600
EMBED_BACKEND = "onnx-int8"  # curation.embed's measured default (2.1x torch, cosine 0.99)
EMBED_CHUNK = 5000
COLLAB_DIM = {"music": 32, "podcast": 16, "book": 64}
# Chosen by `measure_fusion` (validation stage; NDCG@10 of vector kNN, full ranking), the
# test stage reported beside it, never tuned on (`python -m recommend.item_vectors fusion`):
#   book (2,000 listeners)  content 0.0104 / w=0.25 0.0110 / w=0.5 0.0124 / w=1 0.0092 /
#                           collab only 0.0007; test: content 0.0095, w=0.5 0.0127, collab 0.0019
#   podcast (45)            content 0.1447 / w=0.25 0.1583 / w=0.5 0.1228; test 0.1559 vs 0.1904
#   music (59)              content 0.0167 / w=0.25 0.0223 / w>=1 0; test 0.0066 vs 0.0073
# Music and podcast samples are tiny (CIs overlap everywhere); a Chinook track is bought
# by ~1.1 listeners on average, so its collaborative part carries little.
FUSION_WEIGHT = {"music": 0.25, "podcast": 0.25, "book": 0.5}


# --------------------------------------------------------------------------- catalog


def load_items(item_type: str) -> pd.DataFrame:
    """The catalog's items of one type, in catalog order (index reset)."""
    if item_type not in ITEM_TYPES:
        raise ValueError(f"item_type {item_type!r}: expected one of {ITEM_TYPES}")
    path = paths.catalog_dir() / "items.parquet"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no ingested catalog; run `python -m synth.catalog.ingest` first")
    items = pd.read_parquet(path)
    out = items[items["item_type"] == item_type].reset_index(drop=True)
    if out["item_id"].duplicated().any():
        dup = out.loc[out["item_id"].duplicated(), "item_id"].iloc[0]
        raise ValueError(f"{path}: item_id {dup!r} appears twice")
    return out


def _field(value) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return " ".join(str(value).split())


def item_text(row) -> str:
    """The text MiniLM embeds for one catalog row (a mapping or a namedtuple)."""
    get = row.get if hasattr(row, "get") else (lambda k, d=None: getattr(row, k, d))
    genres = get("genres", None)
    genre_text = ", ".join(_field(g) for g in genres if _field(g)) if genres is not None and not isinstance(genres, str) else _field(genres)
    parts = [_field(get("title")), _field(get("creator")), _field(get("collection")),
             _field(get("publisher")), genre_text, _field(get("description"))[:DESCRIPTION_CHARS]]
    return " | ".join(p for p in parts if p)


def item_texts(items: pd.DataFrame) -> list[str]:
    return [item_text(r) for r in items.to_dict("records")]


# --------------------------------------------------------------------------- content


def make_embedder(backend: str = EMBED_BACKEND, threads: int | None = None):
    """An Embedder whose ONNX session uses `threads` threads (default $OMP_NUM_THREADS, else 1).

    curation.embed sizes the ONNX session to every core; this machine's cores are
    shared, so the session is rebuilt with the requested count (same graph, same
    vectors). On this machine 1 thread ran 182 texts/s against 158 for 2 (load ~3).
    """
    from curation.embed import Embedder, export_onnx

    emb = Embedder(backend=backend)
    if emb.backend.startswith("onnx"):
        import onnxruntime as ort

        n = threads or int(os.environ.get("OMP_NUM_THREADS", "1") or 1)
        encoder = emb.encoder
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.intra_op_num_threads = max(1, n)
        opts.inter_op_num_threads = 1
        encoder.session = ort.InferenceSession(str(export_onnx(int8=emb.backend == "onnx-int8")),
                                               sess_options=opts, providers=["CPUExecutionProvider"])
    return emb


def content_vectors(texts: list[str], embedder=None, chunk: int = EMBED_CHUNK,
                    progress: bool = False) -> np.ndarray:
    """(n, 384) float32 unit vectors; chunked so the cache fills as it goes."""
    emb = embedder or make_embedder()
    out = np.empty((len(texts), 384), dtype=np.float32)
    t0 = time.perf_counter()
    for start in range(0, len(texts), chunk):
        out[start:start + chunk] = emb.encode(texts[start:start + chunk])
        if progress:
            done = min(start + chunk, len(texts))
            rate = done / max(time.perf_counter() - t0, 1e-9)
            print(f"embedded {done}/{len(texts)} ({emb.hits} cached, {emb.misses} new) "
                  f"{rate:.0f} texts/s, eta {(len(texts) - done) / max(rate, 1e-9) / 60:.1f} min",
                  flush=True)
    return out


# --------------------------------------------------------------------------- collaborative


def interaction_matrix(item_ids: list[str], interactions: pd.DataFrame):
    """Binary item x listener CSR matrix (rows in `item_ids` order) and the listener ids.
    Interactions with items outside `item_ids` are an error (they would be silently lost)."""
    from scipy import sparse

    pos = {iid: i for i, iid in enumerate(item_ids)}
    rows = interactions["item_id"].map(pos)
    if rows.isna().any():
        bad = interactions.loc[rows.isna(), "item_id"].iloc[0]
        raise ValueError(f"interactions: item_id {bad!r} is not in the catalog's items")
    listeners = pd.Index(pd.unique(interactions["listener_id"]))
    cols = listeners.get_indexer(interactions["listener_id"])
    data = np.ones(len(interactions), dtype=np.float32)
    mat = sparse.csr_matrix((data, (rows.to_numpy(int), cols)), shape=(len(item_ids), len(listeners)))
    mat.data[:] = 1.0  # duplicates summed by the constructor count once
    return mat, list(listeners)


def collaborative_vectors(item_ids: list[str], interactions: pd.DataFrame, dim: int,
                          seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(vectors (n, dim) float32, has_collab (n,) bool). Items without interactions get zeros.

    Truncated SVD of the degree-normalised item x listener matrix; an item's vector
    is its row of U * S, L2-normalised, so two items are close when the same
    listeners hold them."""
    from sklearn.decomposition import TruncatedSVD

    mat, _ = interaction_matrix(item_ids, interactions)
    degree = np.asarray(mat.sum(axis=1)).ravel()
    has = degree > 0
    out = np.zeros((len(item_ids), dim), dtype=np.float32)
    k = min(dim, min(mat.shape) - 1)
    if k < 1 or not has.any():
        return out, has
    from scipy import sparse

    scale = sparse.diags(1.0 / np.sqrt(np.maximum(degree, 1.0)))
    svd = TruncatedSVD(n_components=k, algorithm="randomized", n_iter=7, random_state=seed)
    factors = svd.fit_transform(scale @ mat).astype(np.float32)
    norms = np.linalg.norm(factors, axis=1, keepdims=True)
    factors = np.where(norms > 1e-12, factors / np.maximum(norms, 1e-12), 0.0)
    out[:, :k] = factors
    has &= np.linalg.norm(out, axis=1) > 0
    return out, has


def fuse(content: np.ndarray, collab: np.ndarray, weight: float) -> np.ndarray:
    """Unit rows of [content, weight * collab]; weight 0 gives content alone (zero-padded)."""
    if content.shape[0] != collab.shape[0]:
        raise ValueError(f"fuse: {content.shape[0]} content rows vs {collab.shape[0]} collaborative rows")
    out = np.concatenate([content, np.float32(weight) * collab], axis=1).astype(np.float32)
    out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out


# --------------------------------------------------------------------------- build


@dataclass
class ItemVectors:
    item_type: str
    item_ids: list[str]
    vectors: np.ndarray          # (n, d) float32 unit rows: the fused vector
    has_collab: np.ndarray       # (n,) bool: False = content only (collaborative part zeros)
    config: dict = field(default_factory=dict)

    def fingerprint(self) -> str:
        """sha256 over ids, vectors (rounded to 1e-5, so a float's last bit does not
        renumber a catalog) and config; first 10 hex digits."""
        h = hashlib.sha256()
        h.update("\n".join(self.item_ids).encode())
        h.update(np.round(self.vectors.astype(np.float64), 5).tobytes())
        h.update(repr(sorted(self.config.items())).encode())
        return h.hexdigest()[:10]


def code_split(item_type: str, interactions: pd.DataFrame | None = None, item_ids: list[str] | None = None):
    """The leave-one-out split the evaluation uses (recommend.splits, seed 0; books: 2,000 test
    listeners). Codes are fit on `fit_frame("test")`, so no test item's interaction shapes them."""
    from recommend.interactions import load_interactions
    from recommend.splits import leave_one_out

    df = load_interactions(item_type) if interactions is None else interactions
    return leave_one_out(df, item_type, item_ids, seed=0, max_test=2000 if item_type == "book" else None)


def build_item_vectors(item_type: str, weight: float | None = None, *, embedder=None,
                       interactions: pd.DataFrame | None = None, progress: bool = False) -> ItemVectors:
    """Fused vectors for every catalog item of `item_type`, collaborative part from the
    interactions minus the evaluation's test items (see `code_split`)."""
    items = load_items(item_type)
    ids = items["item_id"].tolist()
    content = content_vectors(item_texts(items), embedder, progress=progress)
    split = code_split(item_type, interactions, ids)
    collab, has = collaborative_vectors(ids, split.fit_frame("test"), COLLAB_DIM[item_type])
    w = FUSION_WEIGHT[item_type] if weight is None else float(weight)
    config = {"item_type": item_type, "text": "title|creator|collection|publisher|genres|description",
              "embed": EMBED_BACKEND, "collab": f"svd{COLLAB_DIM[item_type]}", "weight": w,
              "collab_fit": "leave_one_out seed 0 fit_frame(test)"}
    return ItemVectors(item_type, ids, fuse(content, collab, w), has, config)


# --------------------------------------------------------------------------- fusion measurement


def knn_next_item(vectors: np.ndarray, item_ids: list[str], fit: pd.DataFrame, targets: pd.DataFrame,
                  k: int = 10) -> dict:
    """Recall/NDCG@k of "recommend the items nearest the mean of the listener's fit items"
    (full ranking, fit items excluded, ties by metrics.tie_order)."""
    from recommend import metrics

    pos = {iid: i for i, iid in enumerate(item_ids)}
    by_listener = fit.groupby("listener_id")["item_id"].agg(list)
    tiebreak = metrics.tie_order(len(item_ids))
    work = []
    for lid, target in zip(targets["listener_id"], targets["item_id"]):
        hist = [pos[i] for i in by_listener.get(lid, []) if i in pos]
        if hist:
            work.append((hist, target))
    recs, gold = [], []
    batch = 64  # one matrix product per 64 listeners: (items x d) @ (d x 64)
    for start in range(0, len(work), batch):
        chunk = work[start:start + batch]
        profiles = np.stack([vectors[h].mean(axis=0) for h, _ in chunk], axis=1)
        scores = vectors @ profiles
        for j, (hist, target) in enumerate(chunk):
            top = metrics.top_k(scores[:, j], k, exclude=hist, tiebreak=tiebreak)
            recs.append([item_ids[i] for i in top])
            gold.append(target)
    out = {name: est.to_dict() for name, est in metrics.evaluate_lists(recs, gold, k).items()}
    out["listeners"] = len(gold)
    return out


def measure_fusion(item_type: str, weights=(0.0, 0.25, 0.5, 1.0, 2.0, None), embedder=None) -> dict:
    """Held-out next item by vector kNN for each fusion weight (None = collaborative only).

    Tuned on the validation stage (fit = train, predict the validation item);
    the chosen weight and the two pure ends are reported on the test stage
    (fit = train + validation, predict the test item), never tuned on."""
    items = load_items(item_type)
    ids = items["item_id"].tolist()
    content = content_vectors(item_texts(items), embedder)
    split = code_split(item_type, item_ids=ids)
    rows = {}
    for stage in ("valid", "test"):
        fit = split.fit_frame(stage)
        collab, has = collaborative_vectors(ids, fit, COLLAB_DIM[item_type])
        for w in weights:
            if stage == "test" and rows.get("chosen") not in (w,) and w not in (0.0, None):
                continue
            vec = collab if w is None else fuse(content, collab, w)
            key = "collab_only" if w is None else f"w={w}"
            rows.setdefault(key, {})[stage] = knn_next_item(vec, ids, fit, split.targets(stage))
            rows[key][stage]["items_with_collab"] = int(has.sum())
        if stage == "valid":
            fused = {w: rows[f"w={w}"]["valid"]["ndcg@10"]["mean"] for w in weights if w is not None}
            rows["chosen"] = max(fused, key=lambda w: (fused[w], -w))
    return rows


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m recommend.item_vectors", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("embed", help="fill the embedding cache for the catalogs' item texts")
    e.add_argument("--types", default="music,podcast")
    f = sub.add_parser("fusion", help="choose the fusion weight by held-out next-item kNN")
    f.add_argument("--types", default="music,podcast")
    f.add_argument("--weights", default="0,0.25,0.5,1,2,collab",
                   help="fusion weights to try; 'collab' = collaborative part alone")
    args = ap.parse_args(argv)
    types = [t.strip() for t in args.types.split(",") if t.strip()]
    if args.cmd == "embed":
        emb = make_embedder()
        for t in types:
            texts = item_texts(load_items(t))
            print(f"{t}: {len(texts)} texts", flush=True)
            content_vectors(texts, emb, progress=True)
            print(f"{t}: done {emb.stats()}", flush=True)
    if args.cmd == "fusion":
        import json

        emb = make_embedder()
        for t in types:
            weights = tuple(None if w.strip() == "collab" else float(w) for w in args.weights.split(","))
            rows = measure_fusion(t, weights=weights, embedder=emb)
            chosen = rows.pop("chosen")
            print(f"{t}: chosen weight {chosen} (by validation NDCG@10); kNN over the mean of the "
                  f"listener's items, full ranking", flush=True)
            for key, stages in rows.items():
                for stage, m in stages.items():
                    r, n = m["recall@10"], m["ndcg@10"]
                    print(f"  {key:<12} {stage:<5} n={m['listeners']:<5} recall@10 {r['mean']:.4f} "
                          f"[{r['lo']:.4f}, {r['hi']:.4f}]  ndcg@10 {n['mean']:.4f} [{n['lo']:.4f}, {n['hi']:.4f}]"
                          f"  items with collab {m['items_with_collab']}", flush=True)
            print(json.dumps({"item_type": t, "chosen": chosen, **rows}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
