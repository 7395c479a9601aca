"""Seconds/step and tokens/s of the studio's CPU training path vs a plain TRL script.

Both train the same LoRA (rank, alpha, targets) on the same packaged
SmolLM2-135M base, the same rows, batch size, max length, learning rate and
torch threads, in this one process, one after the other:

  plain    a plain TRL script: `SFTTrainer(model, args=SFTConfig(...),
           train_dataset=<messages rows>, peft_config=LoraConfig(...))`, TRL
           tokenizes with the chat template itself (loss on every token)
  studio   `finetune.train.train_sft` (assistant-only labels, per-step batch
           log, atomic checkpoints every --save-steps, manifest)

Each runs --steps optimizer steps; the first step of each is discarded (lazy
init, allocator warm-up) and the rest timed by a step callback. Tokens are the
non-padding tokens of the batches. Ratio = studio / plain (tokens/s; > 1 means
the studio path is faster). Rows default to the newest published dataset
(runs/publish-*), else synthetic rows of a similar length.

    .venv/bin/python bench/finetune_step.py [--steps 8] [--batch 2] [--max-length 512] [--threads 2]

Only meaningful on a quiet machine: the 1-minute load average is printed before
and after; another busy process on these 2 cores slows CPU training many-fold.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from linernotes import paths  # noqa: E402

paths.use_offline_hub()


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--max-length", type=int, default=512)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    ap.add_argument("--lora-r", type=int, default=16)
    ap.add_argument("--save-steps", type=int, default=4, help="studio checkpoints (part of its cost)")
    ap.add_argument("--data", default=None, help="SFT rows (.jsonl/.parquet/published folder)")
    return ap.parse_args(argv)


def load_rows(path: str | None) -> tuple[list[dict], str]:
    from finetune.cli import newest_publish
    from finetune.data import load_rows as load

    path = path or newest_publish()
    if path:
        return load(path), str(path)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from test_finetune import _rows

    return _rows(32), "synthetic rows (tests/test_finetune.py)"


def _timer():
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.seconds, self.t0 = [], None

        def on_step_begin(self, args, state, control, **kw):
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            self.seconds.append(time.perf_counter() - self.t0)

    return StepTimer()


def plain_trl(rows, args, base: str) -> dict:
    """The baseline: what a plain TRL + PEFT script does with the same rows and settings."""
    import datasets
    import torch
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from finetune.config import ALL_PROJECTIONS

    tok = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    ds = datasets.Dataset.from_list([{"messages": r["messages"]} for r in rows])
    timer = _timer()
    with tempfile.TemporaryDirectory() as out:
        cfg = SFTConfig(output_dir=out, max_steps=args.steps, per_device_train_batch_size=args.batch,
                        max_length=args.max_length, learning_rate=2e-4, use_cpu=True, bf16=False,
                        report_to=[], save_strategy="no", logging_steps=1, disable_tqdm=True,
                        gradient_checkpointing=False, seed=17, data_seed=17)
        trainer = SFTTrainer(model=model, args=cfg, train_dataset=ds, processing_class=tok,
                             peft_config=LoraConfig(r=args.lora_r, lora_alpha=2 * args.lora_r, lora_dropout=0.05,
                                                    target_modules=list(ALL_PROJECTIONS), task_type="CAUSAL_LM"),
                             callbacks=[timer])
        tokens = []
        orig = trainer.training_step

        def counted(model, inputs, num_items_in_batch=None):
            mask = inputs.get("attention_mask")
            tokens.append(int(mask.sum()) if mask is not None else int(inputs["input_ids"].numel()))
            return orig(model, inputs, num_items_in_batch)

        trainer.training_step = counted
        trainer.train()
    return _stats(timer.seconds, tokens)


def studio(rows, args) -> dict:
    from finetune.config import FinetuneConfig
    from finetune.train import train_sft

    with tempfile.TemporaryDirectory() as out:
        cfg = FinetuneConfig(runs_dir=out, max_steps=args.steps, per_device_batch_size=args.batch,
                             max_length=args.max_length, lr=2e-4, lora_r=args.lora_r, lora_alpha=2 * args.lora_r,
                             save_steps=args.save_steps, num_threads=args.threads)
        run = train_sft(cfg, rows)
        from finetune.train import read_log

        log = read_log(run)
    return _stats([r["seconds"] for r in log], [r["tokens"] for r in log])


def _stats(seconds: list[float], tokens: list[int]) -> dict:
    s, t = seconds[1:], tokens[1: len(seconds)]
    return {"steps": len(s), "s_per_step": statistics.mean(s), "s_per_step_median": statistics.median(s),
            "tokens_per_s": sum(t) / sum(s), "tokens_per_step": statistics.mean(t)}


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch
    from rich.console import Console
    from rich.table import Table

    from linernotes.hfmodel import smollm2_hf_dir

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    rows, source = load_rows(args.data)
    base = str(smollm2_hf_dir())
    load0 = os.getloadavg()[0]
    console = Console()
    console.print(f"rows: {len(rows)} from {source}; {args.steps} steps x batch {args.batch}, "
                  f"max_length {args.max_length}, LoRA r={args.lora_r}, torch threads {torch.get_num_threads()}, "
                  f"load average {load0:.2f}")
    results = {"plain TRL (baseline)": plain_trl(rows, args, base), "studio train_sft": studio(rows, args)}
    table = Table(title="LoRA SFT step cost on CPU (first step of each excluded)")
    for col in ("path", "steps", "s/step (mean)", "s/step (median)", "tokens/step", "tokens/s"):
        table.add_column(col, justify="right")
    for name, r in results.items():
        table.add_row(name, str(r["steps"]), f"{r['s_per_step']:.2f}", f"{r['s_per_step_median']:.2f}",
                      f"{r['tokens_per_step']:.0f}", f"{r['tokens_per_s']:.1f}")
    console.print(table)
    b, s = results["plain TRL (baseline)"], results["studio train_sft"]
    console.print(f"ratio studio / plain TRL: tokens/s x{s['tokens_per_s'] / b['tokens_per_s']:.2f}, "
                  f"s/step x{s['s_per_step'] / b['s_per_step']:.2f}; "
                  f"load average {load0:.2f} -> {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
