"""The curate app (notebooks/02_curate.py), headless.

(a) `marimo check` is clean and the app's own `test_*` functions pass under pytest;
(b) `app.run()` lists the finished synth runs under $LINERNOTES_RUNS and loads the
    newest, with the Embed button unpressed (no model, no embeddings);
(c) with the button pressed (overridden), the whole page computes on a small run:
    embeddings (the "auto" backend; model export and cache in a temp
    LINERNOTES_HOME), dedupe counts, clusters, map, drill-down, diversity report
    and review sample.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from linernotes import paths
from linernotes.records import ExplanationRecord, GateResult, HistoryEntry, Item, Listener
from linernotes.runs import RunDir
from marimo_helpers import assert_marimo_check_clean, assert_test_cells_pass, load_app

NOTEBOOK = paths.REPO_ROOT / "notebooks" / "02_curate.py"

NOTES = {
    "music": ["{t} by {c} is a warm jazz cut that sits right beside your Desafinado plays.",
              "Since Desafinado is on repeat, {c}'s {t} keeps the same late-night mood.",
              "{c} slows things down on {t}, a quiet follow-up to your recent plays.",
              "A bright guitar classic from {c}: {t} suits your weekend playlist."],
    "book": ["After Harry Potter, {c}'s {t} is the next quest on the audiobook shelf.",
             "{t} by {c} is a sharp mystery for readers who finished Harry Potter.",
             "{c} wrote {t}, a gentle novel that pairs well with your recent listens.",
             "Queue {t} by {c} for a long, twisting audiobook on your commute."],
    "podcast": ["Loved Radiolab? {t} brings the same science curiosity with a comic edge.",
                "{t} is a weekly interview show for listeners who binge Radiolab.",
                "Each episode of {t} explains one big science question in half an hour.",
                "For your commute after Radiolab, {t} offers short science stories."],
}


def write_synth_run(runs: Path, name: str = "synth-small", complete: bool = True) -> RunDir:
    """A synth-like run without a teacher: 4 rows per type, one exact duplicate (same
    item, same text), one unparsed row, mixed gate verdicts."""
    records = []
    for t, notes in NOTES.items():
        for i, note in enumerate(notes):
            item = Item(item_id=f"{t}:{i}", item_type=t, title=f"{t.title()} Title {i}",
                        creator=f"Creator {t} {i}", source="test", source_row=str(i))
            listener = Listener(listener_id=f"{t}-user:1", source="test",
                                history=[HistoryEntry(item_id=f"{t}:h", title="Desafinado")])
            ok = i % 2 == 0
            records.append(ExplanationRecord(
                record_id=f"{t}-{i}", item=item, listener=listener, prompt_version="v1@test",
                messages=[{"role": "user", "content": "x"}], backend="fake", model="fake",
                parsed=True, explanation=note.format(t=item.title, c=item.creator),
                facts_used=[item.creator],
                gates={"grounding": GateResult(passed=ok, reasons=[] if ok else ["bad name"],
                                               score=1.0 if ok else 0.5),
                       "style": GateResult(passed=True), "safety": GateResult(passed=True)}))
    dup = records[0].model_copy(update={"record_id": "music-0-again"})
    unparsed = records[1].model_copy(update={"record_id": "music-1-broken", "parsed": False,
                                             "explanation": None, "parse_error": "no JSON"})
    run = RunDir(runs / name)
    run.prepare()
    run.write_rows([r.to_row() for r in [*records, dup, unparsed]])
    run.write_manifest({"stage": "synth", "run": name})
    if complete:
        run.mark_complete()
    return run


def _load_app():
    return load_app(NOTEBOOK)


def test_marimo_check_is_clean():
    assert_marimo_check_clean(NOTEBOOK)


def test_notebook_test_cells_pass():
    assert_test_cells_pass(NOTEBOOK)


def test_app_lists_runs_and_waits_for_the_button(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    run = write_synth_run(runs)
    write_synth_run(runs, "synth-unfinished", complete=False)
    monkeypatch.setenv("LINERNOTES_RUNS", str(runs))
    _, defs = _load_app().run()
    assert [r.name for r in defs["runs"]] == ["synth-small"]
    assert defs["run_ui"].value == str(run.path)
    assert len(defs["frame"]) == 13 and defs["no_text"] == 1  # the unparsed row is left out
    assert defs["embed_button"].value is False
    assert "embeddings" not in defs and "sample" not in defs  # stopped at the button


def test_app_without_runs_explains_itself(tmp_path, monkeypatch):
    monkeypatch.setenv("LINERNOTES_RUNS", str(tmp_path / "empty"))
    _, defs = _load_app().run()
    assert defs["runs"] == [] and defs["run_ui"].value is None
    assert "frame" not in defs


def test_app_computes_everything_when_the_button_is_pressed(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    write_synth_run(runs)
    monkeypatch.setenv("LINERNOTES_RUNS", str(runs))
    monkeypatch.setenv("LINERNOTES_HOME", str(tmp_path / "home"))  # fresh embedding cache
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _, defs = _load_app().run(defs={
        "backend_ui": SimpleNamespace(value="auto"),
        "projection_ui": SimpleNamespace(value="pca"),
        "seed_ui": SimpleNamespace(value=17),
        "embed_button": SimpleNamespace(value=True)})
    frame, embeddings = defs["frame"], defs["embeddings"]
    assert embeddings.shape == (13, 384)
    # dedupe: the exact duplicate of music-0 goes at the exact stage, nothing else
    assert defs["counts"] == {"kept": 12, "exact": 1, "near": 0, "semantic": 0}
    curated = defs["curated"]
    assert curated.loc[curated["record_id"] == "music-0-again", "dup_of"].item() == "music-0"
    # clusters + map over every row; the removed row shares its representative's cluster
    clustered = defs["clustered"]
    assert {"cluster", "cluster_label", "x", "y"} <= set(clustered.columns)
    by_id = clustered.set_index("record_id")["cluster"]
    assert by_id["music-0-again"] == by_id["music-0"]
    assert clustered["cluster"].nunique() == 2  # sqrt(12 / 2) rounded
    assert len(defs["cluster_map_figure"].data) >= 2
    assert len(defs["drill"]) == (clustered["cluster"] == defs["cluster_ui"].value).sum()
    # diversity over all rows and kept rows
    assert defs["diversity"]["rows"] == 13 and defs["diversity"]["kept"]["rows"] == 12
    json.dumps(defs["diversity"])
    # the review sample: kept rows only, the config's size, each row with a reason
    sample = defs["sample"]
    assert len(sample) == 12  # sample_size 40 > 12 eligible rows: all of them
    assert "music-0-again" not in set(sample["record_id"])
    assert sample["sample_reason"].notna().all()
    assert (sample["sample_reason"] == "control").sum() == round(0.2 * 12)
    # the page's settings, as a recipe the curate stage takes
    recipe = defs["recipe"]
    assert recipe.synth_run == defs["run_ui"].value and recipe.projection == "pca"
    assert recipe.minhash_threshold == recipe.__class__().minhash_threshold
