"""Stage 3b (DPO): the SFT adapter trained further on preference pairs, real SmolLM2 on CPU."""

from __future__ import annotations

import json
import math

import pytest

from finetune.config import DPOStageConfig, FinetuneConfig
from finetune.dpo import train_dpo, validate_preferences
from finetune.train import train_sft
from test_finetune import _rows


def _pairs(n: int = 8) -> list[dict]:
    out = []
    for r in _rows(n):
        prompt, answer = r["messages"][:2], r["messages"][2]
        wrong = json.loads(answer["content"])
        wrong["explanation"] = "A classic by Prince from 1999 that never ends."
        out.append({"prompt": prompt, "chosen": [answer],
                    "rejected": [{"role": "assistant", "content": json.dumps(wrong)}]})
    return out


def test_validation_names_row_and_field():
    good, bad = validate_preferences([
        *_pairs(2),
        {"prompt": _pairs(1)[0]["prompt"], "chosen": None, "rejected": _pairs(1)[0]["rejected"]},
        {"prompt": "not json", "chosen": _pairs(1)[0]["chosen"], "rejected": _pairs(1)[0]["rejected"]},
        {**_pairs(1)[0], "rejected": _pairs(1)[0]["chosen"]},
    ])
    assert len(good) == 2
    assert [b["row"] for b in bad] == [2, 3, 4]
    assert "field 'chosen'" in bad[0]["error"] and "field 'prompt'" in bad[1]["error"]
    assert "identical" in bad[2]["error"]


@pytest.fixture(scope="module")
def sft_run(tmp_path_factory):
    import torch

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("dpo")
    return train_sft(FinetuneConfig(runs_dir=str(root / "runs"), max_length=128, per_device_batch_size=2,
                                    save_steps=1000, lr=1e-3, max_steps=2, num_threads=1), _rows(8))


def test_dpo_moves_sft_adapter_toward_chosen(sft_run, tmp_path):
    from safetensors.torch import load_file

    rows = _pairs(8) + [{"prompt": _pairs(1)[0]["prompt"], "chosen": [], "rejected": []}]
    cfg = DPOStageConfig(runs_dir=str(tmp_path / "runs"), max_length=128, per_device_batch_size=2,
                         lr=5e-4, max_steps=4, save_steps=1000, num_threads=1)
    run = train_dpo(cfg, rows, sft_run=sft_run.path)
    m = run.manifest()
    losses = [r["loss"] for r in m["losses"]]
    # Reference = a frozen copy of the SFT adapter, so the first step's DPO loss is exactly ln 2.
    assert losses[0] == pytest.approx(math.log(2), abs=1e-3)
    assert losses[-1] < losses[0] * 0.5
    assert m["losses"][-1]["rewards/margins"] > 0
    assert m["data"]["pairs"] == 8 and m["data"]["quarantined"] == 1
    assert "row 8" in (run.path / "quarantine.jsonl").read_text()
    before = load_file(str(sft_run.path / "adapter" / "adapter_model.safetensors"))
    after = load_file(str(run.path / "adapter" / "adapter_model.safetensors"))
    assert before.keys() == after.keys() and all("lora_" in k for k in after)
    assert any(not before[k].equal(after[k]) for k in before)
    assert not (run.path / "adapter" / "ref").exists()
    assert m["backend"] == "peft"  # the backend that ran
    assert train_dpo(cfg, rows, sft_run=sft_run.path).path == run.path  # complete: returned as is


def test_dpo_without_sft_adapter_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="sft_run"):
        train_dpo(DPOStageConfig(runs_dir=str(tmp_path)), _pairs(2), sft_run=tmp_path / "nothing")


@pytest.mark.parametrize("cuda", [False, True])
def test_dpo_refuses_unsloth_instead_of_running_peft_under_its_name(monkeypatch, cuda):
    """DPO has one path (PEFT + TRL): `backend: unsloth` once trained with PEFT and wrote
    "unsloth" in the manifest. It is refused at config time, with or without a GPU."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    with pytest.raises(ValueError, match="config field 'backend'.*SFT only"):
        DPOStageConfig(backend="unsloth")


def test_dpo_cli_refuses_unsloth_naming_the_field(tmp_path, monkeypatch, capsys):
    from linernotes.cli import main

    monkeypatch.setenv("LINERNOTES_RUNS", str(tmp_path))
    assert main(["dpo", "--backend", "unsloth", "--preference-data", str(tmp_path)]) == 2
    assert "config field 'backend'" in capsys.readouterr().err
