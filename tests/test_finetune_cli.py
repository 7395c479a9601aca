"""`linernotes finetune|dpo|eval|export`: the commands exist, chain their defaults, and
say what is missing (exit 2, the field named) instead of a traceback."""

from __future__ import annotations

import json

import pytest

from finetune.cli import newest_publish
from linernotes.cli import main


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


def test_newest_publish_is_the_default_training_data(empty_runs):
    assert newest_publish() is None
    older, newer = empty_runs / "publish-a", empty_runs / "publish-b"
    for i, p in enumerate((older, newer)):
        (p / "data" / "sft").mkdir(parents=True)
        import os

        os.utime(p, (1_000_000 + i, 1_000_000 + i))
    (empty_runs / "publish-c").mkdir()  # no sft table: not a dataset
    assert newest_publish() == newer


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
