"""recommend.interactions: the full interaction logs, joined to the catalog."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest

from recommend import interactions as ix

FIXTURE_CATALOG = Path(__file__).parent / "fixtures" / "catalog"


def test_chinook_rules_drop_conflicting_duplicates_and_keep_identical_ones():
    objects = [
        {"model": "chinook.invoice", "pk": 1, "fields": {"customer": 7, "invoicedate": "2009-01-01T00:00:00Z"}},
        {"model": "chinook.invoice", "pk": 1, "fields": {"customer": 7, "invoicedate": "2009-01-01T00:00:00Z"}},
        {"model": "chinook.invoice", "pk": 2, "fields": {"customer": 7, "invoicedate": "2009-02-01T00:00:00Z"}},
        {"model": "chinook.invoice", "pk": 2, "fields": {"customer": 8, "invoicedate": "2009-02-01T00:00:00Z"}},
        "not an object",
    ]
    tables = ix._chinook_objects(objects, ("invoice",))
    assert list(tables["invoice"]) == [1]


def _write_fixture(root: Path) -> None:
    objs = [
        {"model": "chinook.invoice", "pk": 1, "fields": {"customer": 1, "invoicedate": "2009-03-01T00:00:00Z"}},
        {"model": "chinook.invoice", "pk": 2, "fields": {"customer": 1, "invoicedate": "2009-01-01T00:00:00Z"}},
        {"model": "chinook.invoiceline", "pk": 10, "fields": {"invoice": 1, "track": 5, "quantity": 1}},
        {"model": "chinook.invoiceline", "pk": 11, "fields": {"invoice": 2, "track": 6, "quantity": 1}},
        {"model": "chinook.invoiceline", "pk": 12, "fields": {"invoice": 2, "track": 7, "quantity": 1}},
        {"model": "chinook.invoiceline", "pk": 13, "fields": {"invoice": 1, "track": 6, "quantity": 1}},  # rebuy
        {"model": "chinook.invoiceline", "pk": 14, "fields": {"invoice": 99, "track": 8, "quantity": 1}},  # no invoice
        {"model": "chinook.invoiceline", "pk": 15, "fields": {"invoice": 1, "track": 9, "quantity": "x"}},  # bad qty
    ]
    (root / "fixtures").mkdir(parents=True)
    (root / "fixtures" / chinook_file()).write_text(json.dumps(objs), encoding="utf-8")


def chinook_file() -> str:
    from synth.catalog import chinook
    return chinook.FILE


def test_music_is_in_purchase_order_one_row_per_track_bad_lines_dropped(tmp_path):
    _write_fixture(tmp_path / "src")
    df = ix._music(tmp_path / "src")
    assert df["item_id"].tolist() == ["music:6", "music:7", "music:5"]  # January invoice first, then March
    assert df["ts"].iloc[0] == pd.Timestamp("2009-01-01", tz="UTC").timestamp()
    assert df["rating"].isna().all()


def test_keep_catalog_drops_unknown_items_and_listeners():
    df = pd.DataFrame({"listener_id": ["a", "a", "b"], "item_id": ["x", "y", "x"],
                       "ts": [1.0, 2.0, 3.0], "rating": [float("nan")] * 3})
    out = ix.keep_catalog(df, {"x"}, {"a"})
    assert out[["listener_id", "item_id"]].values.tolist() == [["a", "x"]]


def test_unknown_type_is_a_clear_error():
    with pytest.raises(ValueError, match="item_type 'movie'"):
        ix.load_interactions("movie")


def test_fixture_packages_join_the_fixture_catalog_and_are_cached(fixture_catalog_dir, tmp_path):
    items = pd.read_parquet(fixture_catalog_dir / "items.parquet")
    listeners = set(pd.read_parquet(fixture_catalog_dir / "listeners.parquet")["listener_id"])
    for t in ("music", "book", "podcast"):
        df = ix.load_interactions(t, home=tmp_path, root=FIXTURE_CATALOG / t, catalog_dir=fixture_catalog_dir)
        assert list(df.columns) == list(ix.COLUMNS)
        assert len(df) > 0, t
        assert set(df["item_id"]) <= set(items.loc[items.item_type == t, "item_id"])
        assert set(df["listener_id"]) <= listeners
        assert not df.duplicated(["listener_id", "item_id"]).any()
        assert df["ts"].notna().all() == ix.ORDER_KNOWN[t]
    cached = list((tmp_path / "recommend").glob("interactions-*.parquet"))
    assert len(cached) == 3


def test_book_implicit_zero_is_an_interaction_without_rating(fixture_catalog_dir, tmp_path):
    df = ix.load_interactions("book", home=tmp_path, root=FIXTURE_CATALOG / "book", catalog_dir=fixture_catalog_dir)
    assert df["rating"].isna().any() and df["rating"].notna().any()
    assert (df["rating"].dropna() >= 1).all()


def _real_catalog() -> Path:
    from linernotes import paths
    folder = paths.REPO_ROOT / ".linernotes" / "catalog"
    if not (folder / "items.parquet").exists():
        pytest.skip("no ingested catalog")
    return folder


@pytest.mark.parametrize("item_type", [
    "music", "podcast",
    pytest.param("book", marks=pytest.mark.slow),  # 1.15M rating rows: 10-40 s on a shared CPU
])
def test_real_packages_have_more_than_the_ten_history_entries(item_type, tmp_path):
    folder = _real_catalog()
    df = ix.load_interactions(item_type, home=tmp_path, catalog_dir=folder)
    per_listener = df.groupby("listener_id").size()
    listeners = pd.read_parquet(folder / "listeners.parquet")
    hist = listeners.set_index("listener_id")["history"].map(json.loads)
    assert set(per_listener.index) <= set(hist.index)
    # every catalog history entry is an interaction
    pairs = set(zip(df["listener_id"], df["item_id"]))
    wanted = {(lid, e["item_id"]) for lid, h in hist.items() if lid in per_listener.index for e in h}
    assert wanted and wanted <= pairs
    if item_type == "music":
        assert per_listener.max() > 10  # the full log, not the 10 kept in listeners.parquet
        ts = df.groupby("listener_id", sort=False)["ts"]
        assert (ts.diff().dropna() >= 0).all()  # purchase order
    else:
        assert all(math.isnan(t) for t in df["ts"])
    if item_type == "book":
        assert df["rating"].isna().mean() > 0.3  # implicit 0-ratings are interactions without a rating
        assert per_listener.max() > 10
