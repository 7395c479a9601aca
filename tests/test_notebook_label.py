"""The labeling app (notebooks/03_label.py), headless.

(a) `marimo check` is clean and the app's own `test_*` functions pass;
(b) with no Argilla running (empty LINERNOTES_HOME, no ARGILLA_API_* env) the app
    explains how to start one and stops before pulling;
(c) offline mode (LINERNOTES_LABEL_RESPONSES=<parquet>) computes progress,
    agreement and disagreements from injected responses, without a server.
"""

from __future__ import annotations


import pandas as pd
import pytest

from curation import label_app_support as support
from linernotes import paths
from marimo_helpers import assert_marimo_check_clean, assert_test_cells_pass, load_module

NOTEBOOK = paths.REPO_ROOT / "notebooks" / "03_label.py"


def _load_app():
    return load_module(NOTEBOOK)


@pytest.fixture(autouse=True)
def no_stack(tmp_path, monkeypatch):
    monkeypatch.setenv("LINERNOTES_HOME", str(tmp_path / "home"))
    for var in ("ARGILLA_API_URL", "ARGILLA_API_KEY", support.ENV_RESPONSES, support.ENV_DATASET):
        monkeypatch.delenv(var, raising=False)


def test_marimo_check_is_clean():
    assert_marimo_check_clean(NOTEBOOK)


def test_notebook_test_cells_pass():
    assert_test_cells_pass(NOTEBOOK)


def test_app_without_a_stack_explains_itself():
    _, defs = _load_app().app.run()
    stack = defs["stack"]
    assert stack["running"] is False and support.START_HINT in stack["message"]
    assert defs["offline_path"] is None
    assert "pull_button" not in defs and "responses" not in defs  # stopped before pulling


def _responses() -> pd.DataFrame:
    df = _load_app().fake_responses()
    # an expert settles r2; a third record has a correction by one annotator and nothing from the other
    extra = df[df["record_id"] == "r1"].copy()
    extra["record_id"] = "r4"
    extra.loc[extra["username"] == "annotator", "corrected_explanation"] = "A better sentence."
    extra.loc[extra["username"] == "annotator2", "status"] = "draft"
    return pd.concat([df, extra], ignore_index=True)


def test_app_offline_mode_computes_agreement_and_disagreements(tmp_path, monkeypatch):
    path = support.save_responses(_responses(), tmp_path / "responses.parquet")
    monkeypatch.setenv(support.ENV_RESPONSES, str(path))
    _, defs = _load_app().app.run()
    assert defs["offline_path"] == str(path)
    assert len(defs["responses"]) == 8
    prog = defs["prog"]
    assert prog["records"] == 4 and prog["completed"] == 3
    per = prog["per_annotator"].set_index("username")
    assert per.loc["annotator", "submitted"] == 4 and per.loc["annotator2", "draft"] == 1
    assert per.loc["annotator2", "pending"] == 1
    q = defs["q_table"].set_index("question")
    assert {"rating", "grounded", "tone_ok"} <= set(q.index)
    assert q.loc["tone_ok", "cohen_kappa"] == 1.0  # they always agree on tone
    assert q.loc["grounded", "cohen_kappa"] < 1.0
    assert set(defs["a_table"]["annotator"]) == {"annotator", "annotator2"}
    d = defs["disagree"]
    assert set(zip(d["record_id"], d["question"])) == {("r2", "grounded"), ("r3", "rating")}
    row = d.set_index("record_id").loc["r2"]
    assert "annotator: grounded" in row["answers"] and "annotator2: unsupported_fact" in row["answers"]
    # golden: r1 approved (5, grounded, yes), r4 corrected by its one submitted annotator
    golden = defs["golden"].set_index("record_id")
    assert golden.loc["r4", "source"] == "corrected" and golden.loc["r1", "source"] == "approved"
    assert len(defs["golden_fig"].data) >= 1 and len(defs["agreement_fig"].data) >= 3


def test_snapshots_give_a_history(tmp_path):
    golden = pd.DataFrame({"record_id": ["a", "b"], "item_id": ["music:1", "book:2"],
                           "source": ["approved", "corrected"]})
    hist = tmp_path / "h.jsonl"
    support.record_snapshot(hist, "ds", golden.iloc[:1])
    support.record_snapshot(hist, "ds", golden, n_pairs=1)
    support.record_snapshot(hist, "other", golden)
    h = support.golden_history(hist, "ds")
    assert list(h["golden"]) == [1, 2] and list(h["golden_music"]) == [1, 1]
    assert support.golden_figure(golden, h).data[0].type == "scatter"
    assert support.golden_figure(golden, None).data[0].type == "bar"
