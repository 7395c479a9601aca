"""Stage 3: LoRA SFT of SmolLM2 on the SFT rows (PEFT + TRL; Unsloth on a CUDA GPU).

`train_sft(config, train_rows, eval_rows=None) -> RunDir`, or from the shell:

    python -m finetune.train --config recipes/finetune_cpu.yaml --train-data data/sft.jsonl

Layout of `runs/<run name>/` (name: finetune-<config hash>-<data hash>):

    checkpoints/checkpoint-N/   Trainer checkpoints (adapter, optimizer, scheduler, RNG, trainer
                                state) + CHECKPOINT_COMPLETE. Each is written under a staging
                                folder and renamed into place once whole, so a killed save never
                                leaves a `checkpoint-N` behind; resume takes the newest one with
                                the marker and removes anything unmarked.
    train_log.jsonl             one line per optimizer step: step, loss, lr, grad_norm, the
                                row indices of the batch (data-order check), tokens, seconds
    adapter/                    final LoRA adapter (adapter_model.safetensors, adapter_config.json)
                                + tokenizer with its chat template
    manifest.json, COMPLETE     as in the other stages (linernotes.runs)

Resume: a rerun of the same config + data continues from the newest complete
checkpoint (`resume_from_checkpoint`): global_step, optimizer, scheduler and
RNG states come back, and the seeded sampler (accelerate's seedable sampler,
`data_seed`) with the already-seen batches skipped gives the same data order
as an uninterrupted run. A finished run (COMPLETE) is returned as it is.

Nothing heavy is imported at module import: torch/transformers/trl/peft load
inside the functions, and `unsloth` only inside the "unsloth" backend, after
checking there is a CUDA device (Unsloth cannot even be imported without one).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from finetune.config import FinetuneConfig
from finetune.data import SFTData, build_sft_dataset, load_rows, rows_fingerprint
from linernotes.runs import VERSIONED, RunDir, base_manifest, package_versions

STAGE = "finetune"
CHECKPOINT_MARKER = "CHECKPOINT_COMPLETE"
CHECKPOINT_PREFIX = "checkpoint-"
STAGING_PREFIX = ".staging-"
LOG_NAME = "train_log.jsonl"
ADAPTER_DIR = "adapter"
FT_VERSIONED = (*VERSIONED, "peft", "trl", "accelerate", "safetensors", "unsloth")


class BackendUnavailable(RuntimeError):
    """The chosen backend cannot run on this machine."""


def require_cuda_for_unsloth() -> None:
    """Raise before anything imports unsloth: it fails at import without a GPU."""
    import torch

    if not torch.cuda.is_available():
        raise BackendUnavailable(
            "backend 'unsloth' needs an NVIDIA CUDA GPU (torch.cuda.is_available() is False on this "
            "machine; Unsloth cannot even be imported without one) and its own environment (its pins "
            "clash with the CPU stack). Use backend 'peft' on CPU.")


# ---------------------------------------------------------------- checkpoints

def _step_of(path: Path) -> int:
    try:
        return int(path.name[len(CHECKPOINT_PREFIX):])
    except ValueError:
        return -1


def complete_checkpoints(ckpt_dir: Path) -> list[Path]:
    """Checkpoints with the marker, oldest first."""
    if not ckpt_dir.is_dir():
        return []
    found = [p for p in ckpt_dir.iterdir()
             if p.is_dir() and p.name.startswith(CHECKPOINT_PREFIX) and _step_of(p) >= 0
             and (p / CHECKPOINT_MARKER).exists()]
    return sorted(found, key=_step_of)


def latest_complete_checkpoint(ckpt_dir: Path) -> Path | None:
    done = complete_checkpoints(ckpt_dir)
    return done[-1] if done else None


def clean_incomplete(ckpt_dir: Path) -> list[str]:
    """Remove staging folders and unmarked checkpoint folders; return their names."""
    removed = []
    if ckpt_dir.is_dir():
        for p in ckpt_dir.iterdir():
            if p.is_dir() and (p.name.startswith(STAGING_PREFIX) or
                               (p.name.startswith(CHECKPOINT_PREFIX) and not (p / CHECKPOINT_MARKER).exists())):
                shutil.rmtree(p, ignore_errors=True)
                removed.append(p.name)
    return sorted(removed)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---------------------------------------------------------------- step log

@dataclass
class _Tracker:
    """Shared by the trainer subclass (sees the batches) and the log callback."""

    log_path: Path
    row_of_hash: dict[str, int]
    logging_steps: int = 1
    micro_rows: list[int] = field(default_factory=list)
    micro_tokens: int = 0
    micro_loss_tokens: int = 0
    micro_padded: int = 0
    step_t0: float | None = None
    pending: dict[str, Any] | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)  # this process's steps
    summary: dict[str, Any] = field(default_factory=dict)

    def see_batch(self, inputs: Mapping[str, Any]) -> None:
        ids = inputs["input_ids"].detach().cpu()
        mask = inputs.get("attention_mask")
        mask = mask.detach().cpu() if mask is not None else None
        labels = inputs.get("labels")
        for i in range(ids.shape[0]):
            row = ids[i] if mask is None else ids[i][mask[i].bool()]
            self.micro_rows.append(self.row_of_hash.get(example_hash(row.tolist()), -1))
        self.micro_tokens += int(mask.sum()) if mask is not None else int(ids.numel())
        self.micro_padded += int(ids.numel())
        if labels is not None:
            self.micro_loss_tokens += int((labels != -100).sum())

    def flush(self) -> None:
        if self.pending is None:
            return
        rec, self.pending = self.pending, None
        with open(self.log_path, "a") as fh:
            fh.write(json.dumps(rec) + "\n")
            fh.flush()
            os.fsync(fh.fileno())


def example_hash(input_ids: Sequence[int]) -> str:
    return hashlib.sha1(json.dumps(list(map(int, input_ids))).encode()).hexdigest()[:12]


def _make_callback(tracker: _Tracker):
    from transformers import TrainerCallback

    class StepLog(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            tracker.flush()
            tracker.step_t0 = time.perf_counter()
            tracker.micro_rows, tracker.micro_tokens = [], 0
            tracker.micro_loss_tokens, tracker.micro_padded = 0, 0

        def on_step_end(self, args, state, control, **kw):
            dt = time.perf_counter() - tracker.step_t0 if tracker.step_t0 else None
            rec = {"step": state.global_step, "epoch": round(state.epoch or 0.0, 4),
                   "rows": list(tracker.micro_rows), "tokens": tracker.micro_tokens,
                   "padded_tokens": tracker.micro_padded, "loss_tokens": tracker.micro_loss_tokens,
                   "seconds": round(dt, 4) if dt is not None else None, "time": time.time()}
            tracker.steps.append(rec)
            tracker.pending = rec

        def on_log(self, args, state, control, logs=None, **kw):
            logs = logs or {}
            if "loss" in logs and tracker.pending is not None and tracker.pending["step"] == state.global_step:
                for key, value in logs.items():
                    # DPO logs rewards/*, logps/*, logits/* next to the loss
                    if key in ("loss", "learning_rate", "grad_norm") or key.startswith("rewards/"):
                        if isinstance(value, (int, float)):
                            tracker.pending[key] = float(value)
                tracker.flush()
            elif "train_runtime" in logs or "train_loss" in logs:
                tracker.summary.update({k: v for k, v in logs.items() if isinstance(v, (int, float))})
            elif "eval_loss" in logs:
                tracker.summary.setdefault("evals", []).append(
                    {"step": state.global_step, **{k: v for k, v in logs.items() if isinstance(v, (int, float))}})

        def on_save(self, args, state, control, **kw):
            tracker.flush()

        def on_train_end(self, args, state, control, **kw):
            tracker.flush()

    return StepLog()


def _truncate_log(log_path: Path, upto_step: int) -> None:
    """Keep the lines of steps <= upto_step (a resumed run redoes the later ones)."""
    if not log_path.exists():
        return
    keep = []
    for line in log_path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= upto_step:
                keep.append(line)
        except (ValueError, KeyError, TypeError):
            continue  # a line cut by a kill
    tmp = log_path.with_suffix(".tmp")
    tmp.write_text("".join(line + "\n" for line in keep))
    os.replace(tmp, log_path)


def read_log(run: RunDir | Path) -> list[dict[str, Any]]:
    path = (run.path if isinstance(run, RunDir) else Path(run)) / LOG_NAME
    out = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
    return out


def complete_runs(stages: Sequence[str] = ("dpo", "finetune"), runs_dir: str | Path | None = None) -> list[Path]:
    """Complete training runs of these stages that hold an adapter, newest first (`RunDir.find_all`)."""
    return [r.path for r in RunDir.find_all(tuple(stages), require=ADAPTER_DIR, runs_dir=runs_dir)]


def prepare_run_folder(run: RunDir, resume: bool) -> tuple[Path, Path, str | None, list[str]]:
    """Checkpoint folder ready for a (re)start: (ckpt_dir, log_path, checkpoint to resume from,
    incomplete checkpoints removed). Without a checkpoint to resume, old ones and the log go."""
    ckpt_dir = run.path / "checkpoints"
    run.path.mkdir(parents=True, exist_ok=True)
    (run.path / "COMPLETE").unlink(missing_ok=True)
    removed = clean_incomplete(ckpt_dir)
    log_path = run.path / LOG_NAME
    last = latest_complete_checkpoint(ckpt_dir) if resume else None
    if last is not None:
        _truncate_log(log_path, _step_of(last))
    else:
        shutil.rmtree(ckpt_dir, ignore_errors=True)
        log_path.unlink(missing_ok=True)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    return ckpt_dir, log_path, str(last) if last else None, removed


def save_adapter(trainer, tokenizer, run: RunDir, drop: Sequence[str] = ()) -> Path:
    """The trained adapter + tokenizer as `<run>/adapter/`, written aside then renamed into place.
    `drop`: sub-folders the trainer saved that are not the result (DPO's frozen "ref" adapter)."""
    adapter_dir = run.path / ADAPTER_DIR
    tmp = run.path / f".{ADAPTER_DIR}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    trainer.save_model(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    for name in drop:
        shutil.rmtree(tmp / name, ignore_errors=True)
    shutil.rmtree(adapter_dir, ignore_errors=True)
    os.rename(tmp, adapter_dir)
    return adapter_dir


def steady_steps(tracker: _Tracker) -> list[dict[str, Any]]:
    """Timed steps of this process without its first (one-off costs: allocations, lazy init)."""
    timed = [s for s in tracker.steps if s.get("seconds")]
    return timed[1:] if len(timed) > 1 else timed


# ---------------------------------------------------------------- trainer

def _trainer_class(kind: str = "sft"):
    """TRL's SFTTrainer or DPOTrainer with atomic checkpoints and per-step batch logs."""
    if kind == "dpo":
        from trl import DPOTrainer as Base
    else:
        from trl import SFTTrainer as Base

    class LinernotesTrainer(Base):
        """A TRL trainer whose checkpoints appear atomically and whose batches are logged."""

        _tracker: _Tracker | None = None
        _staging_root: str | None = None
        _keep_checkpoints: int = 2

        def training_step(self, model, inputs, num_items_in_batch=None):
            if self._tracker is not None:
                self._tracker.see_batch(inputs)
            return super().training_step(model, inputs, num_items_in_batch)

        def _get_output_dir(self, trial):
            if self._staging_root is not None:
                return self._staging_root
            return super()._get_output_dir(trial)

        def _save_checkpoint(self, model, trial):
            root = Path(self.args.output_dir)
            name = f"{CHECKPOINT_PREFIX}{self.state.global_step}"
            staging = root / f"{STAGING_PREFIX}{self.state.global_step}-{os.getpid()}"
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
            self._staging_root = str(staging)
            try:
                super()._save_checkpoint(model, trial)  # writes staging/checkpoint-N
            finally:
                self._staging_root = None
            src, dst = staging / name, root / name
            (src / CHECKPOINT_MARKER).write_text(json.dumps(
                {"step": self.state.global_step, "time": time.strftime("%Y-%m-%dT%H:%M:%S")}))
            for f in src.iterdir():  # durable before it becomes visible
                if f.is_file():
                    with open(f, "rb") as fh:
                        os.fsync(fh.fileno())
            if dst.exists():  # a stale folder of the same step (e.g. from an earlier attempt)
                shutil.rmtree(dst)
            os.rename(src, dst)
            _fsync_dir(root)
            shutil.rmtree(staging, ignore_errors=True)
            self._rotate(root)

        def _rotate(self, root: Path) -> None:
            done = complete_checkpoints(root)
            if self._keep_checkpoints and self._keep_checkpoints > 0:
                for old in done[: -self._keep_checkpoints]:
                    (old / CHECKPOINT_MARKER).unlink(missing_ok=True)  # unmark first, then delete
                    shutil.rmtree(old, ignore_errors=True)

    return LinernotesTrainer


@dataclass
class Prepared:
    """Everything set up for a run; `trainer.train(resume_from_checkpoint=resume_from)` trains."""

    config: FinetuneConfig
    run: RunDir
    trainer: Any
    model: Any
    tokenizer: Any
    train: SFTData
    eval: SFTData | None
    base_model: str
    data_fingerprint: str
    resume_from: str | None
    removed_incomplete: list[str]
    tracker: _Tracker
    trainable_params: int
    total_params: int


def _split_eval(rows: list, fraction: float, seed: int) -> tuple[list, list]:
    if fraction <= 0 or len(rows) < 2:
        return rows, []
    idx = list(range(len(rows)))
    random.Random(seed).shuffle(idx)
    n_eval = max(1, int(round(len(rows) * fraction)))
    held = set(idx[:n_eval])
    return [r for i, r in enumerate(rows) if i not in held], [r for i, r in enumerate(rows) if i in held]


def run_dir_for(config: FinetuneConfig, train_rows: Sequence[Mapping[str, Any]]) -> RunDir:
    if config.run_name:
        return RunDir.for_config(config, STAGE)
    named = FinetuneConfig(**{**config.__dict__, "run_name":
                              f"{STAGE}-{config.fingerprint()}-{rows_fingerprint(train_rows)}"})
    return RunDir.for_config(named, STAGE)


def _load_peft_model(config: FinetuneConfig, base: str):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules=list(config.target_modules), bias="none", task_type="CAUSAL_LM")
    return get_peft_model(model, lora)


def _load_unsloth_model(config: FinetuneConfig, base: str):
    require_cuda_for_unsloth()
    from unsloth import FastLanguageModel  # GPU only; imported here and nowhere else

    model, _tok = FastLanguageModel.from_pretrained(model_name=base, max_seq_length=config.max_length,
                                                    dtype=None, load_in_4bit=config.load_in_4bit)
    return FastLanguageModel.get_peft_model(
        model, r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
        target_modules=list(config.target_modules), bias="none",
        use_gradient_checkpointing="unsloth", random_state=config.seed)


def prepare_training(config: FinetuneConfig, train_rows: Sequence[Mapping[str, Any]],
                     eval_rows: Sequence[Mapping[str, Any]] | None = None,
                     run: RunDir | None = None) -> Prepared:
    if config.backend == "unsloth":
        require_cuda_for_unsloth()  # before any data work, and before unsloth is imported
    from linernotes import paths

    paths.use_offline_hub()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    train_rows = list(train_rows)
    if eval_rows is None and config.eval_split > 0:
        train_rows, eval_rows = _split_eval(train_rows, config.eval_split, config.seed)
    eval_rows = list(eval_rows) if eval_rows else []
    run = run or run_dir_for(config, train_rows)
    if config.base_model:
        base = str(config.base_model)
    else:
        from linernotes.hfmodel import smollm2_hf_dir

        base = str(smollm2_hf_dir())

    if config.backend == "unsloth":
        model = _load_unsloth_model(config, base)  # unsloth first: it patches transformers/trl
    import torch
    from transformers import AutoTokenizer, set_seed
    from trl import SFTConfig

    if config.num_threads > 0:
        torch.set_num_threads(config.num_threads)
    set_seed(config.seed)
    tokenizer = AutoTokenizer.from_pretrained(base)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    train = build_sft_dataset(train_rows, tokenizer, config.max_length, config.assistant_only_loss)
    ev = build_sft_dataset(eval_rows, tokenizer, config.max_length, config.assistant_only_loss) \
        if eval_rows else None
    if config.backend == "peft":
        model = _load_peft_model(config, base)

    ckpt_dir, log_path, resume_from, removed = prepare_run_folder(run, config.resume)

    cuda = torch.cuda.is_available()
    bf16 = bool(cuda and torch.cuda.is_bf16_supported())
    args = SFTConfig(
        output_dir=str(ckpt_dir),
        seed=config.seed,
        data_seed=config.seed,
        learning_rate=config.lr,
        lr_scheduler_type=config.lr_scheduler,
        warmup_steps=config.warmup_steps,
        weight_decay=config.weight_decay,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.per_device_batch_size,
        per_device_eval_batch_size=config.per_device_batch_size,
        gradient_accumulation_steps=config.grad_accum,
        max_length=config.max_length,
        packing=config.packing,
        assistant_only_loss=False,  # labels are built in finetune.data (see its docstring)
        completion_only_loss=False,
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=None,  # rotation is done after a checkpoint is complete (_rotate)
        logging_strategy="steps",
        logging_steps=config.logging_steps,
        eval_strategy="steps" if ev is not None and len(ev.dataset) else "no",
        eval_steps=config.save_steps,
        use_cpu=not cuda,
        bf16=bf16,
        fp16=False,
        gradient_checkpointing=False,
        dataloader_num_workers=0,
        report_to=[],
        disable_tqdm=True,
        remove_unused_columns=True,
        dataset_num_proc=None,
    )
    row_of_hash: dict[str, int] = {}
    for i, ids in enumerate(train.dataset["input_ids"]):
        row_of_hash.setdefault(example_hash(ids), i)
    tracker = _Tracker(log_path=log_path, row_of_hash=row_of_hash, logging_steps=config.logging_steps)
    cls = _trainer_class()
    trainer = cls(model=model, args=args, train_dataset=train.dataset,
                  eval_dataset=ev.dataset if ev is not None and len(ev.dataset) else None,
                  processing_class=tokenizer, callbacks=[_make_callback(tracker)])
    trainer._tracker = tracker
    trainer._keep_checkpoints = config.save_total_limit
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return Prepared(config, run, trainer, model, tokenizer, train, ev, base,
                    rows_fingerprint(train_rows), resume_from, removed, tracker, trainable, total)


def train_sft(config: FinetuneConfig, train_rows: Sequence[Mapping[str, Any]],
              eval_rows: Sequence[Mapping[str, Any]] | None = None) -> RunDir:
    """Train a LoRA adapter; returns the run directory (adapter/, manifest.json, train_log.jsonl)."""
    if config.backend == "unsloth":
        require_cuda_for_unsloth()
    from finetune.data_mix import mix_general_rows

    train_rows = list(train_rows)
    if eval_rows is None and config.eval_split > 0:
        train_rows, eval_rows = _split_eval(train_rows, config.eval_split, config.seed)
    # General chat rows join the training side only, after the split: eval stays liner notes.
    train_rows, general_info = mix_general_rows(train_rows, config)
    probe = run_dir_for(config, train_rows)
    if probe.is_complete():
        return probe
    t0 = time.monotonic()
    load_before = _loadavg()
    prep = prepare_training(config, train_rows, eval_rows, run=probe)
    trainer, run, tracker = prep.trainer, prep.run, prep.tracker
    result = trainer.train(resume_from_checkpoint=prep.resume_from)

    save_adapter(trainer, prep.tokenizer, run)

    log = read_log(run)
    losses = [{"step": r["step"], "loss": r["loss"]} for r in log if "loss" in r]
    timed = [s for s in tracker.steps if s.get("seconds")]
    steady = steady_steps(tracker)
    step_s = sum(s["seconds"] for s in steady) / len(steady) if steady else None
    tok_s = (sum(s["tokens"] for s in steady) / sum(s["seconds"] for s in steady)) if steady else None
    padded_tok_s = (sum(s["padded_tokens"] for s in steady) / sum(s["seconds"] for s in steady)) \
        if steady else None

    manifest = base_manifest(STAGE, config, run)
    manifest["versions"] = package_versions(FT_VERSIONED)
    manifest.update({
        "backend": config.backend,
        "device": "cuda" if trainer.args.use_cpu is False and _cuda() else "cpu",
        "torch_threads": _torch_threads(),
        # step timings are only comparable on a quiet machine: other processes on the
        # same cores slow CPU training many-fold (1-minute load average before/after)
        "load_average": {"before": load_before, "after": _loadavg(), "cpus": os.cpu_count()},
        "base_model": prep.base_model,
        "data": {"fingerprint": prep.data_fingerprint, "train_rows": prep.train.n_rows,
                 "train_examples": prep.train.n_examples,
                 "dropped_too_long": prep.train.dropped_too_long, "dropped_invalid": prep.train.dropped_invalid,
                 "problems": prep.train.problems,
                 "general_mix": general_info,
                 "eval_examples": prep.eval.n_examples if prep.eval else 0},
        "params": {"trainable": prep.trainable_params, "total": prep.total_params},
        "global_step": int(trainer.state.global_step),
        "resumed_from": prep.resume_from,
        "removed_incomplete_checkpoints": prep.removed_incomplete,
        "steps_this_process": len(tracker.steps),
        "losses": losses,
        "first_loss": losses[0]["loss"] if losses else None,
        "final_loss": losses[-1]["loss"] if losses else None,
        "train_loss": float(result.training_loss) if result is not None else None,
        "evals": tracker.summary.get("evals", []),
        "step_seconds_mean": round(step_s, 4) if step_s else None,
        "first_step_seconds": timed[0]["seconds"] if timed else None,
        "tokens_per_second": round(tok_s, 1) if tok_s else None,
        "padded_tokens_per_second": round(padded_tok_s, 1) if padded_tok_s else None,
        "train_runtime_seconds": tracker.summary.get("train_runtime"),
        "wall_seconds": round(time.monotonic() - t0, 1),
        "adapter": ADAPTER_DIR,
        "checkpoints": [p.name for p in complete_checkpoints(run.path / "checkpoints")],
    })
    run.write_manifest(manifest)
    run.mark_complete()
    return run


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _loadavg() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


def main(argv: list[str] | None = None) -> int:
    from linernotes.config import add_dataclass_args, load_config, overrides_from_args

    ap = argparse.ArgumentParser(prog="python -m finetune.train", description=__doc__.split("\n")[0])
    ap.add_argument("--config", help="YAML recipe (e.g. recipes/finetune_cpu.yaml)")
    add_dataclass_args(ap, FinetuneConfig)
    args = ap.parse_args(argv)
    config = load_config(FinetuneConfig, args.config, overrides_from_args(args, FinetuneConfig))
    if config.backend == "unsloth":
        try:
            require_cuda_for_unsloth()
        except BackendUnavailable as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    if not config.train_data:
        ap.error("no training data: set train_data in the recipe or pass --train-data")
    train_rows = load_rows(config.train_data)
    eval_rows = load_rows(config.eval_data) if config.eval_data else None
    run = train_sft(config, train_rows, eval_rows)
    m = run.manifest()
    print(f"{run.path}: {m['global_step']} steps (resumed from {m['resumed_from']}), "
          f"loss {m['first_loss']} -> {m['final_loss']}, {m['step_seconds_mean']} s/step, "
          f"{m['tokens_per_second']} tokens/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
