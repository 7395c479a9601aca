"""Every run kind round-trips through its declared row schema (linernotes.rows), the task
field flows from the generated row to the SFT example and the preference pair, and the one
newest-run rule (RunDir.find) and JSON-column helper behave as documented."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from linernotes import rows
from linernotes.jsoncol import dumps_json, loads_json, loads_obj
from linernotes.records import ExplanationRecord, GateResult, Item, Listener, content_hash
from linernotes.runs import RunDir

ITEMS = [Item(item_id=f"music:{i}", item_type="music", title=f"Song {i}", creator="Band",
              genres=["Rock"], source="test", source_row=f"t:{i}") for i in range(4)]
LISTENER = Listener(listener_id="L1", source="test", country="Norway", taste=["Rock"])


def _records(task: str = "explain") -> list[ExplanationRecord]:
    gates = {g: GateResult(passed=True, reasons=[], score=1.0) for g in ("grounding", "style", "safety")}
    out = []
    for item in ITEMS:
        msgs = [{"role": "system", "content": "Explain."}, {"role": "user", "content": f"Item {item.title}"}]
        out.append(ExplanationRecord(
            record_id=content_hash(item.item_id, task), task=task, item=item, listener=LISTENER,
            prompt_version="t@1", messages=msgs, backend="stand-in", model="stand-in",
            parsed=True, explanation=f"{item.title} by Band is a rock pick.", facts_used=[item.title],
            gates=gates,
            raw_output=None, metadata={"call": {"finish_reason": "stop"}}))
    return out


def _synth_run(root, task="explain") -> tuple[RunDir, list[ExplanationRecord]]:
    recs = _records(task)
    run = RunDir(root / f"synth-{task}", kind="generated")
    run.prepare()
    run.write_rows([r.to_row() for r in recs])
    run.write_manifest({"stage": "synth", "created": "2025-01-01T00:00:00+0000"})
    run.mark_complete()
    return run, recs


# ---------------------------------------------------------------- generated (synth)

def test_generated_rows_round_trip_with_the_declared_schema(tmp_path):
    run, recs = _synth_run(tmp_path)
    schema = pq.read_schema(run.parquet_path)
    # declared types, even for a column that is None in every row (inference would say null)
    assert schema.field("raw_output").type == pa.string()
    assert schema.field("facts_used").type == pa.list_(pa.string())
    assert schema.field("task").type == pa.string()
    table = run.read_rows("generated")
    back = [ExplanationRecord.from_row(r) for r in table.to_pylist()]
    assert [b.model_dump() for b in back] == [r.model_dump() for r in recs]
    assert all(isinstance(m, rows.GeneratedRow) for m in rows.records(table, "generated"))
    assert RunDir.find("synth", runs_dir=tmp_path).read_rows().num_rows == len(recs)  # kind from stage


def test_runs_written_before_the_task_field_read_as_explain(tmp_path):
    run, recs = _synth_run(tmp_path)
    old = pq.read_table(run.parquet_path).drop_columns(["task"])
    pq.write_table(old, run.parquet_path)
    table = run.read_rows("generated")
    assert set(table.column("task").to_pylist()) == {"explain"}
    assert ExplanationRecord.from_row(old.to_pylist()[0]).task == "explain"


def test_a_file_that_does_not_match_names_file_and_column(tmp_path):
    run, _ = _synth_run(tmp_path)
    pq.write_table(pq.read_table(run.parquet_path).drop_columns(["item_id"]), run.parquet_path)
    with pytest.raises(rows.SchemaError, match=r"train-00000-of-00001\.parquet.*'item_id'"):
        run.read_rows("generated")
    bad = pa.table({"record_id": ["a"], "item_id": ["x"], "item_type": ["music"], "listener_id": ["L"],
                    "item": ["{}"], "listener": ["{}"], "prompt_version": ["v"], "messages": ["[]"],
                    "backend": ["b"], "model": ["m"], "parsed": ["yes"]})  # parsed as text
    pq.write_table(bad, run.parquet_path)
    with pytest.raises(rows.SchemaError, match=r"column 'parsed' is string, expected bool"):
        run.read_rows("generated")


def test_a_row_that_does_not_fit_names_row_and_column(tmp_path):
    good = _records()[0].to_row()
    with pytest.raises(rows.SchemaError, match=r"row 1, column 'parsed'"):
        RunDir(tmp_path / "synth-x").write_rows([good, {**good, "parsed": "maybe"}], kind="generated")
    with pytest.raises(rows.SchemaError, match=r"row 1, column 'record_id': missing"):
        RunDir(tmp_path / "synth-x").write_rows([good, {**good, "record_id": None}], kind="generated")


# ---------------------------------------------------------------- curated + review sample

def test_curated_rows_round_trip(tmp_path):
    run, _ = _synth_run(tmp_path)
    df = run.read_rows("generated").to_pandas()
    df["item_title"] = [loads_obj(s).get("title") for s in df["item"]]
    df["dup_stage"] = [None, "exact", None, None]
    df["dup_group"] = np.array([0, 0, 1, 2], dtype=np.int64)
    df["dup_of"] = [None, df["record_id"][0], None, None]
    df["kept"] = np.array([True, False, True, True])
    df["cluster"] = np.array([0, 0, 1, -1], dtype=np.int32)
    df["cluster_label"] = ["rock", "rock", "pop", "unclustered"]
    df["cluster_margin"] = [0.1, np.nan, 0.3, 0.0]
    df["cluster_runner_up"] = [1, 1, 0, -1]
    df["x"], df["y"] = np.zeros(4), np.ones(4)
    df["display_only"] = ["a", "b", "c", "d"]  # undeclared columns pass through
    cur = RunDir(tmp_path / "curate-x", kind="curated")
    cur.write_rows(df)
    table = cur.read_rows("curated")
    assert table.schema.field("cluster").type == pa.int64()
    assert table.column("dup_of").to_pylist()[1] == df["record_id"][0]
    assert table.column("display_only").to_pylist() == ["a", "b", "c", "d"]
    models = rows.records(table, "curated")
    assert models[1].kept is False and models[0].cluster_margin == pytest.approx(0.1)
    assert models[1].cluster_margin is None and {m.task for m in models} == {"explain"}

    from curation.sample import SAMPLE_COLUMNS

    sample = df.assign(review_priority=range(1, 5), sample_reason="control", reason_detail=None,
                       all_reasons="")
    sample = sample[[c for c in SAMPLE_COLUMNS if c in sample.columns]]
    cur.write_rows(sample, kind="review_sample", name="sample/review-00000-of-00001.parquet")
    from curation.label_stage import sample_frame

    back = sample_frame(cur)
    assert list(back["record_id"]) == list(df["record_id"]) and set(back["task"]) == {"explain"}


# ---------------------------------------------------------------- label

def _responses() -> pd.DataFrame:
    from curation import labeling

    rid = [r.record_id for r in _records()]
    base = {c: None for c in labeling.COLUMNS}
    out = []
    for i, r in enumerate(rid[:3]):
        for user in ("ann1", "ann2"):
            out.append({**base, "record_id": r, "item_id": ITEMS[i].item_id, "listener_id": "L1",
                        "user_id": user, "username": user, "role": "annotator", "status": "submitted",
                        "rating": 5, "grounded": "grounded", "tone_ok": "yes",
                        "corrected_explanation": "Song fixed by Band." if i == 2 else None,
                        "explanation": f"Song {i} by Band is a rock pick.", "teacher": "stand-in",
                        "dataset": "review", "argilla_record": r})
    return pd.DataFrame(out, columns=labeling.COLUMNS)


def test_label_run_tables_round_trip(tmp_path):
    from curation import labeling

    responses = _responses()
    out = labeling.resolve(responses)
    run = RunDir(tmp_path / "label-x")
    for table, kind, name in ((responses, "response", "responses.parquet"), (out["golden"], "golden", "golden.parquet"),
                              (out["pairs"], "label_pair", "pairs.parquet"),
                              (out["resolved"], "review", "resolved.parquet")):
        run.write_rows(table, kind=kind, name=name)
        back = run.read_rows(kind, name)
        assert back.num_rows == len(table)
        assert rows.records(back, kind)  # every row validates as its model
    golden = run.read_rows("golden", "golden.parquet").to_pandas()
    assert set(golden["source"]) == {"approved", "corrected"}
    assert run.read_rows("review", "resolved.parquet").schema.field("rating").type == pa.int64()


# ---------------------------------------------------------------- publish: sft + preferences

@pytest.mark.parametrize("task", ["explain", "commentary"])
def test_publish_sft_and_preferences_round_trip_and_carry_the_task(tmp_path, monkeypatch, task):
    from curation import labeling
    from curation.publish import publish_runs
    from finetune.data import load_rows
    from finetune.dpo import load_preferences, validate_preferences

    monkeypatch.setenv("LINERNOTES_RUNS", str(tmp_path))
    synth, recs = _synth_run(tmp_path, task)
    responses = _responses()
    ids = {a.record_id: b.record_id for a, b in zip(_records(), recs)}
    responses["record_id"] = responses["record_id"].map(ids)
    out = labeling.resolve(responses)
    label = RunDir(tmp_path / "label-x")
    label.write_rows(out["golden"], kind="golden", name="golden.parquet")
    label.write_rows(out["pairs"], kind="label_pair", name="pairs.parquet")
    label.write_rows(out["resolved"], kind="review", name="resolved.parquet")
    label.write_manifest({"stage": "label"})
    label.mark_complete()
    folder = publish_runs(synth, None, label)

    found = RunDir.find("publish", require="data/sft")
    assert found is not None and found.path == folder  # complete, with a manifest, findable
    sft = rows.read_parquet(folder / "data" / "sft", "sft")
    assert sft.schema.field("messages").type == rows.arrow_schema("sft").field("messages").type
    assert set(sft.column("task").to_pylist()) == {task}
    examples = rows.records(sft, "sft")
    assert {e.source for e in examples} == {"golden", "gated_synthetic"}
    assert [m["role"] for m in load_rows(folder)[0]["messages"]] == ["system", "user", "assistant"]

    prefs = load_preferences(folder)
    assert prefs and {p["task"] for p in prefs} == {task}
    assert all(isinstance(m, rows.PreferencePair) for m in rows.records(prefs, "preference"))
    good, bad = validate_preferences(prefs)
    assert len(good) == len(prefs) and not bad
    raw = rows.read_parquet(folder / "data" / "raw_generations", "generated")
    assert set(raw.column("task").to_pylist()) == {task}
    assert json.loads((folder / "manifest.json").read_text())["counts"]["sft"] == len(examples)


# ---------------------------------------------------------------- RunDir.find

def test_find_orders_by_manifest_time_then_name_and_checks_completeness(tmp_path):
    def make(name, created, stage="synth", complete=True, files=()):
        run = RunDir(tmp_path / name)
        run.write_manifest({"stage": stage, "created": created})
        for f in files:
            (run.path / f).parent.mkdir(parents=True, exist_ok=True)
            (run.path / f).write_text("x")
        if complete:
            run.mark_complete()
        return run

    make("synth-old", "2025-01-01T00:00:00+0000", files=["data/x"])
    b = make("synth-b", "2025-02-01T00:00:00+0000", files=["data/x"])
    a = make("synth-a", "2025-02-01T00:00:00+0000")  # same time: name decides (b > a)
    make("synth-new", "2025-03-01T00:00:00+0000", complete=False)  # unfinished
    custom = make("my-run", "2025-04-01T00:00:00+0000", stage="curate")  # stage from the manifest
    make("synth-lie", "2025-05-01T00:00:00+0000", stage="curate")  # manifest wins over the name
    assert RunDir.find("synth", runs_dir=tmp_path) == b
    assert [r.name for r in RunDir.find_all("synth", runs_dir=tmp_path)] == ["synth-b", "synth-a", "synth-old"]
    assert RunDir.find("synth", require="data/x", runs_dir=tmp_path) == b
    assert RunDir.find("synth", require=lambda r: r.name.endswith("a"), runs_dir=tmp_path) == a
    assert RunDir.find("curate", runs_dir=tmp_path).name == "synth-lie" and custom in RunDir.find_all(
        "curate", runs_dir=tmp_path)
    assert RunDir.find("dpo", runs_dir=tmp_path) is None
    assert RunDir.find("synth", runs_dir=tmp_path / "missing") is None


def test_newest_run_functions_share_the_rule(tmp_path):
    from curation.stage import latest_run
    from finetune.dpo import newest_run
    from finetune.train import complete_runs

    for name, created, stage in (("finetune-a", "2025-01-02T00:00:00+0000", "finetune"),
                                 ("finetune-b", "2025-01-01T00:00:00+0000", "finetune"),
                                 ("dpo-a", "2025-01-03T00:00:00+0000", "dpo")):
        run = RunDir(tmp_path / name)
        (run.path / "adapter").mkdir(parents=True)
        run.write_manifest({"stage": stage, "created": created})
        run.mark_complete()
        # mtimes the other way round: the old functions ordered by COMPLETE mtime
    import os

    for i, name in enumerate(("dpo-a", "finetune-a", "finetune-b")):
        os.utime(tmp_path / name / "COMPLETE", (1_000_000 + i, 1_000_000 + i))
    assert newest_run("finetune", str(tmp_path)) == tmp_path / "finetune-a"
    assert complete_runs(runs_dir=tmp_path) == [tmp_path / n for n in ("dpo-a", "finetune-a", "finetune-b")]
    assert latest_run("finetune", tmp_path).name == "finetune-a"
    with pytest.raises(ValueError, match="no complete synth run"):
        latest_run("synth", tmp_path)


# ---------------------------------------------------------------- JSON columns

@pytest.mark.parametrize("value, default, expected", [
    ('{"a": 1}', {}, {"a": 1}), ({"a": 1}, {}, {"a": 1}), (None, {}, {}), (float("nan"), [], []),
    ("", {}, {}), ("not json", {}, {}), (np.array(["x", "y"]), [], ["x", "y"]), ("[1, 2]", [], [1, 2]),
    (pd.NA, None, None)])
def test_loads_json_accepts_every_cell_shape(value, default, expected):
    assert loads_json(value, default) == expected


def test_loads_obj_only_returns_objects():
    assert loads_obj("[1, 2]") == {} and loads_obj('{"t": "é"}') == {"t": "é"}
    assert dumps_json({"t": "é"}) == '{"t": "é"}'
