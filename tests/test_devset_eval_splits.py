"""devset_eval's split list: holdout3 (the reported split) is known and last, the holdouts are quiet by default,
and a missing split file is skipped under 'all'.

These tests build their own split files under tmp_path; they never open devsets/grounding/holdout*.jsonl.
"""

from __future__ import annotations

import json

from linernotes.devset_eval import QUIET_SPLITS, SPLITS, check_row, load_rows, main, present_splits


def _row(i: int, split: str, item_id: str, listener_id: str, note: str) -> dict:
    return {"id": f"s-{split}-{i}", "split": split, "item_id": item_id, "listener_id": listener_id, "note": note,
            "facts_used": [], "expect": "fail", "gate": "grounding", "class": "wrong_entity", "span": "Zzyzx",
            "why": "test"}


def test_holdout3_is_the_last_split_and_every_holdout_is_quiet_by_default():
    # holdout2 became a tuning split on 2026-12-04 (second round); holdout3 is the reported one
    assert SPLITS[-1] == "holdout3" and SPLITS[-2] == "holdout2"
    assert {"holdout", "holdout2", "holdout3"} <= set(QUIET_SPLITS)
    assert not {"dev", "dev2"} & set(QUIET_SPLITS)
    row = _row(1, "holdout3", "music:1", "music-customer:1", "Zzyzx made it.")
    assert check_row(row) is None
    assert check_row({**row, "split": "holdout2"}) is None
    assert check_row({**row, "split": "holdout4"})[0] == "split"


def test_all_skips_a_split_whose_file_is_missing_but_a_named_split_reports_it(tmp_path):
    (tmp_path / "dev.jsonl").write_text(json.dumps(_row(1, "dev", "music:1", "music-customer:1", "Zzyzx.")) + "\n",
                                        encoding="utf-8")
    assert present_splits(tmp_path) == ("dev",)
    rows, problems = load_rows("x", "all", root=tmp_path)
    assert [r["id"] for r in rows] == ["s-dev-1"] and problems == []
    rows, problems = load_rows("x", "holdout3", root=tmp_path)
    assert rows == [] and [(p.field, p.message) for p in problems] == [("<file>", "no such file")]


def test_cli_all_notes_missing_splits_and_hides_quiet_split_errors(fixture_catalog_dir, tmp_path, capsys):
    from synth.catalog.ingest import load_catalog

    catalog = load_catalog(fixture_catalog_dir)
    listener = next(lst for lst in catalog.listeners_of_type("music") if lst.history)
    item = next(it for it in catalog.items_of_type("music") if it.item_id not in {h.item_id for h in listener.history})
    # a grounded-looking note scored as a failing row: the gate passes it, so it is a miss to print or hide
    for split in ("dev", "holdout3"):
        row = {**_row(1, split, item.item_id, listener.listener_id, f"{item.title} is a pick for you."),
               "span": item.title}
        (tmp_path / f"{split}.jsonl").write_text(json.dumps(row) + "\n", encoding="utf-8")
    assert main(["grounding", "--split", "all", "--catalog", str(fixture_catalog_dir), "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "note: split dev2 has no file" in out and "note: split holdout has no file" in out
    assert "note: split holdout2 has no file" in out
    assert "== grounding/dev:" in out and "== grounding/holdout3:" in out
    assert "[s-dev-1]" in out and "[s-holdout3-1]" not in out
    assert main(["grounding", "--split", "holdout3", "--show", "5", "--catalog", str(fixture_catalog_dir),
                 "--root", str(tmp_path)]) == 0
    assert "[s-holdout3-1]" in capsys.readouterr().out
