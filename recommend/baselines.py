"""Classical next-item baselines, one interface for all of them (and for the
LLM recommenders that plug into `recommend.evaluate`):

    model.fit(fit_frame, items) -> model       # interactions a model may see; the ranking universe
    model.score(listener_ids) -> (n, n_items)  # higher is better, any scale
    model.recommend(listener_ids, k) -> [[item_id, ...], ...]   # the fit-frame items left out

`recommend` is the one the evaluation calls; a model that cannot score every
item (an LLM decoding codes) overrides it and returns its own top-K ids.

- popularity: number of listeners per item in the fit frame.
- item-kNN: cosine over binary listener x item co-occurrence,
  sim(i, j) = |U_i & U_j| / sqrt(|U_i| |U_j|); a listener's score for j is the
  sum of sim(i, j) over their items i. All neighbours count (no top-N pruning);
  it is computed as X D^-1/2 X^T X D^-1/2 per batch of listeners, never as the
  full item x item matrix (books have 270k items).
- ALS: `implicit`'s CPU AlternatingLeastSquares on binary confidence
  (1 + alpha per interaction), one thread.
- SASRec: `recommend.sasrec`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recommend.metrics import tie_order, top_k

BATCH = 64


class Recommender:
    name = "base"

    def __init__(self, seed: int = 0):
        self.seed = seed

    # ---- shared bookkeeping
    def _prepare(self, train: pd.DataFrame, items: Sequence[str]) -> None:
        self.items = list(items)
        self.item_index = {it: i for i, it in enumerate(self.items)}
        known = train["item_id"].map(self.item_index)
        if known.isna().any():
            bad = train.loc[known.isna(), "item_id"].iloc[0]
            raise ValueError(f"fit frame: item_id {bad!r} is not in the ranking universe")
        frame = train.assign(_i=known.astype(np.int64))
        self.listeners = list(dict.fromkeys(frame["listener_id"]))
        self.listener_index = {u: n for n, u in enumerate(self.listeners)}
        rows = frame["listener_id"].map(self.listener_index).to_numpy()
        cols = frame["_i"].to_numpy()
        x = sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)),
                          shape=(len(self.listeners), len(self.items)))
        x.sum_duplicates()
        x.data[:] = 1.0
        self.X = x
        # each listener's items in fit-frame order (the sequence a sequential model reads)
        self.sequences = frame.groupby("listener_id", sort=False)["_i"].apply(list).to_dict()
        self._tiebreak = tie_order(len(self.items), self.seed)

    def fit(self, train: pd.DataFrame, items: Sequence[str]) -> "Recommender":
        self._prepare(train, items)
        return self

    def seen(self, listener_id: str) -> list[int]:
        return self.sequences.get(listener_id, [])

    def score(self, listener_ids: Sequence[str]) -> np.ndarray:
        raise NotImplementedError

    def recommend(self, listener_ids: Sequence[str], k: int) -> list[list[str]]:
        out: list[list[str]] = []
        for start in range(0, len(listener_ids), BATCH):
            batch = list(listener_ids[start:start + BATCH])
            scores = self.score(batch)
            for lid, row in zip(batch, scores):
                idx = top_k(row, k, self.seen(lid), self._tiebreak)
                out.append([self.items[i] for i in idx])
        return out

    def _rows(self, listener_ids: Sequence[str]) -> sp.csr_matrix:
        """The listeners' binary rows of X (an empty row for a listener not in the fit frame)."""
        idx = [self.listener_index.get(u, -1) for u in listener_ids]
        rows = [self.X[i] if i >= 0 else sp.csr_matrix((1, len(self.items)), dtype=np.float32) for i in idx]
        return sp.vstack(rows).tocsr()


class Popularity(Recommender):
    name = "popularity"

    def fit(self, train, items):
        self._prepare(train, items)
        self.popularity = np.asarray(self.X.sum(axis=0)).ravel()
        return self

    def score(self, listener_ids):
        return np.broadcast_to(self.popularity, (len(listener_ids), len(self.items)))


class RandomRanker(Recommender):
    """A floor: a fresh random score per listener (seeded)."""

    name = "random"

    def fit(self, train, items):
        self._prepare(train, items)
        self._rng = np.random.default_rng(self.seed)
        return self

    def score(self, listener_ids):
        return self._rng.random((len(listener_ids), len(self.items)))


class ItemKNN(Recommender):
    name = "item-knn"

    def fit(self, train, items):
        self._prepare(train, items)
        degree = np.asarray(self.X.sum(axis=0)).ravel()
        with np.errstate(divide="ignore"):
            self.inv_sqrt_degree = np.where(degree > 0, 1.0 / np.sqrt(degree), 0.0).astype(np.float32)
        self.XT = self.X.T.tocsr()
        self.XnT = (sp.diags(self.inv_sqrt_degree) @ self.XT).tocsr()  # (X D^-1/2)^T
        return self

    def score(self, listener_ids):
        q = self._rows(listener_ids) @ sp.diags(self.inv_sqrt_degree)  # x_u D^-1/2
        overlap = np.asarray((q @ self.XT).todense())                   # (batch, listeners)
        return np.asarray(self.XnT @ overlap.T).T                       # x_u D^-1/2 X^T X D^-1/2


class ALS(Recommender):
    name = "als"

    def __init__(self, seed: int = 0, factors: int = 64, regularization: float = 0.05,
                 iterations: int = 15, alpha: float = 10.0):
        super().__init__(seed)
        self.factors, self.regularization, self.iterations, self.alpha = factors, regularization, iterations, alpha

    def fit(self, train, items):
        from implicit.cpu.als import AlternatingLeastSquares  # heavy: only when ALS is fitted
        from threadpoolctl import threadpool_limits

        self._prepare(train, items)
        self.model = AlternatingLeastSquares(
            factors=self.factors, regularization=self.regularization, iterations=self.iterations,
            alpha=self.alpha, num_threads=1, random_state=self.seed, calculate_training_loss=False)
        with threadpool_limits(1):
            self.model.fit(self.X.astype(np.float32).tocsr(), show_progress=False)
        return self

    def score(self, listener_ids):
        idx = [self.listener_index.get(u, -1) for u in listener_ids]
        users = np.asarray(self.model.user_factors)
        vecs = np.stack([users[i] if i >= 0 else np.zeros(users.shape[1], dtype=users.dtype) for i in idx])
        return vecs @ np.asarray(self.model.item_factors).T


BASELINES: dict[str, Callable[[], Recommender]] = {
    "random": RandomRanker,
    "popularity": Popularity,
    "item-knn": ItemKNN,
    "als": ALS,
    # chosen on the book validation split (Recall@10 0.0365 vs 0.031 for 64 factors; grid in the report)
    "als-f128": lambda: ALS(factors=128),
}  # recommend.sasrec adds "sasrec" to the eval's table (it builds on Recommender, so it lives there)
