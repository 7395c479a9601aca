"""Residual k-means (RQ-KMeans, as in OneRec / GRID): item vectors -> short codes.

Level 1 clusters the vectors into K1 groups; level 2 clusters what level 1
left unexplained (vector minus its level-1 centroid) into K2; and so on for L
levels. An item's code is its centroid index per level, (c1, ..., cL), and its
vector is approximated by the sum of those centroids. Items whose whole code
collides get a de-duplication digit (0, 1, 2, ... in item-id order, so the
digit does not depend on row order), so every item has exactly one code.

KMeans: sklearn `KMeans` (n_init 4, seeded) for small catalogs, faiss k-means
(seeded) above LARGE_ABOVE items (see `_kmeans`). `balanced=True` swaps the assignment
step for a capacity-limited one (`balanced_assign`: each cluster takes at
most ceil(n / K) items, the most confident items choosing first) for a few
Lloyd rounds started from the k-means solution; `k-means-constrained` (min-cost
flow) would do the same exactly but is a new dependency and O(n K) flow per
iteration, too slow at 270k books. Whether balancing is the default is decided
by `stats` on the real catalogs (see semantic_ids.DEFAULT_CONFIG).

`stats(codes, vectors, codebook)` reports per level: utilisation (used codes / K),
entropy (bits and as a fraction of log2 K), prefix collision rate (items whose
prefix up to that level is shared), reconstruction cosine (sum of centroids up
to that level vs the vector), and "neighbours share prefixes" (of each item's
10 nearest neighbours by cosine, the fraction sharing its first 1, 2, ... digits,
beside the same fraction for 10 random items).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

LARGE_ABOVE = 20_000


@dataclass
class Codebook:
    centroids: list[np.ndarray]   # one (K_l, d) float32 array per level

    @property
    def sizes(self) -> list[int]:
        return [int(c.shape[0]) for c in self.centroids]

    @property
    def levels(self) -> int:
        return len(self.centroids)


def _check(vectors: np.ndarray) -> np.ndarray:
    v = np.asarray(vectors, dtype=np.float32)
    if v.ndim != 2 or v.shape[0] == 0:
        raise ValueError(f"vectors: expected a non-empty (n, d) array, got shape {v.shape}")
    if not np.isfinite(v).all():
        row = int(np.flatnonzero(~np.isfinite(v).all(axis=1))[0])
        raise ValueError(f"vectors: row {row} is not finite")
    return v


def nearest(x: np.ndarray, centroids: np.ndarray, chunk: int = 8192) -> np.ndarray:
    """Index of the nearest centroid (Euclidean) per row; ties to the lower index."""
    out = np.empty(len(x), dtype=np.int64)
    c2 = (centroids.astype(np.float64) ** 2).sum(axis=1)
    for s in range(0, len(x), chunk):
        d = c2[None, :] - 2.0 * (x[s:s + chunk].astype(np.float64) @ centroids.T.astype(np.float64))
        out[s:s + chunk] = d.argmin(axis=1)
    return out


def _top_choices(x: np.ndarray, centroids: np.ndarray, m: int, chunk: int = 8192) -> tuple[np.ndarray, np.ndarray]:
    """(choices (n, m) int32, their squared distances (n, m)) nearest first, in chunks
    so a 270k x 256 distance matrix is never held at once."""
    n, k = len(x), len(centroids)
    c32 = np.ascontiguousarray(centroids, dtype=np.float32)
    c2 = (c32.astype(np.float64) ** 2).sum(axis=1)
    idx = np.empty((n, m), dtype=np.int32)
    dist = np.empty((n, m), dtype=np.float64)
    for s in range(0, n, chunk):
        xs = x[s:s + chunk]
        d = (xs.astype(np.float64) ** 2).sum(axis=1)[:, None] + c2[None, :] - 2.0 * (xs @ c32.T)
        part = np.sort(np.argpartition(d, m - 1, axis=1)[:, :m], axis=1) if m < k \
            else np.tile(np.arange(k), (len(xs), 1))
        pd_ = np.take_along_axis(d, part, axis=1)
        order = np.argsort(pd_, axis=1, kind="stable")  # by distance, ties to the lower index
        idx[s:s + chunk] = np.take_along_axis(part, order, axis=1)
        dist[s:s + chunk] = np.take_along_axis(pd_, order, axis=1)
    return idx, dist


def balanced_assign(x: np.ndarray, centroids: np.ndarray, choices: int = 32) -> np.ndarray:
    """Nearest centroid with capacity ceil(n / K). Items are ranked by how much they lose
    when pushed to their second choice (most to lose first); in round r each unplaced item
    asks for its r-th nearest cluster (of its `choices` nearest) and a cluster with room
    takes askers in rank order; the few left after all rounds take the nearest cluster that
    still has room. Deterministic (stable sorts)."""
    n, k = len(x), len(centroids)
    cap = math.ceil(n / k)
    m = min(k, choices)
    pref, dist = _top_choices(x, centroids, m)
    regret = dist[:, 1] - dist[:, 0] if m > 1 else np.zeros(n)
    priority = np.empty(n, dtype=np.int64)
    priority[np.argsort(-regret, kind="stable")] = np.arange(n)
    load = np.zeros(k, dtype=np.int64)
    out = np.full(n, -1, dtype=np.int64)
    # Rounds by choice rank (vectorised): in round r every unplaced item asks for its
    # r-th choice; a cluster takes askers by priority while it has room.
    for r in range(m):
        todo = np.flatnonzero(out < 0)
        if not len(todo):
            break
        want = pref[todo, r].astype(np.int64)
        srt = np.lexsort((priority[todo], want))
        todo, want = todo[srt], want[srt]
        first = np.searchsorted(want, want, side="left")
        rank_in_cluster = np.arange(len(want)) - first
        ok = rank_in_cluster < (cap - load[want])
        out[todo[ok]] = want[ok]
        load += np.bincount(want[ok], minlength=k)
    left = np.flatnonzero(out < 0)
    if len(left):
        c64 = centroids.astype(np.float64)
        for i in left[np.argsort(priority[left], kind="stable")]:
            d = ((c64 - x[i]) ** 2).sum(axis=1)
            d[load >= cap] = np.inf
            out[i] = int(np.argmin(d))
            load[out[i]] += 1
    return out


def _means(x: np.ndarray, labels: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Cluster means (float64 sums via a sparse one-hot product); empty clusters keep theirs."""
    from scipy import sparse

    k = len(centroids)
    onehot = sparse.csr_matrix((np.ones(len(x)), (labels, np.arange(len(x)))), shape=(k, len(x)))
    sums = np.asarray(onehot @ x.astype(np.float64))
    counts = np.bincount(labels, minlength=k)
    out = centroids.copy()
    filled = counts > 0
    out[filled] = (sums[filled] / counts[filled, None]).astype(np.float32)
    return out


def _kmeans(x: np.ndarray, k: int, seed: int, balanced: bool) -> tuple[np.ndarray, np.ndarray]:
    """(centroids (k', d), labels) for one level; k' = min(k, distinct rows).

    Small catalogs: sklearn KMeans (n_init 4). Above LARGE_ABOVE items: faiss k-means
    (seeded, trained on its own seeded sample of 256 points per centroid), measured at
    16 s for 50k x 448 into 256 against 36 s for sklearn MiniBatchKMeans (n_init 1, 20
    epochs) on this machine; every item is then assigned to its nearest centroid."""
    if len(x) < 4 * k:  # few rows: k-means needs k distinct points
        k = max(1, min(k, len(np.unique(np.round(x, 6), axis=0))))
    if len(x) > LARGE_ABOVE:
        import faiss

        km = faiss.Kmeans(x.shape[1], k, niter=20, seed=seed + 1, max_points_per_centroid=256)
        km.train(np.ascontiguousarray(x, dtype=np.float32))
        centroids = np.asarray(km.centroids, dtype=np.float32).copy()
        rounds = 2
    else:
        from sklearn.cluster import KMeans

        km = KMeans(n_clusters=k, random_state=seed, n_init=4, max_iter=300)
        km.fit(x)
        centroids = km.cluster_centers_.astype(np.float32)
        rounds = 5
    if balanced:
        for _ in range(rounds):  # Lloyd rounds with the capacity-limited assignment
            labels = balanced_assign(x, centroids)
            centroids = _means(x, labels, centroids)
    labels = balanced_assign(x, centroids) if balanced else nearest(x, centroids)
    return centroids, labels


def fit(vectors: np.ndarray, sizes: list[int], seed: int = 0, balanced: bool = False) -> tuple[Codebook, np.ndarray]:
    """(codebook, codes (n, L) int64) by residual k-means with K_l = sizes[l]."""
    x = _check(vectors).copy()
    if not sizes or any(int(k) < 1 for k in sizes):
        raise ValueError(f"sizes: expected a list of positive cluster counts, got {sizes}")
    centroids, codes = [], []
    for level, k in enumerate(sizes):
        c, labels = _kmeans(x, int(k), seed + level, balanced)
        centroids.append(c)
        codes.append(labels)
        x = x - c[labels]
    return Codebook(centroids), np.stack(codes, axis=1)


def encode(codebook: Codebook, vectors: np.ndarray) -> np.ndarray:
    """Codes of new vectors under an existing codebook (nearest centroid per level)."""
    x = _check(vectors).copy()
    codes = []
    for c in codebook.centroids:
        labels = nearest(x, c)
        codes.append(labels)
        x = x - c[labels]
    return np.stack(codes, axis=1)


def reconstruct(codebook: Codebook, codes: np.ndarray, levels: int | None = None) -> np.ndarray:
    levels = codebook.levels if levels is None else levels
    out = np.zeros((len(codes), codebook.centroids[0].shape[1]), dtype=np.float32)
    for lvl in range(levels):
        out += codebook.centroids[lvl][codes[:, lvl]]
    return out


def dedup_digits(codes: np.ndarray, item_ids: list[str]) -> np.ndarray:
    """0 for the first item (by item id) of each distinct code, 1 for the next, ..."""
    if len(codes) != len(item_ids):
        raise ValueError(f"dedup_digits: {len(codes)} codes for {len(item_ids)} item ids")
    order = sorted(range(len(item_ids)), key=lambda i: item_ids[i])
    seen: dict[tuple, int] = {}
    out = np.zeros(len(codes), dtype=np.int64)
    for i in order:
        key = tuple(int(c) for c in codes[i])
        out[i] = seen.get(key, 0)
        seen[key] = out[i] + 1
    return out


# --------------------------------------------------------------------------- stats


def _entropy_bits(labels: np.ndarray) -> float:
    _, counts = np.unique(labels, return_counts=True)
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())


def _prefix_keys(codes: np.ndarray, depth: int) -> np.ndarray:
    """One int64 per row for the first `depth` digits (mixed radix)."""
    key = np.zeros(len(codes), dtype=np.int64)
    for lvl in range(depth):
        key = key * (int(codes[:, lvl].max()) + 1) + codes[:, lvl]
    return key


def neighbour_ids(vectors: np.ndarray, queries: np.ndarray, k: int = 10) -> np.ndarray:
    """(len(queries), k) indices of each query row's k nearest other rows by cosine."""
    import faiss

    v = np.ascontiguousarray(vectors, dtype=np.float32)
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    index = faiss.IndexFlatIP(v.shape[1])
    index.add(v)
    _, nn = index.search(v[queries], k + 1)
    out = np.empty((len(queries), k), dtype=np.int64)
    for r, q in enumerate(queries):
        row = [j for j in nn[r] if j != q and j >= 0][:k]
        out[r, :len(row)] = row
        out[r, len(row):] = row[-1] if row else q
    return out


def stats(codes: np.ndarray, vectors: np.ndarray, codebook: Codebook, sample: int = 2000,
          k: int = 10, seed: int = 0) -> dict:
    """Per-level codebook statistics (see the module docstring); neighbour checks on
    a seeded sample of `sample` items."""
    v = _check(vectors)
    n = len(codes)
    rng = np.random.default_rng(seed)
    queries = np.sort(rng.choice(n, size=min(sample, n), replace=False))
    nn = neighbour_ids(v, queries, k) if n > 1 else np.zeros((len(queries), 0), dtype=np.int64)
    rand = rng.integers(0, n, size=(len(queries), k))
    unit = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    levels = []
    for lvl, size in enumerate(codebook.sizes):
        labels = codes[:, lvl]
        used = len(np.unique(labels))
        h = _entropy_bits(labels)
        key = _prefix_keys(codes, lvl + 1)
        _, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
        rec = reconstruct(codebook, codes, lvl + 1)
        cos = (unit * rec).sum(axis=1) / np.maximum(np.linalg.norm(rec, axis=1), 1e-12)
        share_nn = float((key[nn] == key[queries][:, None]).mean()) if nn.size else float("nan")
        share_rand = float((key[rand] == key[queries][:, None]).mean())
        levels.append({
            "level": lvl + 1, "k": size, "used": used, "utilisation": used / size,
            "entropy_bits": h, "entropy_frac": h / math.log2(size) if size > 1 else 1.0,
            "prefix_collision_rate": float((counts[inverse] > 1).mean()),
            "max_bucket": int(counts.max()),
            "recon_cos_mean": float(cos.mean()), "recon_cos_p10": float(np.percentile(cos, 10)),
            "nn_share_prefix": share_nn, "random_share_prefix": share_rand,
        })
    full = _prefix_keys(codes, codebook.levels)
    _, inv, cnt = np.unique(full, return_inverse=True, return_counts=True)
    return {"items": n, "sizes": codebook.sizes, "levels": levels,
            "collision_rate": float((cnt[inv] > 1).mean()),
            "distinct_codes": int(len(cnt)), "dedup_digits_needed": int(cnt.max()),
            "neighbour_sample": int(len(queries)), "k_neighbours": k}
