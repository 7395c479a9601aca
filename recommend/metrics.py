"""Next-item metrics with one held-out item per listener.

Full ranking: a model scores every item of the catalog type; the listener's own
fit-frame items are excluded (they cannot be the next new item); the top K of
the rest are the recommendation. Ties in score are broken by a fixed seeded
random order of the items (`tie_order`), never by catalog order, which would
favour low ids.

With one relevant item, Recall@K is the hit rate (1 when the item is in the
top K) and NDCG@K is 1/log2(rank + 1) for a hit at rank (1-based), else 0
(the ideal DCG is 1). The 95% interval is a percentile bootstrap over test
listeners (2,000 resamples, seeded).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

K = 10
BOOTSTRAP = 2000


def tie_order(n_items: int, seed: int = 0) -> np.ndarray:
    """A random rank per item (0..n-1); lower wins a tie."""
    return np.random.default_rng(seed).permutation(n_items)


def top_k(scores: np.ndarray, k: int, exclude: Sequence[int] = (), tiebreak: np.ndarray | None = None) -> np.ndarray:
    """Indices of the k best items by score (descending), `exclude` left out, ties by `tiebreak`."""
    s = np.asarray(scores, dtype=np.float64).copy()
    if len(exclude):
        s[np.asarray(exclude, dtype=np.int64)] = -np.inf
    n_ok = int(np.isfinite(s).sum()) if np.isneginf(s).any() else len(s)
    k = min(k, n_ok)
    if k <= 0:
        return np.empty(0, dtype=np.int64)
    tb = np.arange(len(s)) if tiebreak is None else tiebreak
    if k < len(s):
        kth = np.partition(s, len(s) - k)[len(s) - k]  # the k-th largest score
        cand = np.flatnonzero(s >= kth)
    else:
        cand = np.arange(len(s))
    order = np.lexsort((tb[cand], -s[cand]))
    return cand[order[:k]]


def hit_rank(recommended: Sequence[str], target: str) -> int | None:
    """1-based rank of target in the list, None when absent."""
    for i, item in enumerate(recommended):
        if item == target:
            return i + 1
    return None


def per_listener(recommended: Sequence[Sequence[str]], targets: Sequence[str], k: int = K) -> tuple[np.ndarray, np.ndarray]:
    """(recall@k, ndcg@k) arrays, one value per listener."""
    if len(recommended) != len(targets):
        raise ValueError(f"{len(recommended)} recommendation lists for {len(targets)} targets")
    recall, ndcg = np.zeros(len(targets)), np.zeros(len(targets))
    for i, (recs, target) in enumerate(zip(recommended, targets)):
        rank = hit_rank(list(recs)[:k], target)
        if rank is not None:
            recall[i] = 1.0
            ndcg[i] = 1.0 / np.log2(rank + 1)
    return recall, ndcg


@dataclass
class Estimate:
    mean: float
    lo: float
    hi: float

    def __str__(self) -> str:
        return f"{self.mean:.4f} [{self.lo:.4f}, {self.hi:.4f}]"

    def to_dict(self) -> dict[str, float]:
        return {"mean": self.mean, "lo": self.lo, "hi": self.hi}


def bootstrap_ci(values: np.ndarray, seed: int = 0, n_boot: int = BOOTSTRAP) -> Estimate:
    """Mean with a 95% percentile-bootstrap interval over the listeners."""
    v = np.asarray(values, dtype=np.float64)
    if len(v) == 0:
        return Estimate(float("nan"), float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, len(v), size=(n_boot, len(v)))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return Estimate(float(v.mean()), float(lo), float(hi))


def evaluate_lists(recommended: Sequence[Sequence[str]], targets: Sequence[str], k: int = K,
                   seed: int = 0) -> dict[str, Estimate]:
    recall, ndcg = per_listener(recommended, targets, k)
    return {f"recall@{k}": bootstrap_ci(recall, seed), f"ndcg@{k}": bootstrap_ci(ndcg, seed)}
