"""recommend: leave-one-out splits, next-item metrics, baselines, the evaluation table."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from recommend import evaluate, metrics
from recommend.baselines import ALS, ItemKNN, Popularity, RandomRanker
from recommend.splits import MIN_INTERACTIONS, leave_one_out

NAN = float("nan")


def frame(rows, ts=None):
    df = pd.DataFrame(rows, columns=["listener_id", "item_id"])
    df["ts"] = ts if ts is not None else NAN
    df["rating"] = NAN
    return df


# ---- metrics, hand-computed


def test_hit_at_rank_1_is_ndcg_1_and_rank_3_is_inverse_log2_4():
    recall, ndcg = metrics.per_listener([["a", "b", "c"], ["x", "y", "a"], ["x", "y", "z"]], ["a", "a", "a"])
    assert recall.tolist() == [1.0, 1.0, 0.0]
    assert ndcg[0] == 1.0
    assert ndcg[1] == pytest.approx(1 / math.log2(4))
    assert ndcg[2] == 0.0


def test_hit_beyond_k_does_not_count():
    recs = [[f"i{n}" for n in range(20)]]
    recall, ndcg = metrics.per_listener(recs, ["i10"], k=10)
    assert recall[0] == 0 and ndcg[0] == 0
    recall, _ = metrics.per_listener(recs, ["i9"], k=10)
    assert recall[0] == 1


def test_top_k_excludes_seen_and_breaks_ties_by_the_given_order():
    scores = np.array([5.0, 1.0, 5.0, 3.0, 5.0])
    assert metrics.top_k(scores, 2, exclude=[0]).tolist() == [2, 4]
    tb = np.array([0, 1, 4, 2, 3])  # item 4 wins the tie over item 2
    assert metrics.top_k(scores, 2, exclude=[0], tiebreak=tb).tolist() == [4, 2]
    assert metrics.top_k(scores, 10, exclude=[0, 1]).tolist() == [2, 4, 3]


def test_bootstrap_interval_brackets_the_mean_and_is_degenerate_for_constant_values():
    est = metrics.bootstrap_ci(np.array([0.0] * 70 + [1.0] * 30))
    assert est.mean == pytest.approx(0.3)
    assert est.lo < est.mean < est.hi
    assert 0.2 < est.lo and est.hi < 0.4  # sd of the mean ~ 0.046
    const = metrics.bootstrap_ci(np.ones(10))
    assert const.lo == const.hi == const.mean == 1.0


# ---- splits


def test_ordered_split_holds_out_the_last_and_the_previous_purchase():
    df = frame([("u", "a"), ("u", "b"), ("u", "c"), ("u", "d"), ("v", "a"), ("v", "b")],
               ts=[3.0, 1.0, 2.0, 2.0, 1.0, 2.0])
    s = leave_one_out(df, "music")
    assert s.test[["listener_id", "item_id"]].values.tolist() == [["u", "a"]]     # ts 3
    assert s.valid[["listener_id", "item_id"]].values.tolist() == [["u", "d"]]    # ts 2, later row of the tie
    assert s.counts["skipped_under_3"] == 1
    assert sorted(s.train.loc[s.train.listener_id == "u", "item_id"]) == ["b", "c"]
    assert len(s.train.loc[s.train.listener_id == "v"]) == 2  # skipped as a test listener, kept in training
    fit = s.fit_frame("test")
    assert fit.loc[fit.listener_id == "u", "item_id"].tolist() == ["b", "c", "d"]  # log order


def test_unordered_split_leaves_exactly_one_test_and_one_valid_per_listener_seeded():
    rng = np.random.default_rng(1)
    rows = [(f"u{u}", f"i{i}") for u in range(50) for i in rng.choice(40, size=rng.integers(1, 10), replace=False)]
    df = frame(rows)
    s = leave_one_out(df, "book", seed=3)
    sizes = df.groupby("listener_id").size()
    eligible = set(sizes.index[sizes >= MIN_INTERACTIONS])
    assert set(s.test.listener_id) == eligible and s.test.listener_id.is_unique
    assert set(s.valid.listener_id) == eligible and s.valid.listener_id.is_unique
    assert len(s.train) + len(s.test) + len(s.valid) == len(df)
    held = set(zip(s.test.listener_id, s.test.item_id)) | set(zip(s.valid.listener_id, s.valid.item_id))
    assert not held & set(zip(s.train.listener_id, s.train.item_id))
    assert s.test.equals(leave_one_out(df, "book", seed=3).test)
    assert not s.test.item_id.equals(leave_one_out(df, "book", seed=4).test.item_id)


def test_max_test_samples_listeners_and_keeps_the_rest_in_training():
    df = frame([(f"u{u}", f"i{i}") for u in range(30) for i in range(5)])
    s = leave_one_out(df, "podcast", max_test=10)
    assert len(s.test) == 10 and s.counts["eligible"] == 30
    assert len(s.train) == len(df) - 20


def test_unknown_stage_is_a_clear_error():
    s = leave_one_out(frame([("u", "a"), ("u", "b"), ("u", "c")]), "podcast")
    with pytest.raises(ValueError, match="stage 'train'"):
        s.fit_frame("train")


# ---- baselines


def _clustered(seed=0, n_users=200, n_items=60, per_user=6):
    """Two popularity regimes: items 0-9 are liked by most listeners; each
    listener also picks from their own cluster of ten."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        cluster = u % 5
        pool = np.r_[np.arange(10), 10 + cluster * 10 + np.arange(10)]
        weights = np.r_[np.full(10, 3.0), np.ones(10)]
        for i in rng.choice(pool, size=per_user, replace=False, p=weights / weights.sum()):
            rows.append((f"u{u}", f"i{i}"))
    return frame(rows), [f"i{i}" for i in range(n_items)]


def _recall(model_cls, df, items):
    s = leave_one_out(df, "podcast", items, seed=0)
    lists = model_cls().fit(s.fit_frame("test"), s.items).recommend(s.test.listener_id.tolist(), 10)
    return metrics.per_listener(lists, s.test.item_id.tolist())[0].mean()


def test_popularity_beats_random_on_a_stand_in():
    df, items = _clustered()
    assert _recall(Popularity, df, items) > _recall(RandomRanker, df, items) + 0.1


def test_item_knn_uses_the_cluster_and_beats_popularity():
    df, items = _clustered()
    assert _recall(ItemKNN, df, items) > _recall(Popularity, df, items)


def test_item_knn_scores_are_cosine_co_occurrence():
    df = frame([("u1", "a"), ("u1", "b"), ("u2", "a"), ("u2", "b"), ("u3", "a"), ("u3", "c")])
    m = ItemKNN().fit(df, ["a", "b", "c", "d"])
    s = m.score(["u1"])[0]  # u1 has a, b: score(c) = sim(a, c) + sim(b, c) = 1/sqrt(3*1) + 0
    assert s[2] == pytest.approx(1 / math.sqrt(3))
    assert s[3] == 0.0
    assert m.recommend(["u1"], 1) == [["c"]]


def test_als_on_a_tiny_matrix_ranks_the_co_occurring_item_first():
    pytest.importorskip("implicit")
    rows = []
    for u in range(12):  # a and b always together; c and d always together
        rows += [(f"ab{u}", "a"), (f"ab{u}", "b"), (f"cd{u}", "c"), (f"cd{u}", "d")]
    rows += [("q", "a")]
    m = ALS(factors=4, iterations=20, regularization=0.01).fit(frame(rows), ["a", "b", "c", "d", "e"])
    assert m.recommend(["q"], 1) == [["b"]]


def test_sasrec_learns_a_deterministic_successor():
    pytest.importorskip("torch")
    from recommend.sasrec import SASRec

    rows, ts = [], []
    for u in range(40):  # every listener walks i0 -> i1 -> ... with a random start
        start = u % 6
        for step, i in enumerate(range(start, start + 5)):
            rows.append((f"u{u}", f"i{i}"))
            ts.append(float(step))
    df = frame(rows, ts)
    items = [f"i{i}" for i in range(12)]
    s = leave_one_out(df, "music", items)
    m = SASRec(dim=16, blocks=1, max_len=8, epochs=60, time_budget_s=30, dropout=0.0, lr=5e-3).fit(
        s.fit_frame("test"), s.items)
    lists = m.recommend(s.test.listener_id.tolist(), 1)
    assert metrics.per_listener(lists, s.test.item_id.tolist(), k=1)[0].mean() > 0.8


# ---- evaluation table


def test_registered_model_joins_the_table(monkeypatch):
    df, items = _clustered(n_users=40)
    split = leave_one_out(df, "podcast", items)

    class Oracle:
        def fit(self, train, items):
            self.answers = dict(zip(split.test.listener_id, split.test.item_id))
            return self

        def recommend(self, listener_ids, k):
            return [[self.answers[u]] for u in listener_ids]

    monkeypatch.setattr(evaluate, "MODELS", dict(evaluate.MODELS))
    evaluate.register_model("oracle", Oracle)
    row = evaluate.evaluate_model(split, "oracle", evaluate.MODELS["oracle"])
    assert row["recall@10"]["mean"] == 1.0 and row["ndcg@10"]["mean"] == 1.0
    assert row["n_test"] == len(split.test)
    assert "oracle" in evaluate.format_row(row)
    with pytest.raises(ValueError, match="callable"):
        evaluate.register_model("broken", None)
