"""Stage 3 (finetune): LoRA SFT of the real packaged SmolLM2-135M on CPU.

Tiny runs (batch 2, <=128 tokens, a few to ~20 steps): the whole file takes
a couple of minutes on 2 cores; the SIGKILL/resume test (three subprocess
runs) is marked slow.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from finetune.config import ALL_PROJECTIONS, FinetuneConfig
from finetune.data import IGNORE_INDEX, build_sft_dataset, tokenize_example
from finetune.train import (CHECKPOINT_MARKER, BackendUnavailable, clean_incomplete, complete_checkpoints,
                            latest_complete_checkpoint, prepare_training, read_log, train_sft)

REPO = Path(__file__).resolve().parents[1]
GENRES = ["jazz", "rock", "folk", "pop", "soul", "blues", "punk", "funk"]
SYSTEM = "You explain a recommendation in one grounded sentence. Answer in JSON."


def _rows(n: int = 8) -> list[dict]:
    rows = []
    for i in range(n):
        g = GENRES[i % len(GENRES)]
        answer = {"explanation": f"Artist{i} plays warm {g}, like the {g} records you replay.",
                  "facts_used": [g]}
        rows.append({"messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": f'{{"recommended_item": {{"title": "Song {i}", "creator": "Artist{i}", '
                                        f'"genres": ["{g}"]}}}}'},
            {"role": "assistant", "content": json.dumps(answer)},
        ]})
    return rows


@pytest.fixture(scope="session")
def base_dir() -> Path:
    from linernotes.hfmodel import smollm2_hf_dir

    return smollm2_hf_dir()


@pytest.fixture(scope="session")
def tokenizer(base_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(base_dir)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Training here runs with 1 torch thread (config num_threads=1): on a 2-core machine shared
    with other test runs, 2 threads made a step take 1-23 s instead of a steady ~1.3 s."""
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _cfg(tmp_path, **kw) -> FinetuneConfig:
    base = dict(runs_dir=str(tmp_path / "runs"), max_length=128, per_device_batch_size=2,
                save_steps=1000, lr=1e-3, seed=17, num_threads=1)
    base.update(kw)
    return FinetuneConfig(**base)


# ---------------------------------------------------------------- config

def test_config_defaults_and_recipe():
    from linernotes.config import load_config

    cfg = FinetuneConfig()
    assert cfg.backend == "peft" and cfg.target_modules == ALL_PROJECTIONS
    assert cfg.max_length == 1024 and cfg.assistant_only_loss and not cfg.packing  # real rows ~410 tokens
    recipe = load_config(FinetuneConfig, REPO / "recipes" / "finetune_cpu.yaml")
    assert recipe.max_steps > 0 and recipe.target_modules == ALL_PROJECTIONS
    # where a run is written does not change what it learns
    assert FinetuneConfig(runs_dir="/a").fingerprint() == FinetuneConfig(runs_dir="/b").fingerprint()
    assert FinetuneConfig(lora_r=8).fingerprint() != FinetuneConfig().fingerprint()
    with pytest.raises(ValueError, match="backend"):
        FinetuneConfig(backend="axolotl")


# ---------------------------------------------------------------- labels

def test_only_final_assistant_turn_carries_loss(tokenizer):
    final = '{"explanation": "Warm jazz like yours.", "facts_used": ["jazz"]}'
    msgs = [{"role": "system", "content": SYSTEM},
            {"role": "user", "content": "few-shot question"},
            {"role": "assistant", "content": '{"explanation": "FEW-SHOT ANSWER"}'},
            {"role": "user", "content": "the real question"},
            {"role": "assistant", "content": final}]
    ex = tokenize_example(msgs, tokenizer)
    ids, labels = ex["input_ids"], ex["labels"]
    assert len(ids) == len(labels)
    # the same text the model sees at inference, with the model's own template
    prompt = tokenizer.apply_chat_template(msgs[:-1], tokenize=False, add_generation_prompt=True)
    assert tokenizer.decode(ids).startswith(prompt)
    n_prompt = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    assert all(lab == IGNORE_INDEX for lab in labels[:n_prompt])
    assert labels[n_prompt:] == ids[n_prompt:]
    trained = tokenizer.decode([t for t in labels if t != IGNORE_INDEX])
    assert trained == final + "<|im_end|>\n"  # the answer and its stop token, nothing else
    assert "FEW-SHOT" not in trained and "real question" not in trained
    # full-sequence loss when asked for
    assert tokenize_example(msgs, tokenizer, assistant_only_loss=False)["labels"] == ids


def test_dataset_drops_too_long_and_invalid(tokenizer):
    rows = _rows(3) + [{"messages": [{"role": "user", "content": "no answer"}]},
                       {"messages": [{"role": "system", "content": "s"},
                                     {"role": "user", "content": "word " * 200},
                                     {"role": "assistant", "content": "a"}]}]
    data = build_sft_dataset(rows, tokenizer, max_length=128)
    assert data.n_examples == 3 and data.dropped_invalid == 1 and data.dropped_too_long == 1
    with pytest.raises(ValueError, match="max_length"):
        build_sft_dataset(rows[-1:], tokenizer, max_length=128)


def test_collated_batch_masks_prompt_and_padding(tmp_path):
    prep = prepare_training(_cfg(tmp_path, max_steps=1), _rows(4))
    batch = next(iter(prep.trainer.get_train_dataloader()))
    ids, labels, mask = batch["input_ids"], batch["labels"], batch["attention_mask"]
    assert (labels[mask == 0] == IGNORE_INDEX).all()  # padding: no loss
    for i in range(ids.shape[0]):
        trained = prep.tokenizer.decode(ids[i][labels[i] != IGNORE_INDEX])
        assert trained.startswith('{"explanation": ') and trained.endswith("<|im_end|>\n")
        assert "<|im_start|>" not in trained and SYSTEM not in trained


# ---------------------------------------------------------------- training

def test_lora_steps_change_adapter_and_leave_base_untouched(tmp_path):
    prep = prepare_training(_cfg(tmp_path, max_steps=2), _rows(8))
    model = prep.model
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    assert prep.trainable_params == 4_884_480  # r=16 on all 7 projections of SmolLM2-135M
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    prep.trainer.train()
    after = dict(model.named_parameters())
    changed = [n for n in trainable if not (after[n].detach() == before[n]).all()]
    lora_b = [n for n in trainable if "lora_B" in n]
    assert set(lora_b) <= set(changed), "every lora_B (zero-initialised) must have moved"
    frozen_changed = [n for n in before if n not in trainable and not (after[n].detach() == before[n]).all()]
    assert frozen_changed == []
    assert prep.trainer.state.global_step == 2


def test_overfit_loss_decreases_and_run_is_written(tmp_path):
    cfg = _cfg(tmp_path, max_steps=12, save_steps=6, lr=1e-3)
    run = train_sft(cfg, _rows(8))
    assert run.is_complete()
    m = run.manifest()
    assert m["global_step"] == 12 and m["resumed_from"] is None
    losses = [r["loss"] for r in read_log(run)]
    assert len(losses) == 12
    assert losses[-1] < 0.3 * losses[0], losses
    assert m["first_loss"] == losses[0] and m["final_loss"] == losses[-1]
    assert m["step_seconds_mean"] > 0 and m["tokens_per_second"] > 0
    assert m["versions"]["peft"] and m["versions"]["trl"] and m["config"]["lora_r"] == 16
    adapter = run.path / "adapter"
    assert (adapter / "adapter_model.safetensors").exists() and (adapter / "adapter_config.json").exists()
    from safetensors.torch import load_file

    keys = load_file(str(adapter / "adapter_model.safetensors")).keys()
    assert keys and all("lora_" in k for k in keys)  # the adapter only, no base weights
    assert [p.name for p in complete_checkpoints(run.path / "checkpoints")] == ["checkpoint-6", "checkpoint-12"]
    # a finished run is not trained again
    t0 = time.monotonic()
    assert train_sft(cfg, _rows(8)).path == run.path
    assert time.monotonic() - t0 < 5


# ---------------------------------------------------------------- checkpoints

def test_incomplete_checkpoints_are_ignored_and_removed(tmp_path):
    ck = tmp_path / "checkpoints"
    for step, marked in ((5, True), (10, True), (15, False)):
        d = ck / f"checkpoint-{step}"
        d.mkdir(parents=True)
        if marked:
            (d / CHECKPOINT_MARKER).write_text("{}")
    (ck / ".staging-20-123" / "checkpoint-20").mkdir(parents=True)
    assert latest_complete_checkpoint(ck).name == "checkpoint-10"
    assert clean_incomplete(ck) == [".staging-20-123", "checkpoint-15"]
    assert sorted(p.name for p in ck.iterdir()) == ["checkpoint-10", "checkpoint-5"]


# ---------------------------------------------------------------- unsloth

def _fake_unsloth(tmp_path: Path) -> tuple[Path, Path]:
    """A package named unsloth that records being imported."""
    pkg = tmp_path / "fake" / "unsloth"
    pkg.mkdir(parents=True)
    flag = tmp_path / "unsloth_imported"
    (pkg / "__init__.py").write_text(f"open({str(flag)!r}, 'w').write('imported')\n")
    return pkg.parent, flag


def test_unsloth_without_gpu_says_so_and_never_imports_it(tmp_path, monkeypatch):
    import torch

    fake, flag = _fake_unsloth(tmp_path)
    monkeypatch.syspath_prepend(str(fake))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    sys.modules.pop("unsloth", None)
    with pytest.raises(BackendUnavailable, match=r"backend 'unsloth' needs an NVIDIA CUDA GPU") as exc:
        train_sft(_cfg(tmp_path, backend="unsloth", max_steps=1), _rows(2))
    assert "backend 'peft'" in str(exc.value)
    assert "unsloth" not in sys.modules and not flag.exists()
    assert not (tmp_path / "runs").exists()  # failed before any work

    # importing the stage (and its CLI) never imports unsloth (nor torch)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(fake), str(REPO)])}
    code = ("import sys, finetune.train, finetune.data, finetune.config; "
            "print('unsloth' in sys.modules, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"] and not flag.exists()


def test_unsloth_cli_without_gpu(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    fake, flag = _fake_unsloth(tmp_path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(fake), str(REPO)])}
    out = subprocess.run([sys.executable, "-m", "finetune.train", "--backend", "unsloth",
                          "--train-data", str(tmp_path / "none.jsonl")],
                         env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2
    assert "needs an NVIDIA CUDA GPU" in out.stderr and not flag.exists()


# ---------------------------------------------------------------- resume after SIGKILL

def _write_recipe(tmp_path: Path, run_name: str, data: Path) -> Path:
    recipe = {"runs_dir": str(tmp_path / "runs"), "run_name": run_name, "train_data": str(data),
              "max_steps": 12, "save_steps": 4, "save_total_limit": 2, "per_device_batch_size": 2,
              "max_length": 128, "lr": 5e-4, "seed": 17, "num_threads": 1}
    path = tmp_path / f"{run_name}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def _cli(recipe: Path, **popen_kw):
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "finetune.train", "--config", str(recipe)],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            **popen_kw)


@pytest.mark.slow
def test_resume_after_sigkill_continues_with_same_data_order(tmp_path):
    data = tmp_path / "sft.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in _rows(8)))

    # the interrupted run: SIGKILL as soon as the first complete checkpoint exists
    recipe = _write_recipe(tmp_path, "interrupted", data)
    ck = tmp_path / "runs" / "interrupted" / "checkpoints"
    proc = _cli(recipe)
    try:
        deadline = time.monotonic() + 240
        while not (ck / "checkpoint-4" / CHECKPOINT_MARKER).exists():
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "no checkpoint in 240 s"
            time.sleep(0.05)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    killed_log = read_log(tmp_path / "runs" / "interrupted")
    assert proc.returncode == -signal.SIGKILL
    assert max(r["step"] for r in killed_log) < 12, "the run finished before it was killed"
    last = latest_complete_checkpoint(ck)
    resumed_step = int(last.name.split("-")[1])
    assert resumed_step >= 4

    out = _cli(recipe).communicate(timeout=300)[0]
    run = tmp_path / "runs" / "interrupted"
    m = json.loads((run / "manifest.json").read_text())
    assert m["resumed_from"] == str(last), out
    assert m["global_step"] == 12
    assert m["steps_this_process"] == 12 - resumed_step  # continued, not from 0
    resumed = {r["step"]: r for r in read_log(run)}
    assert sorted(resumed) == list(range(1, 13))

    # an uninterrupted run of the same config: same batches after the checkpoint
    clean_recipe = _write_recipe(tmp_path, "clean", data)
    out = _cli(clean_recipe).communicate(timeout=300)[0]
    clean = {r["step"]: r for r in read_log(tmp_path / "runs" / "clean")}
    assert sorted(clean) == list(range(1, 13)), out
    for step in range(1, 13):
        assert resumed[step]["rows"] == clean[step]["rows"], step
    for step in range(resumed_step + 1, 13):  # optimizer/scheduler/RNG restored: same losses
        assert resumed[step]["loss"] == pytest.approx(clean[step]["loss"], rel=1e-3, abs=1e-4), step


def test_load_in_4bit_is_unsloth_only_and_keeps_old_run_names():
    with pytest.raises(ValueError, match="load_in_4bit"):
        FinetuneConfig(load_in_4bit=True)
    assert FinetuneConfig(backend="unsloth", load_in_4bit=True).fingerprint() != \
        FinetuneConfig(backend="unsloth").fingerprint()
    from linernotes.config import load_config

    # runs of the CPU recipe (then with max_length 512) made before the field existed were
    # named finetune-4068d3a70c-...
    # (general_mix 0 keeps that name; the recipe's general_mix renames its runs on purpose)
    assert load_config(FinetuneConfig, REPO / "recipes" / "finetune_cpu.yaml",
                       {"max_length": 512, "general_mix": 0.0}).fingerprint() == "4068d3a70c"
