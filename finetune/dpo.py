"""Stage 3b: DPO of the SFT adapter on the labelers' preference pairs (TRL DPOTrainer).

`train_dpo(config, pref_rows, sft_run=None) -> RunDir`, or from the shell:

    python -m finetune.dpo --config recipes/dpo_cpu.yaml --sft-run runs/finetune-X \\
        --preference-data runs/publish-Y

Rows are TRL's conversational preference format, as `curation.publish`
writes them: `prompt` ([system, user]), `chosen` and `rejected` (each one
assistant turn). Rows that lack one of them, or whose turns are malformed, go
to the run's `quarantine.jsonl` with the reason; the rest train.

The policy is the SFT adapter loaded trainable; TRL copies it as a frozen
"ref" adapter, so the reference is the SFT model (not the untuned base).
Checkpoints, step log, resume and the final `adapter/` folder work exactly as
in `finetune.train` (same trainer subclass, `kind="dpo"`), so export and
eval take a DPO run wherever they take an SFT run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from finetune.config import DPOStageConfig
from finetune.train import (ADAPTER_DIR, FT_VERSIONED, _loadavg, _make_callback, _torch_threads,
                            _trainer_class, _Tracker, complete_checkpoints,
                            prepare_run_folder, read_log, save_adapter,
                            steady_steps)
from linernotes.runs import RunDir, base_manifest, package_versions

STAGE = "dpo"
BACKEND_RAN = "peft"  # the only DPO training path (see train_dpo)


def _turns(value: Any, field: str) -> list[dict[str, str]]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise ValueError(f"field '{field}': not a JSON list of messages ({exc})") from None
    if not isinstance(value, (list, tuple)) or not value:
        raise ValueError(f"field '{field}': expected a non-empty list of messages")
    out = []
    for m in value:
        if not isinstance(m, Mapping) or not m.get("role") or m.get("content") in (None, ""):
            raise ValueError(f"field '{field}': message without role/content: {m!r}")
        out.append({"role": str(m["role"]), "content": str(m["content"])})
    return out


def validate_preferences(rows: Sequence[Mapping[str, Any]]) -> tuple[list[dict], list[dict]]:
    """(good rows in TRL's conversational format, quarantined rows with `error` naming the field)."""
    good, bad = [], []
    for i, row in enumerate(rows):
        try:
            prompt = _turns(row.get("prompt"), "prompt")
            chosen = _turns(row.get("chosen"), "chosen")
            rejected = _turns(row.get("rejected"), "rejected")
            if prompt[-1]["role"] != "user":
                raise ValueError("field 'prompt': last turn must be the user's")
            for name, turns in (("chosen", chosen), ("rejected", rejected)):
                if turns[-1]["role"] != "assistant":
                    raise ValueError(f"field '{name}': expected an assistant turn")
            if chosen[-1]["content"].strip() == rejected[-1]["content"].strip():
                raise ValueError("fields 'chosen'/'rejected': identical answers teach nothing")
        except ValueError as exc:
            bad.append({"row": i, "item_id": row.get("item_id"), "error": f"row {i}: {exc}",
                        "data": {k: row.get(k) for k in ("prompt", "chosen", "rejected", "item_id")}})
            continue
        good.append({"prompt": prompt, "chosen": chosen, "rejected": rejected})
    return good, bad


def load_preferences(path: str | Path) -> list[dict[str, Any]]:
    """Preference rows from a published dataset folder (data/preferences/*.parquet), a parquet or jsonl."""
    path = Path(path)
    if path.is_dir():
        files = sorted(path.glob("data/preferences/*.parquet")) or sorted(path.glob("*.parquet"))
        if not files:
            raise FileNotFoundError(f"no preference parquet under {path} (expected data/preferences/*.parquet)")
        return [r for f in files for r in load_preferences(f)]
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if path.suffix == ".parquet":
        from linernotes import rows

        return rows.read_parquet(path, "preference").to_pylist()  # checked against the declared schema
    raise ValueError(f"unsupported preference file {path} (expected a folder, .parquet or .jsonl)")


def newest_run(stage: str, runs_dir: str | None = None) -> Path | None:
    """The newest complete run of a stage (finetune, dpo) holding an adapter (`RunDir.find`)."""
    run = RunDir.find(stage, require=ADAPTER_DIR, runs_dir=runs_dir)
    return run.path if run else None


def _pref_fingerprint(rows: Sequence[Mapping[str, Any]]) -> str:
    from linernotes.fingerprint import items_fingerprint

    # ASCII-escaped JSON, no separator: the hash earlier DPO runs are named by
    return items_fingerprint(([r["prompt"], r["chosen"], r["rejected"]] for r in rows), ensure_ascii=True)


def train_dpo(config: DPOStageConfig, pref_rows: Sequence[Mapping[str, Any]],
              sft_run: str | Path | None = None) -> RunDir:
    """Train the SFT adapter further with DPO; returns the run (adapter/, manifest.json, train_log.jsonl)."""
    if config.backend != BACKEND_RAN:  # DPOStageConfig refuses others; never record one that did not run
        raise ValueError(f"config field 'backend': DPO trains with {BACKEND_RAN!r} only, got {config.backend!r}")
    from linernotes import paths

    paths.use_offline_hub()
    sft_path = Path(sft_run or config.sft_run or newest_run("finetune", config.runs_dir) or "")
    if not (sft_path / ADAPTER_DIR / "adapter_config.json").exists():
        raise ValueError(f"config field 'sft_run': no trained adapter at {sft_path / ADAPTER_DIR} "
                         "(run `linernotes finetune` first)")
    good, bad = validate_preferences(pref_rows)
    if not good:
        raise ValueError(f"no usable preference pair among {len(pref_rows)} rows; first problems: "
                         f"{[b['error'] for b in bad[:3]]}")
    # Named after the SFT run actually used (not "newest", which changes as runs are added).
    resolved = dataclasses.replace(config, sft_run=str(sft_path.resolve()))
    name = config.run_name or f"{STAGE}-{resolved.fingerprint()}-{_pref_fingerprint(good)}"
    run = RunDir((Path(config.runs_dir) if config.runs_dir else _runs_root()) / name)
    if run.is_complete():
        return run
    t0, load_before = time.monotonic(), _loadavg()

    import datasets
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed
    from trl import DPOConfig

    if config.num_threads > 0:
        torch.set_num_threads(config.num_threads)
    set_seed(config.seed)
    sft_manifest = json.loads((sft_path / "manifest.json").read_text()) if (sft_path / "manifest.json").exists() else {}
    base = sft_manifest.get("base_model")
    if not base:
        from linernotes.hfmodel import smollm2_hf_dir

        base = str(smollm2_hf_dir())
    tokenizer = AutoTokenizer.from_pretrained(str(sft_path / ADAPTER_DIR))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    model = PeftModel.from_pretrained(model, str(sft_path / ADAPTER_DIR), is_trainable=True)

    ckpt_dir, log_path, last, removed = prepare_run_folder(run, config.resume)
    quarantine = run.path / "quarantine.jsonl"
    quarantine.write_text("".join(json.dumps(b, ensure_ascii=False, default=str) + "\n" for b in bad))

    cuda = torch.cuda.is_available()
    args = DPOConfig(
        output_dir=str(ckpt_dir), seed=config.seed, data_seed=config.seed,
        beta=config.beta, loss_type=[config.loss_type], max_length=config.max_length,
        learning_rate=config.lr, lr_scheduler_type=config.lr_scheduler, warmup_steps=config.warmup_steps,
        num_train_epochs=config.epochs, max_steps=config.max_steps,
        per_device_train_batch_size=config.per_device_batch_size,
        gradient_accumulation_steps=config.grad_accum,
        save_strategy="steps", save_steps=config.save_steps, save_total_limit=None,
        logging_strategy="steps", logging_steps=config.logging_steps,
        use_cpu=not cuda, bf16=bool(cuda and torch.cuda.is_bf16_supported()), fp16=False,
        gradient_checkpointing=False, dataloader_num_workers=0, report_to=[], disable_tqdm=True,
    )
    tracker = _Tracker(log_path=log_path, row_of_hash={}, logging_steps=config.logging_steps)
    cls = _trainer_class("dpo")
    trainer = cls(model=model, args=args, train_dataset=datasets.Dataset.from_list(good),
                  processing_class=tokenizer, callbacks=[_make_callback(tracker)])
    trainer._tracker = tracker
    trainer._keep_checkpoints = config.save_total_limit
    result = trainer.train(resume_from_checkpoint=last)
    # Only the trained ("default") adapter is the result; TRL's frozen "ref" copy is not.
    save_adapter(trainer, tokenizer, run, drop=("ref",))

    log = read_log(run)
    losses = [{"step": r["step"], "loss": r["loss"],
               **{k: r[k] for k in ("rewards/accuracies", "rewards/margins") if k in r}}
              for r in log if "loss" in r]
    steady = steady_steps(tracker)
    manifest = base_manifest(STAGE, resolved, run)
    manifest["versions"] = package_versions(FT_VERSIONED)
    manifest.update({
        "backend": BACKEND_RAN, "device": "cuda" if cuda else "cpu", "torch_threads": _torch_threads(),
        "load_average": {"before": load_before, "after": _loadavg(), "cpus": os.cpu_count()},
        "base_model": base, "sft_run": str(sft_path), "sft_manifest_run": sft_manifest.get("run"),
        "data": {"pairs": len(good), "quarantined": len(bad), "fingerprint": _pref_fingerprint(good),
                 "problems": [b["error"] for b in bad[:10]]},
        "global_step": int(trainer.state.global_step), "resumed_from": last,
        "removed_incomplete_checkpoints": removed, "losses": losses,
        "first_loss": losses[0]["loss"] if losses else None,
        "final_loss": losses[-1]["loss"] if losses else None,
        "train_loss": float(result.training_loss) if result is not None else None,
        "step_seconds_mean": round(sum(s["seconds"] for s in steady) / len(steady), 4) if steady else None,
        "wall_seconds": round(time.monotonic() - t0, 1), "adapter": ADAPTER_DIR,
        "checkpoints": [p.name for p in complete_checkpoints(ckpt_dir)],
    })
    run.write_manifest(manifest)
    run.mark_complete()
    return run


def _runs_root() -> Path:
    from linernotes import paths

    return paths.runs_dir()


def main(argv: list[str] | None = None) -> int:
    from linernotes.config import add_dataclass_args, load_config, overrides_from_args

    ap = argparse.ArgumentParser(prog="python -m finetune.dpo", description=__doc__.split("\n")[0])
    ap.add_argument("--config", help="YAML recipe (e.g. recipes/dpo_cpu.yaml)")
    add_dataclass_args(ap, DPOStageConfig)
    args = ap.parse_args(argv)
    config = load_config(DPOStageConfig, args.config, overrides_from_args(args, DPOStageConfig))
    if not config.preference_data:
        ap.error("no preference data: set preference_data in the recipe or pass --preference-data")
    run = train_dpo(config, load_preferences(config.preference_data))
    m = run.manifest()
    print(f"{run.path}: {m['global_step']} DPO steps on {m['data']['pairs']} pairs "
          f"({m['data']['quarantined']} quarantined), loss {m['first_loss']} -> {m['final_loss']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
