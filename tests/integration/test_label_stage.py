"""Curated sample -> real local Argilla -> demo stand-in annotators -> golden set + pairs."""

import json

import pandas as pd
import pytest

from curation import label_stage
from linernotes.runs import RunDir
from linernotes.services import argilla as svc

pytestmark = pytest.mark.integration


def _curate_run(tmp_path, n=12) -> RunDir:
    rows = []
    for i in range(n):
        item = {"item_id": f"music:{i}", "item_type": "music", "title": f"Song {i}",
                "creator": "Ada Lund", "genres": ["Jazz"], "source": "t", "source_row": str(i)}
        listener = {"listener_id": f"l{i % 3}", "source": "t", "country": "Brazil",
                    "history": [{"item_id": "x", "title": "So What", "creator": "Miles Davis"}]}
        bad = i % 4 == 0
        rows.append({"record_id": f"r{i:03d}", "item_id": item["item_id"], "item_type": "music",
                     "item": json.dumps(item), "item_title": item["title"],
                     "listener": json.dumps(listener), "listener_id": listener["listener_id"],
                     "explanation": f"Song {i} by Ada Lund is a jazz pick" + (" from 1987." if bad else "."),
                     "facts_used": ["Song"], "gate_grounding": not bad, "gate_style": True,
                     "gate_safety": True,
                     "gate_reasons": json.dumps({"grounding": ["year 1987 not supported"] if bad else []}),
                     "cluster": i % 2, "cluster_label": "jazz", "model": "smollm2",
                     "prompt_version": "explain-v1@x", "sample_reason": "control",
                     "review_priority": i + 1})
    run = RunDir(tmp_path / "curate-test")
    (run.path / "sample").mkdir(parents=True)
    pd.DataFrame(rows).to_parquet(run.path / "sample" / "review-00000-of-00001.parquet", index=False)
    return run


@pytest.fixture(scope="module")
def stack():
    s = svc.up()
    yield s
    svc.down()


def test_push_demo_annotate_pull(stack, tmp_path):
    run = _curate_run(tmp_path)
    name = f"stage-{tmp_path.name[-8:]}"
    client = stack.client()
    try:
        info = label_stage.push_curated(run, name, client)
        assert info["created"] == 12 and info["total_on_server"] == 12
        done = label_stage.demo_annotate(stack, info["dataset_id"], label_stage.sample_frame(run))
        assert done["submitted"] == {"annotator": 12, "annotator2": 12}
        assert "not a person" in done["who"]
        again = label_stage.demo_annotate(stack, info["dataset_id"], label_stage.sample_frame(run))
        assert again["submitted"] == {"annotator": 0, "annotator2": 0}  # rerun answers nothing twice
        label = label_stage.pull_and_resolve(name, client, runs_dir=tmp_path / "runs")
        counts = label.manifest()["counts"]
        assert counts["responses"] == 24 and counts["records"] == 12
        assert label.manifest()["label_source"] == {"human": 0, "scripted": 24}  # the stand-ins' answers
        assert done["pairs_dataset_id"] is None and client.datasets(name=f"{name}-pairs") is None  # no pairs
        golden = pd.read_parquet(label.path / "golden.parquet")
        pairs = pd.read_parquet(label.path / "pairs.parquet")
        # the 3 grounding failures were "corrected" by the stand-in: corrected-vs-original pairs
        assert len(pairs) >= 3 and counts["golden"] == len(golden) > 0
        agreement = json.loads((label.path / "agreement.json").read_text())
        assert set(agreement["questions"]) >= {"rating", "grounded", "tone_ok"}
    finally:
        ds = client.datasets(name=name)
        if ds is not None:
            ds.delete()
