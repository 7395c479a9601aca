"""Semantic IDs: residual k-means codes, de-dup digit, versioned table (recommend.rqkmeans,
recommend.semantic_ids) on a small synthetic stand-in, plus the real music table if built."""

import numpy as np
import pandas as pd
import pytest

from recommend import rqkmeans
from recommend import semantic_ids as sid
from recommend.item_vectors import ItemVectors

CONFIG = {"sizes": [16, 8, 8], "balanced": False, "seed": 0}


def clustered_vectors(n=300, d=24, groups=12, seed=0, spread=0.15):
    """Unit vectors around `groups` centres, a few exact duplicates so codes must collide."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(groups, d))
    x = centres[rng.integers(0, groups, size=n)] + spread * rng.normal(size=(n, d))
    if n >= 7:
        x[-6:] = x[-7]  # 7 identical rows: one code before de-dup
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32)


def stand_in(n=300, seed=0, **kw):
    ids = [f"music:{i}" for i in range(n)]
    return ItemVectors("music", ids, clustered_vectors(n, seed=seed, **kw), np.ones(n, bool),
                       {"synthetic": seed})


def test_every_item_has_exactly_one_code_and_duplicates_get_dedup_digits(tmp_path):
    vec = stand_in()
    table = sid.build("music", vectors=vec, config=CONFIG, home=tmp_path)
    assert table.item_ids() == vec.item_ids
    codes = table.codes()
    assert len(set(codes)) == len(codes) == 300
    dup = table.frame.iloc[-7:]
    assert dup[["c1", "c2", "c3"]].nunique().max() == 1  # identical vectors, identical digits
    bucket = table.frame[table.frame["code"].str.rsplit("<", n=1).str[0] == dup["code"].iloc[0].rsplit("<", 1)[0]]
    assert len(bucket) >= 7
    assert bucket.sort_values("item_id")["dedup"].tolist() == list(range(len(bucket)))
    for iid in vec.item_ids[:20]:
        assert table.item_of(table.code_of(iid)) == iid
        assert len(sid.parse_code(table.code_of(iid))) == 4


def test_table_round_trips_through_disk(tmp_path):
    table = sid.build("music", vectors=stand_in(), config=CONFIG, home=tmp_path)
    loaded = sid.load_table("music", home=tmp_path)
    assert loaded.version == table.version == sid.latest("music", tmp_path)
    assert loaded.levels == 3 and loaded.sizes == [16, 8, 8]
    assert dict(zip(loaded.item_ids(), loaded.codes())) == dict(zip(table.item_ids(), table.codes()))
    vocab = set(loaded.token_vocab())
    assert len(vocab) == 16 + 8 + 8 + int(loaded.frame["dedup"].max()) + 1
    for code in loaded.codes():
        assert set(f"<{t}>" for t in code.strip("<>").split("><")) <= vocab
    prefix = loaded.code_of("music:0").split(">")[0] + ">"
    under = loaded.items_under(prefix)
    assert "music:0" in under and all(loaded.code_of(i).startswith(prefix) for i in under)
    with pytest.raises(KeyError, match="music:nope"):
        loaded.code_of("music:nope")
    with pytest.raises(KeyError, match="names no item"):
        loaded.item_of("<a_0><b_0><c_0><d_99>")


def test_rebuild_with_same_inputs_is_identical(tmp_path):
    first = sid.build("music", vectors=stand_in(), config=CONFIG, home=tmp_path / "one")
    again = sid.build("music", vectors=stand_in(), config=CONFIG, home=tmp_path / "two")  # recomputed
    assert again.version == first.version
    pd.testing.assert_frame_equal(first.frame, again.frame)
    found = sid.build("music", vectors=stand_in(), config=CONFIG, home=tmp_path / "one")
    assert sid.versions("music", tmp_path / "one") == [first.version]
    pd.testing.assert_frame_equal(found.frame, first.frame)


def test_changed_inputs_write_a_new_version_and_leave_the_old_one(tmp_path):
    old = sid.build("music", vectors=stand_in(seed=0), config=CONFIG, home=tmp_path)
    old_file = sid.ids_dir(tmp_path) / f"music-{old.version}.parquet"
    before = old_file.read_bytes()
    new = sid.build("music", vectors=stand_in(seed=1), config=CONFIG, home=tmp_path)
    other_cfg = sid.build("music", vectors=stand_in(seed=0), config={**CONFIG, "sizes": [12, 8, 8]},
                          home=tmp_path)
    assert len({old.version, new.version, other_cfg.version}) == 3
    assert sid.versions("music", tmp_path) == [old.version, new.version, other_cfg.version]
    assert sid.latest("music", tmp_path) == other_cfg.version
    assert old_file.read_bytes() == before
    pd.testing.assert_frame_equal(sid.load_table("music", old.version, tmp_path).frame, old.frame)
    with pytest.raises(FileNotFoundError, match="music-0000000000"):
        sid.load_table("music", "0000000000", tmp_path)


def test_stats_are_in_range_and_codes_follow_the_geometry():
    vec = stand_in()
    frame, st, codebook = sid.assign_codes(vec.vectors, vec.item_ids, [16, 8, 8], balanced=False)
    assert st["items"] == 300 and st["sizes"] == [16, 8, 8]
    assert 0 < st["collision_rate"] < 1 and st["dedup_digits_needed"] >= 7
    errors = []
    for lv in st["levels"]:
        assert 0 < lv["utilisation"] <= 1 and lv["used"] <= lv["k"]
        assert 0 <= lv["entropy_frac"] <= 1 + 1e-9
        assert 0 <= lv["prefix_collision_rate"] <= 1
        assert -1 <= lv["recon_cos_mean"] <= 1
        digits = frame[[f"c{i + 1}" for i in range(lv["level"])]].to_numpy()
        rec = rqkmeans.reconstruct(codebook, np.pad(digits, ((0, 0), (0, 3 - lv["level"]))), lv["level"])
        errors.append(float(((vec.vectors - rec) ** 2).sum(axis=1).mean()))
    assert errors == sorted(errors, reverse=True)  # each residual level explains more
    # clustered data: an item's neighbours share its first digit far more often than random items
    assert st["levels"][0]["nn_share_prefix"] > 3 * st["levels"][0]["random_share_prefix"]
    # prefix collisions can only fall as digits are added
    rates = [lv["prefix_collision_rate"] for lv in st["levels"]]
    assert rates == sorted(rates, reverse=True)


def test_balanced_assignment_respects_capacity_and_is_deterministic():
    x = clustered_vectors(200, groups=3)  # three big clusters for eight codes
    cb, codes = rqkmeans.fit(x, [8], balanced=True)
    counts = np.bincount(codes[:, 0], minlength=8)
    assert counts.max() <= int(np.ceil(200 / 8)) and counts.sum() == 200
    _, again = rqkmeans.fit(x, [8], balanced=True)
    assert (again == codes).all()
    _, plain = rqkmeans.fit(x, [8], balanced=False)
    assert np.bincount(plain[:, 0], minlength=8).max() > counts.max()


def test_dedup_digit_follows_item_ids_not_row_order():
    codes = np.array([[1, 2], [1, 2], [0, 0], [1, 2]])
    ids = ["x:c", "x:a", "x:z", "x:b"]
    assert rqkmeans.dedup_digits(codes, ids).tolist() == [2, 0, 0, 1]
    perm = [3, 1, 0, 2]
    shuffled = rqkmeans.dedup_digits(codes[perm], [ids[i] for i in perm])
    assert dict(zip([ids[i] for i in perm], shuffled)) == dict(zip(ids, [2, 0, 0, 1]))


def test_bad_input_is_named():
    x = clustered_vectors(50)
    x[7, 3] = np.nan
    with pytest.raises(ValueError, match="row 7"):
        rqkmeans.fit(x, [4])
    with pytest.raises(ValueError, match="item ids repeat"):
        sid.assign_codes(clustered_vectors(3), ["a", "a", "b"], [2], balanced=False)
    for bad in ("<a_1><c_2>", "a_1", "<a_1><b_x>", ""):
        with pytest.raises(ValueError, match="code"):
            sid.parse_code(bad)
    assert sid.parse_code(sid.code_string([12, 7, 3], 1)) == [12, 7, 3, 1]
    assert sid.code_string([12, 7, 3], 1) == "<a_12><b_7><c_3><d_1>"


def test_real_music_table_if_built():
    """The persisted music table (when `python -m recommend.semantic_ids build` has run
    here) covers every catalog music item with one code each."""
    try:
        table = sid.load_table("music")
        from recommend.item_vectors import load_items

        items = load_items("music")
    except FileNotFoundError:
        pytest.skip("no music semantic id table built in this checkout")
    assert sorted(table.item_ids()) == sorted(items["item_id"])
    assert table.frame["code"].is_unique and table.levels == 3
    assert all(len(sid.parse_code(c)) == 4 for c in table.codes()[:200])
