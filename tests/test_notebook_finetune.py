"""The fine-tuning app (notebooks/04_finetune.py), headless.

(a) `marimo check` is clean and the app's own `test_*` functions pass;
(b) with no published data it says what to run and trains nothing;
(c) Train pressed (run_button overridden): `python -m finetune.train` runs in a
    subprocess for a few steps on tiny rows, the loss chart fills, the run opens
    below, and the report card waits for its own button.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from finetune.config import FinetuneConfig
from linernotes import paths
from test_finetune import _rows
from marimo_helpers import assert_marimo_check_clean, assert_test_cells_pass, load_app

NOTEBOOK = paths.REPO_ROOT / "notebooks" / "04_finetune.py"


def _load_app():
    return load_app(NOTEBOOK)


def test_marimo_check_is_clean():
    assert_marimo_check_clean(NOTEBOOK)


def test_notebook_test_cells_pass():
    assert_test_cells_pass(NOTEBOOK)


def test_app_without_data_explains_itself(tmp_path, monkeypatch):
    monkeypatch.setenv("LINERNOTES_RUNS", str(tmp_path / "runs"))
    _, defs = _load_app().run()
    assert defs["data_ui"].value is None
    assert "config" not in defs and "progress" not in defs


@pytest.mark.slow
def test_train_button_trains_in_a_subprocess_and_opens_the_run(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    monkeypatch.setenv("LINERNOTES_RUNS", str(runs))
    data = tmp_path / "sft.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in _rows(8)))
    config = FinetuneConfig(max_steps=3, lr=1e-3, max_length=128, per_device_batch_size=2, save_steps=1000,
                            num_threads=1, runs_dir=str(runs))
    _, defs = _load_app().run(defs={"config": config, "data_path": str(data),
                                    "train_button": SimpleNamespace(value=True)})
    progress = defs["progress"]
    assert progress.ok, progress.tail(40)
    assert [s["step"] for s in progress.steps] == [1, 2, 3]
    assert defs["run_ui"].value == str(progress.run_dir)
    assert defs["manifest"]["global_step"] == 3
    assert len(defs["loss_fig"].data[0].x) == 3
    assert "report" not in defs  # the report card waits for its button
