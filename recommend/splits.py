"""Leave-one-out next-item splits, one per catalog type.

For every listener with at least `MIN_INTERACTIONS` (3) interactions:

- music (order known, `ORDER_KNOWN["music"]`): the listener's rows sorted by
  invoice date (stable, so purchases on one invoice keep line order); the last
  purchase is the test item, the one before it the validation item.
- book, podcast (order unknown): a random interaction is the test item and
  another random one the validation item, drawn per listener from a generator
  seeded by (seed, listener id), so a listener's draw does not depend on who
  else is in the split. The remaining rows keep the file order, which is
  arbitrary; a sequential model trained on them sees that arbitrary order.

Listeners with fewer interactions are skipped as test listeners (counted in
`Split.counts`) but their rows stay in training, as do the rows of listeners
not sampled. `max_test` (books: 2,000 by default in `recommend.evaluate`) keeps
a seeded random sample of the eligible listeners as test listeners; the others
keep all their rows in training.

Two fit frames: `fit_frame("valid")` = train (tuning: predict the validation
item), `fit_frame("test")` = train + validation rows (predict the test item).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from recommend.interactions import ORDER_KNOWN

MIN_INTERACTIONS = 3
STAGES = ("valid", "test")


@dataclass
class Split:
    item_type: str
    items: list[str]                 # the ranking universe: every catalog item of the type
    train: pd.DataFrame              # interactions minus the held-out rows
    valid: pd.DataFrame              # listener_id, item_id: one row per test listener
    test: pd.DataFrame               # listener_id, item_id: one row per test listener
    seed: int
    counts: dict[str, int] = field(default_factory=dict)

    def fit_frame(self, stage: str = "test") -> pd.DataFrame:
        """What a model may see when it predicts `stage`'s held-out item."""
        if stage not in STAGES:
            raise ValueError(f"stage {stage!r}: expected one of {STAGES}")
        if stage == "valid":
            return self.train
        return pd.concat([self.train, self.valid], ignore_index=True).sort_values(
            "_order", kind="stable").reset_index(drop=True)

    def targets(self, stage: str = "test") -> pd.DataFrame:
        if stage not in STAGES:
            raise ValueError(f"stage {stage!r}: expected one of {STAGES}")
        return self.valid if stage == "valid" else self.test


def _listener_rng(seed: int, listener_id: str) -> np.random.Generator:
    digest = hashlib.sha256(f"{seed}:{listener_id}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def leave_one_out(interactions: pd.DataFrame, item_type: str, items: list[str] | None = None, *,
                  seed: int = 0, max_test: int | None = None) -> Split:
    """The split described in the module docstring. `items` is the ranking universe
    (default: the items that occur in `interactions`). Rows keep an `_order` column
    (their position in the interaction log) so train + validation rows can be put
    back in log order."""
    if item_type not in ORDER_KNOWN:
        raise ValueError(f"item_type {item_type!r}: expected one of {sorted(ORDER_KNOWN)}")
    missing = [c for c in ("listener_id", "item_id", "ts", "rating") if c not in interactions]
    if missing:
        raise ValueError(f"interactions: columns {missing} missing")
    df = interactions.reset_index(drop=True).copy()
    df["_order"] = np.arange(len(df))
    if ORDER_KNOWN[item_type]:
        df = df.sort_values(["listener_id", "ts", "_order"], kind="stable", na_position="first")
        df["_order"] = np.arange(len(df))
    sizes = df.groupby("listener_id", sort=False).size()
    eligible = sorted(sizes.index[sizes >= MIN_INTERACTIONS])
    counts = {"listeners": int(len(sizes)), "skipped_under_3": int((sizes < MIN_INTERACTIONS).sum()),
              "eligible": len(eligible)}
    if max_test is not None and len(eligible) > max_test:
        rng = np.random.default_rng(seed)
        eligible = sorted(rng.choice(np.array(eligible, dtype=object), size=max_test, replace=False))
    counts["test_listeners"] = len(eligible)

    chosen = set(eligible)
    held_valid, held_test = [], []
    for lid, idx in df.loc[df["listener_id"].isin(chosen)].groupby("listener_id", sort=True).groups.items():
        idx = np.asarray(idx)
        if ORDER_KNOWN[item_type]:
            pos = np.argsort(df.loc[idx, "_order"].to_numpy(), kind="stable")
            test_i, valid_i = idx[pos[-1]], idx[pos[-2]]
        else:
            pick = _listener_rng(seed, lid).choice(len(idx), size=2, replace=False)
            test_i, valid_i = idx[pick[0]], idx[pick[1]]
        held_test.append(test_i)
        held_valid.append(valid_i)
    train = df.loc[~df.index.isin(held_test + held_valid)].sort_values("_order", kind="stable")
    test = df.loc[held_test].reset_index(drop=True)
    valid = df.loc[held_valid].reset_index(drop=True)
    universe = list(items) if items is not None else sorted(df["item_id"].unique())
    counts.update(train_rows=len(train), items=len(universe))
    return Split(item_type=item_type, items=universe, train=train.reset_index(drop=True), valid=valid,
                 test=test, seed=seed, counts=counts)
