"""The hand-written grounding dev set (devsets/grounding) and its scorer (linernotes.devset_eval)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from linernotes.devset_eval import (
    CLASSES, DEVSETS_DIR, FAIL_CLASSES, PASS_CLASSES, check_row, format_report, load_rows, resolve, score,
)
from linernotes.records import GateResult, HistoryEntry, Item, Listener

GROUNDING = DEVSETS_DIR / "grounding"
SPLITS = ("dev", "dev2", "holdout", "holdout2", "holdout3")
# holdout3 is being written (2026-12-04, second round): until its file exists its tests skip.
BEING_WRITTEN = ("holdout3",)
# Minimum rows per split, and per class per split. dev2 was written to weight the classes the
# claim-level gate missed on holdout, so it has its own floors and no wrong_entity/near_name/number rows.
# holdout2 and holdout3 mirror the hidden review set (grounding only: no useful/vacuous rows).
MIN_ROWS = {"dev": 200, "dev2": 180, "holdout": 120, "holdout2": 150, "holdout3": 120}
MIN_PER_CLASS = {
    "dev": {c: 8 for c in CLASSES},
    "holdout": {c: 5 for c in CLASSES},
    "holdout2": {c: 5 for c in CLASSES if c not in ("useful", "vacuous")},
    "holdout3": {c: 5 for c in CLASSES if c not in ("useful", "vacuous")},
    "dev2": {"unsupported_claim": 35, "listener_claim": 25, "listener_fact_moved": 25, "relation": 15,
             "grounded_tricky": 30, "grounded": 15, "useful": 5, "vacuous": 5},
}


def _present() -> tuple[str, ...]:
    return tuple(sp for sp in SPLITS if sp not in BEING_WRITTEN or (GROUNDING / f"{sp}.jsonl").exists())


def _skip_if_being_written(split: str) -> None:
    if split not in _present():
        pytest.skip(f"{split}.jsonl is still being written")


def _raw(split: str) -> list[dict]:
    return [json.loads(line) for line in (GROUNDING / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
            if line.strip()]


@pytest.mark.parametrize("split", SPLITS)
def test_every_row_is_valid_and_its_span_is_in_the_note(split):
    _skip_if_being_written(split)
    rows, problems = load_rows("grounding", split)
    assert problems == []
    raw = _raw(split)
    assert len(rows) == len(raw) >= MIN_ROWS[split]
    assert len({r["id"] for r in rows}) == len(rows), "ids must be unique"
    for r in rows:
        if r["expect"] == "fail":
            assert r["span"] and r["span"] in r["note"], r["id"]
        else:
            assert r["span"] == "", r["id"]


@pytest.mark.parametrize("split", SPLITS)
def test_class_counts_meet_the_minimums_and_the_pass_share_is_near_40_percent(split):
    _skip_if_being_written(split)
    rows, _ = load_rows("grounding", split)
    counts = Counter(r["class"] for r in rows)
    for cls, least in MIN_PER_CLASS[split].items():
        assert counts[cls] >= least, (cls, counts[cls])
    passes = sum(counts[c] for c in PASS_CLASSES)
    assert 0.30 <= passes / len(rows) <= 0.50
    # all three catalogs are covered
    assert {r["item_id"].split(":")[0] for r in rows} == {"music", "book", "podcast"}


def test_splits_share_no_item():
    # item ids only: whoever tunes on dev/dev2 must not read holdout notes
    present = _present()
    items = {sp: {r["item_id"] for r in _raw(sp)} for sp in present}
    for i, a in enumerate(present):
        assert items[a], a
        for b in present[i + 1:]:
            assert items[a].isdisjoint(items[b]), (a, b, sorted(items[a] & items[b]))


def test_all_means_every_split_and_rows_say_their_split():
    rows, problems = load_rows("grounding", "all")
    assert problems == []
    assert {r["split"] for r in rows} == set(_present())
    assert len(rows) == sum(len(_raw(sp)) for sp in _present())


def _catalog_ids():
    from linernotes import paths

    folder = paths.catalog_dir()
    items, listeners = folder / "items.parquet", folder / "listeners.parquet"
    if not (items.exists() and listeners.exists()):
        pytest.skip(f"no ingested catalog in {folder} (make test ingests it)")
    import pyarrow.parquet as pq

    it = pq.read_table(items, columns=["item_id", "item_type"]).to_pydict()
    ls = pq.read_table(listeners, columns=["listener_id", "listener_type"]).to_pydict()
    return dict(zip(it["item_id"], it["item_type"])), dict(zip(ls["listener_id"], ls["listener_type"]))


def test_rows_reference_catalog_ids_of_matching_type():
    items, listeners = _catalog_ids()
    for split in _present():
        for r in _raw(split):
            assert r["item_id"] in items, (r["id"], r["item_id"])
            assert r["listener_id"] in listeners, (r["id"], r["listener_id"])
            assert items[r["item_id"]] == listeners[r["listener_id"]], r["id"]


# ----------------------------------------------------------------------------- scorer


def _row(i, cls, gate="grounding", note="Song by Band.", span="", **kw):
    expect = "pass" if cls in PASS_CLASSES else "fail"
    if expect == "fail" and not span:
        span = note.split()[0]
    return {"id": f"t-{i}", "split": "dev", "item_id": "music:1", "listener_id": "music-customer:1",
            "note": note, "facts_used": [], "expect": expect, "gate": gate, "class": cls, "span": span,
            "why": "test", **kw}


ITEM = Item(item_id="music:1", item_type="music", title="Song", creator="Band", genres=["Rock"],
            source="test", source_row="test")
LISTENER = Listener(listener_id="music-customer:1", source="test",
                    history=[HistoryEntry(item_id="music:2", title="Other", creator="Other Band")])


def stand_in_judge(verdicts):
    """Stand-in gate for the arithmetic tests: a fixed verdict per row id."""
    def judge(row, item, listener):
        passed, gates = verdicts[row["id"]], ("grounding", "safety")
        return {g: GateResult(passed=passed, reasons=[] if passed else ["stand-in says no"]) for g in gates}
    return judge


def test_score_arithmetic_on_hand_made_rows():
    rows = [_row(1, "grounded"), _row(2, "wrong_entity"), _row(3, "number"), _row(4, "grounded_tricky"),
            _row(5, "vacuous", gate="usefulness")]
    # 1 pass->passed (tn), 2 fail->failed (tp), 3 fail->passed (fn), 4 pass->failed (fp); 5 unscored
    verdicts = {"t-1": True, "t-2": False, "t-3": True, "t-4": False, "t-5": False}
    rep = score([(r, ITEM, LISTENER) for r in rows], stand_in_judge(verdicts))
    assert (rep.tp, rep.fp, rep.fn, rep.tn) == (1, 1, 1, 1)
    assert rep.precision == pytest.approx(0.5)
    assert rep.recall == pytest.approx(0.5)
    assert rep.f1 == pytest.approx(0.5)
    assert rep.false_alarm_rate == pytest.approx(0.5)
    assert rep.not_scored == {"usefulness": 1}
    assert rep.per_class["wrong_entity"] == {"n": 1, "correct": 1}
    assert rep.per_class["number"] == {"n": 1, "correct": 0}
    assert rep.per_class["grounded_tricky"] == {"n": 1, "correct": 0}
    assert "vacuous" not in rep.per_class
    assert sorted(e["id"] for e in rep.errors) == ["t-3", "t-4"]
    assert rep.errors[-1]["reasons"] == ["stand-in says no"]
    text = format_report("t", rep, show=5)
    assert "not scored (no usefulness gate): 1 rows" in text
    assert "precision 0.500" in text and "[t-3]" in text


def test_usefulness_rows_are_scored_once_the_gate_exists():
    rows = [_row(1, "vacuous", gate="usefulness"), _row(2, "useful", gate="usefulness")]

    def judge(row, item, listener):  # stand-in usefulness gate that fails everything
        return {"grounding": GateResult(passed=True), "usefulness": {"passed": False, "reasons": ["vague"]}}

    rep = score([(r, ITEM, LISTENER) for r in rows], judge)
    assert rep.not_scored == {}
    assert (rep.tp, rep.fp, rep.fn, rep.tn) == (1, 1, 0, 0)
    assert rep.per_gate["usefulness"] == {"n": 2, "correct": 1}


def test_bad_rows_and_missing_ids_are_reported_with_file_line_and_field(tmp_path):
    good = _row(1, "grounded")
    lines = [json.dumps(good),
             json.dumps({**_row(2, "wrong_entity"), "span": "not in the note"}),
             "{not json",
             json.dumps({k: v for k, v in _row(4, "grounded").items() if k != "gate"}),
             json.dumps(_row(5, "grounded", item_id="music:999"))]
    (tmp_path / "dev.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    rows, problems = load_rows("x", "dev", root=tmp_path)
    assert [r["id"] for r in rows] == ["t-1", "t-5"]
    assert [(p.line, p.field) for p in problems] == [(2, "span"), (3, "<json>"), (4, "gate")]
    assert str(problems[0]).startswith(str(tmp_path / "dev.jsonl") + ":2: field 'span'")
    cases, missing = resolve(rows, {"music:1": ITEM}, {"music-customer:1": LISTENER})
    assert [c[0]["id"] for c in cases] == ["t-1"]
    assert [(m.line, m.field) for m in missing] == [(5, "item_id")]
    rep = score(cases, stand_in_judge({"t-1": True}), problems + missing)
    assert len(rep.skipped) == 4 and rep.n == 1


def test_check_row_rejects_a_class_with_the_wrong_expectation():
    row = {**_row(1, "grounded"), "expect": "fail", "span": "Song"}
    assert check_row(row) == ("expect", "class 'grounded' expects 'pass'")
    assert set(FAIL_CLASSES).isdisjoint(PASS_CLASSES)


def test_cli_scores_rows_against_an_ingested_catalog(fixture_catalog_dir, tmp_path, capsys):
    from linernotes.devset_eval import main
    from synth.catalog.ingest import load_catalog

    catalog = load_catalog(fixture_catalog_dir)
    listener = next(lst for lst in catalog.listeners_of_type("music") if lst.history)
    item = next(it for it in catalog.items_of_type("music") if it.item_id not in {h.item_id for h in listener.history})
    base = {"split": "dev", "item_id": item.item_id, "listener_id": listener.listener_id, "facts_used": [],
            "why": "test"}
    rows = [
        {**base, "id": "c-1", "note": f"{item.title} is a pick for you.", "expect": "pass", "gate": "grounding",
         "class": "grounded", "span": ""},
        {**base, "id": "c-2", "note": "Nice things for nice people.", "expect": "fail", "gate": "usefulness",
         "class": "vacuous", "span": "Nice things"},
        {**base, "id": "c-3", "item_id": "music:does-not-exist", "note": "x y.", "expect": "pass",
         "gate": "grounding", "class": "grounded", "span": ""},
    ]
    (tmp_path / "dev.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "numbers.json"
    assert main(["grounding", "--split", "dev", "--catalog", str(fixture_catalog_dir), "--root", str(tmp_path),
                 "--json", str(out)]) == 0
    numbers = json.loads(out.read_text())["splits"]["dev"]
    # the usefulness row is scored or reported unscored, depending on whether run_gates has that gate
    assert numbers["n_scored"] + sum(numbers["not_scored"].values()) == 2
    assert set(numbers["not_scored"]) <= {"usefulness"}
    assert len(numbers["skipped"]) == 1 and "item_id" in numbers["skipped"][0]
    captured = capsys.readouterr()
    assert "music:does-not-exist" in captured.err
    assert f"== grounding/dev: {numbers['n_scored']} rows scored" in captured.out
