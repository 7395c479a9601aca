"""The curation stage end to end on a small synth-like run with planted duplicates."""

import json

import pytest

from linernotes.config import CurateConfig
from linernotes.records import ExplanationRecord, GateResult, content_hash
from linernotes.runs import RunDir

TEMPLATES = [
    "{creator}'s {title} is a {genre} pick for your next playlist.",
    "Fans of {genre} will find {title} by {creator} an easy favourite.",
    "{title} brings {creator}'s signature {genre} sound to your queue.",
    "Because you like {genre}, {title} from {creator} is worth a spin.",
]


def _synth_run(tmp_path, catalog_dir) -> tuple[RunDir, dict]:
    from synth.catalog.ingest import load_catalog

    catalog = load_catalog(catalog_dir)
    items = sorted(catalog.items_of_type("music"), key=lambda i: i.item_id)[:12]
    listener = catalog.listeners_of_type("music")[0]
    gates = {g: GateResult(passed=True) for g in ("grounding", "style", "safety")}
    records, planted = [], {"exact": 0, "near": 0}
    for i, item in enumerate(items):
        text = TEMPLATES[i % len(TEMPLATES)].format(creator=item.creator, title=item.title,
                                                    genre=(item.genres or ["rock"])[0])
        variants = [text]
        if i % 3 == 0:  # an exact duplicate (case/spacing) of the same item
            variants.append("  " + text.upper() + " ")
            planted["exact"] += 1
        if i % 4 == 1:  # a near duplicate: one word changed
            variants.append(text.replace(" is ", " sounds ").replace(" will ", " should "))
            planted["near"] += 1
        for j, v in enumerate(variants):
            records.append(ExplanationRecord(
                record_id=content_hash(item.item_id, j), item=item, listener=listener,
                prompt_version="t@1", messages=[], backend="test", model="test", parsed=True,
                explanation=v, facts_used=[item.title], gates=gates,
                metadata={"call": {"finish_reason": "stop"}}))
    run = RunDir(tmp_path / "runs" / "synth-test")
    run.prepare()
    run.write_rows([r.to_row() for r in records])
    run.write_manifest({"stage": "synth"})
    run.mark_complete()
    return run, {"rows": len(records), "items": len(items), **planted}


@pytest.fixture
def synth_run(tmp_path, fixture_catalog_dir):
    return _synth_run(tmp_path, fixture_catalog_dir)


def test_run_curate_writes_everything_and_keeps_one_per_group(synth_run, tmp_path, isolated_home):
    from curation.stage import run_curate

    run, planted = synth_run
    config = CurateConfig(synth_run=str(run.path), runs_dir=str(tmp_path / "runs"),
                          sample_size=8, projection="pca")
    out = run_curate(config)
    assert out.is_complete()
    df = out.load_dataset().to_pandas()
    assert len(df) == planted["rows"]  # nothing lost: removed rows stay, flagged
    assert df["kept"].sum() == planted["items"]  # exactly one representative per item here
    for _, group in df.groupby("dup_group"):
        assert group["kept"].sum() == 1
    removed = df[~df["kept"]]
    assert set(removed["dup_stage"]) <= {"exact", "near", "semantic"}
    assert (removed["dup_stage"] == "exact").sum() == planted["exact"]
    assert set(removed["dup_of"]).issubset(set(df[df["kept"]]["record_id"]))
    sample = out.path / "sample" / "review-00000-of-00001.parquet"
    import pandas as pd

    s = pd.read_parquet(sample)
    assert len(s) == 8 and s["record_id"].isin(df[df["kept"]]["record_id"]).all()
    assert {"sample_reason", "cluster", "x", "y"} <= set(s.columns)
    assert (out.path / "map.html").stat().st_size > 100_000  # plotly.js inlined: works offline
    report = json.loads((out.path / "report.json").read_text())
    assert [st["stage"] for st in report["dedupe"]] == ["exact", "near", "semantic"]
    manifest = out.manifest()
    assert manifest["counts"]["kept"] == planted["items"]
    assert manifest["embeddings"]["misses"] == planted["rows"]
    # a finished config is skipped; a forced rerun embeds nothing new (content-hash cache)
    assert run_curate(config).manifest()["created"] == manifest["created"]
    again = run_curate(config, force=True).manifest()
    assert again["embeddings"]["misses"] == 0 and again["embeddings"]["hits"] == planted["rows"]
