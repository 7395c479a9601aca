"""`linernotes finetune|dpo|eval|export`: the commands exist, chain their defaults, and
say what is missing (exit 2, the field named) instead of a traceback."""

from __future__ import annotations

import json

import pytest

from finetune.cli import _published
from linernotes.cli import main
from linernotes.runs import RunDir


@pytest.fixture
def empty_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("LINERNOTES_RUNS", str(tmp_path / "runs"))
    (tmp_path / "runs").mkdir()
    return tmp_path / "runs"


@pytest.mark.parametrize("argv, field", [(["finetune"], "train_data"), (["dpo"], "preference_data"),
                                         (["eval"], "run")])
def test_missing_inputs_name_the_field(empty_runs, capsys, argv, field):
    assert main(argv) == 2
    assert f"config field '{field}'" in capsys.readouterr().err


def _publish_run(root, name, created, tables=("sft",), complete=True):
    run = RunDir(root / name)
    for t in tables:
        (run.path / "data" / t).mkdir(parents=True)
    run.write_manifest({"stage": "publish", "created": created})
    if complete:
        run.mark_complete()
    return run.path


def test_newest_publish_is_the_default_training_data(empty_runs):
    assert _published("sft", None) is None
    older = _publish_run(empty_runs, "publish-b", "2025-01-01T10:00:00+0000")
    newer = _publish_run(empty_runs, "publish-a", "2025-01-02T10:00:00+0000")  # name sorts first
    _publish_run(empty_runs, "publish-c", "2025-01-03T10:00:00+0000", tables=())  # no sft table
    _publish_run(empty_runs, "publish-d", "2025-01-04T10:00:00+0000", complete=False)  # unfinished
    assert _published("sft", None) == newer != older
    # DPO's default wants the preferences table: only a run that has one
    assert _published("preferences", None) is None
    prefs = _publish_run(empty_runs, "publish-e", "2024-12-01T00:00:00+0000", tables=("sft", "preferences"))
    assert _published("preferences", None) == prefs


def test_runs_lists_every_kind_of_manifest(empty_runs, capsys):
    """Finetune/DPO manifests have no `counts` (this crashed with KeyError); each kind shows its
    own numbers, and a run without or with a broken manifest is listed, not fatal."""
    RunDir(empty_runs / "synth-x").write_manifest(
        {"stage": "synth", "counts": {"rows": 60, "parsed": 58, "passed_all": 40}})
    RunDir(empty_runs / "finetune-x").write_manifest(
        {"stage": "finetune", "global_step": 30, "final_loss": 1.25, "backend": "peft",
         "data": {"train_examples": 72}})
    RunDir(empty_runs / "dpo-x").write_manifest(
        {"stage": "dpo", "global_step": 12, "final_loss": 0.5, "backend": "peft", "data": {"pairs": 9}})
    (empty_runs / "label-x").mkdir()
    (empty_runs / "label-x" / "manifest.json").write_text("{not json")
    (empty_runs / "curate-x").mkdir()
    for p in empty_runs.iterdir():
        (p / "COMPLETE").write_text("2025-01-01T00:00:00")
    assert main(["runs"]) == 0
    out = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert "rows=60" in out["synth-x"] and "passed_all=40" in out["synth-x"]
    assert "steps=30" in out["finetune-x"] and "examples=72" in out["finetune-x"]
    assert "loss=1.250" in out["finetune-x"] and "backend=peft" in out["finetune-x"]
    assert "steps=12" in out["dpo-x"] and "pairs=9" in out["dpo-x"]
    assert "manifest unreadable" in out["label-x"]
    assert "no manifest" in out["curate-x"]


def test_bad_flag_value_is_a_clear_error(empty_runs, capsys, tmp_path):
    data = tmp_path / "rows.jsonl"
    data.write_text(json.dumps({"messages": []}) + "\n")
    assert main(["finetune", "--train-data", str(data), "--lora-r", "many"]) == 2
    assert "lora_r" in capsys.readouterr().err


def test_export_needs_a_run_or_base(empty_runs, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["export"])
    assert exc.value.code == 2 and "--run" in capsys.readouterr().err


def test_export_of_a_folder_without_adapter_is_a_clear_error(empty_runs, capsys, tmp_path):
    rc = main(["export", "--run", str(tmp_path / "nothing"), "--no-gate"])
    assert rc == 2 and "nothing" in capsys.readouterr().err
