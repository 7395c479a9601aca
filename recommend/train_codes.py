"""A short LoRA + code-token-rows SFT of SmolLM2 on the alignment tasks, on CPU.

    python -m recommend.train_codes --type music [--steps 30] [--variant codes|titles]

variant "codes": the code tokens are added (`recommend.code_tokens`), rows
initialised from the titles under each token, and trained with LoRA +
`trainable_token_indices` on the mix from `recommend.tasks.build_mix` (item ->
code, code -> title, codes/titles history -> next code, explain with codes).
variant "titles": plain LoRA on "history as titles -> next title" only, no new
tokens (the LLM-with-titles baseline).

The rows come from the leave-one-out split's train frame (`Split.train`), so
neither the validation nor the test item of any listener is in them; the
held-out pairs are dropped from the explain rows too. Sizing: at ~10-15 s per
step of 8 short rows on one shared CPU thread, the default 30 steps is a few
minutes; `steps x batch` rows are drawn from the tasks by `TASK_SHARE`.

Run layout, as `finetune.train` writes one (`RunDir`, manifest, COMPLETE):

    runs/recommend-<variant>-<type>-<config hash>/
        adapter/          LoRA + trainable token rows (adapter_model.safetensors) + tokenizer
                          (with the code tokens), written aside and renamed into place
        rows.jsonl        the training rows (task, messages), for inspection
        train_log.jsonl   one line per step: step, loss, lr, tokens, seconds
        manifest.json, COMPLETE

A finished run (COMPLETE) is returned as it is. The loss is on the answer
tokens only, and the LM head is applied only at those positions (on CPU the
49k-row head over every prompt position is a third of a step).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

from linernotes.runs import VERSIONED, RunDir, base_manifest, package_versions

STAGE = "recommend"
ADAPTER_DIR = "adapter"
LOG_NAME = "train_log.jsonl"
VARIANTS = ("codes", "titles")
# share of steps x batch rows per task (explain: every usable note, they are few)
TASK_SHARE = {"codes_to_next": 0.45, "titles_to_next": 0.15, "item_to_code": 0.25, "code_to_item": 0.15}


@dataclass
class CodeTrainConfig:
    item_type: str = "music"
    variant: str = "codes"
    steps: int = 30
    batch_size: int = 8
    lr: float = 1e-3
    warmup_steps: int = 3
    lora_r: int = 16
    lora_alpha: int = 32
    # LoRA on the top N layers only, the input embeddings detached: backward stops at the
    # lowest adapted layer (~2x faster on CPU); the tied code rows then learn through the
    # output head only. 0: every layer, rows trained from both sides.
    lora_top_layers: int = 8
    # the new rows start ~20 nats below the vocabulary's best logit; at the LoRA rate they
    # close that gap in hundreds of steps, at 10x in tens
    rows_lr_scale: float = 10.0
    max_length: int = 320
    init: str = "titles"
    seed: int = 0
    threads: int = 1
    runs_dir: str | None = None
    run_name: str | None = None

    def fingerprint(self) -> str:
        from linernotes.fingerprint import fingerprint

        return fingerprint(self, drop=("runs_dir", "run_name", "threads"))

    def check(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"variant {self.variant!r}: expected one of {VARIANTS}")
        if self.item_type not in ("music", "podcast", "book"):
            raise ValueError(f"item_type {self.item_type!r}: expected music, podcast or book")
        if self.steps < 1 or self.batch_size < 1:
            raise ValueError("steps and batch_size must be >= 1")


def run_dir_for(config: CodeTrainConfig) -> RunDir:
    base = Path(config.runs_dir) if config.runs_dir else None
    name = config.run_name or f"{STAGE}-{config.variant}-{config.item_type}-{config.fingerprint()}"
    if base is None:
        from linernotes import paths

        base = paths.runs_dir()
    return RunDir(base / name)


def task_limits(config: CodeTrainConfig) -> dict[str, int]:
    budget = config.steps * config.batch_size
    return {task: max(1, int(round(budget * share))) for task, share in TASK_SHARE.items()}


def load_notes(item_type: str) -> list[dict[str, Any]]:
    """Curated liner notes of this type that passed every gate (listener_id, item_id, explanation),
    from the newest complete curate run; none is fine (the explain task is then empty)."""
    try:
        run = RunDir.find("curate")
    except (FileNotFoundError, LookupError, ValueError):
        return []
    if run is None:
        return []
    import pandas as pd

    files = sorted((run.path / "data").glob("train-*.parquet"))
    if not files:
        return []
    df = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    keep = df["item_type"] == item_type
    if "passed_all" in df:
        keep &= df["passed_all"].fillna(False).astype(bool)
    if "kept" in df:
        keep &= df["kept"].fillna(True).astype(bool)
    cols = [c for c in ("listener_id", "item_id", "explanation") if c in df]
    return df.loc[keep, cols].to_dict("records")


def build_rows(config: CodeTrainConfig, split, items: Sequence[dict], table) -> list[dict[str, Any]]:
    from recommend.tasks import TITLE_TASKS, build_mix

    held = {(lid, iid) for frame in (split.valid, split.test)
            for lid, iid in zip(frame["listener_id"], frame["item_id"])}
    if config.variant == "titles":
        return build_mix(item_type=config.item_type, items=items, fit_frame=split.train, table=None,
                         tasks=TITLE_TASKS, limits={"titles_to_title": config.steps * config.batch_size},
                         seed=config.seed)
    return build_mix(item_type=config.item_type, items=items, fit_frame=split.train, table=table,
                     notes=load_notes(config.item_type), held_out=held, limits=task_limits(config),
                     seed=config.seed)


# ---------------------------------------------------------------- training loop

def _batches(lengths: Sequence[int], batch_size: int, steps: int, seed: int) -> list[list[int]]:
    """`steps` batches of example indices, epoch after epoch: each epoch a seeded shuffle,
    sorted by length within windows of 4 batches (less padding), the batches shuffled."""
    rng = random.Random(seed)
    out: list[list[int]] = []
    while len(out) < steps:
        order = list(range(len(lengths)))
        rng.shuffle(order)
        window = 4 * batch_size
        epoch = []
        for start in range(0, len(order), window):
            chunk = sorted(order[start:start + window], key=lambda i: lengths[i])
            epoch.extend(chunk[j:j + batch_size] for j in range(0, len(chunk), batch_size))
        rng.shuffle(epoch)
        out.extend(epoch)
    return out[:steps]


def answer_only_loss(peft_model, input_ids, attention_mask, labels, detach_inputs: bool = False):
    """Mean cross-entropy over the answer tokens, the head applied at those positions only."""
    import torch

    base = peft_model.get_base_model()
    if detach_inputs:
        embeds = base.get_input_embeddings()(input_ids).detach()
        hidden = base.model(inputs_embeds=embeds, attention_mask=attention_mask).last_hidden_state
    else:
        hidden = base.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    shift_labels = labels[:, 1:]
    pos = shift_labels != -100
    logits = base.lm_head(hidden[:, :-1][pos])
    return torch.nn.functional.cross_entropy(logits.float(), shift_labels[pos])


def train(config: CodeTrainConfig, rows: list[dict[str, Any]], *, model=None, tokenizer=None,
          table=None, items: Sequence[dict] | None = None, run: RunDir | None = None,
          log=print) -> RunDir:
    """Train on `rows` and write the run. `model`/`tokenizer` default to the packaged SmolLM2;
    for variant "codes" `table` (and `items`, for the title-based row init) are needed."""
    import torch

    from linernotes.chat_tokens import tokenize_example
    from recommend.code_tokens import add_code_tokens, code_lora_model, titles_by_code_token

    config.check()
    run = run or run_dir_for(config)
    if run.is_complete():
        return run
    torch.set_num_threads(max(1, config.threads))
    torch.manual_seed(config.seed)
    if model is None or tokenizer is None:
        model, tokenizer = load_base()
    t_start = time.monotonic()
    token_report = None
    layers = _top_layers(model, config.lora_top_layers)
    if config.variant == "codes":
        if table is None:
            raise ValueError("variant 'codes' needs the semantic-ID table")
        titles = {}
        if items is not None and config.init == "titles":
            codes = {str(it["item_id"]): table.code_of(str(it["item_id"])) for it in items}
            titles = titles_by_code_token(codes, {str(it["item_id"]): it.get("title") for it in items},
                                          seed=config.seed)
        token_report = add_code_tokens(tokenizer, model, table.token_vocab(), init=config.init,
                                       titles_by_token=titles, seed=config.seed)
        peft_model = code_lora_model(model, token_report.ids, r=config.lora_r, alpha=config.lora_alpha,
                                     layers=layers)
    else:
        from peft import LoraConfig, get_peft_model

        from recommend.code_tokens import DEFAULT_TARGET_MODULES

        peft_model = get_peft_model(model, LoraConfig(
            r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=0.0, bias="none",
            target_modules=list(DEFAULT_TARGET_MODULES), task_type="CAUSAL_LM",
            layers_to_transform=layers))

    examples, dropped = [], 0
    for row in rows:
        ex = tokenize_example(row["messages"], tokenizer, assistant_only_loss=True)
        if len(ex["input_ids"]) > config.max_length:
            dropped += 1
            continue
        examples.append(ex)
    if not examples:
        raise ValueError(f"no training example fits max_length={config.max_length} ({dropped} too long)")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    named = [(n, p) for n, p in peft_model.named_parameters() if p.requires_grad]
    params = [p for _, p in named]
    row_params = [p for n, p in named if "trainable_tokens" in n]
    others = [p for n, p in named if "trainable_tokens" not in n]
    groups = [{"params": others, "scale": 1.0}]
    if row_params:
        groups.append({"params": row_params, "scale": config.rows_lr_scale})
    opt = torch.optim.AdamW(groups, lr=config.lr, weight_decay=0.0)

    def lr_at(step: int) -> float:  # linear warmup, cosine decay to 10%
        if step < config.warmup_steps:
            return config.lr * (step + 1) / config.warmup_steps
        frac = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
        return config.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))

    run.path.mkdir(parents=True, exist_ok=True)
    (run.path / "COMPLETE").unlink(missing_ok=True)
    log_path = run.path / LOG_NAME
    log_path.unlink(missing_ok=True)
    with open(run.path / "rows.jsonl", "w") as fh:
        for row in rows:
            fh.write(json.dumps({"task": row["task"], "messages": row["messages"]}, ensure_ascii=False) + "\n")
    peft_model.train()
    losses = []
    t_train = time.monotonic()
    lengths = [len(e["input_ids"]) for e in examples]
    for step, idx in enumerate(_batches(lengths, config.batch_size, config.steps, config.seed)):
        t0 = time.monotonic()
        batch = [examples[i] for i in idx]
        width = max(len(e["input_ids"]) for e in batch)
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        labels = torch.full((len(batch), width), -100, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for r, e in enumerate(batch):
            n = len(e["input_ids"])
            ids[r, :n] = torch.tensor(e["input_ids"])
            labels[r, :n] = torch.tensor(e["labels"])
            mask[r, :n] = 1
        for group in opt.param_groups:
            group["lr"] = lr_at(step) * group["scale"]
        loss = answer_only_loss(peft_model, ids, mask, labels, detach_inputs=layers is not None)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        rec = {"step": step + 1, "loss": round(float(loss.detach()), 4), "lr": lr_at(step),
               "tokens": int(mask.sum()), "seconds": round(time.monotonic() - t0, 2)}
        losses.append(rec["loss"])
        with open(log_path, "a") as fh:
            fh.write(json.dumps(rec) + "\n")
        log(f"step {rec['step']}/{config.steps} loss {rec['loss']:.3f} ({rec['seconds']}s)")
    train_s = time.monotonic() - t_train

    adapter = run.path / ADAPTER_DIR
    tmp = run.path / f".{ADAPTER_DIR}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    peft_model.save_pretrained(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    shutil.rmtree(adapter, ignore_errors=True)
    os.rename(tmp, adapter)

    from recommend.tasks import task_counts

    manifest = base_manifest(STAGE, config, run)
    manifest["versions"] = package_versions((*VERSIONED, "peft", "safetensors"))
    manifest.update({
        "variant": config.variant, "item_type": config.item_type,
        "table_version": getattr(table, "version", None),
        "code_tokens": token_report.summary() if token_report else None,
        "rows": len(rows), "examples": len(examples), "dropped_too_long": dropped,
        "tasks": task_counts(rows),
        "params": {"trainable": sum(p.numel() for p in params),
                   "total": sum(p.numel() for p in peft_model.parameters())},
        "lora_layers": layers if layers is not None else "all", "steps": config.steps, "losses": losses,
        "first_loss": losses[0], "final_loss": losses[-1],
        "train_seconds": round(train_s, 1), "wall_seconds": round(time.monotonic() - t_start, 1),
        "load_average": _loadavg(), "adapter": ADAPTER_DIR,
    })
    run.write_manifest(manifest)
    run.mark_complete()
    return run


def _top_layers(model, n: int) -> list[int] | None:
    """Indices of the top `n` decoder layers (None: all)."""
    total = int(model.config.num_hidden_layers)
    if n <= 0 or n >= total:
        return None
    return list(range(total - n, total))


def _loadavg() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def load_base():
    """The packaged SmolLM2 (float32, for CPU training) and its tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from linernotes import paths
    from linernotes.hfmodel import smollm2_hf_dir

    paths.use_offline_hub()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    folder = smollm2_hf_dir()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32), tokenizer


def load_catalog(item_type: str):
    """(split, items as dicts, table or None) for one catalog."""
    from recommend.evaluate import build_split
    from recommend.item_vectors import load_items

    split = build_split(item_type)
    items = load_items(item_type).to_dict("records")
    return split, items


def load_code_table(item_type: str):
    try:
        from recommend.semantic_ids import load_table
    except ImportError as exc:
        raise SystemExit(f"recommend.semantic_ids is not available ({exc}); build the codes first") from exc
    return load_table(item_type)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m recommend.train_codes", description=__doc__.split("\n")[0])
    ap.add_argument("--type", dest="item_type", default="music", choices=("music", "podcast", "book"))
    ap.add_argument("--variant", default="codes", choices=VARIANTS)
    for name, default in asdict(CodeTrainConfig()).items():
        if name in ("item_type", "variant", "runs_dir", "run_name"):
            continue
        ap.add_argument(f"--{name.replace('_', '-')}", dest=name, type=type(default), default=default)
    ap.add_argument("--run-name", default=None)
    args = ap.parse_args(argv)
    config = CodeTrainConfig(**{k: v for k, v in vars(args).items() if k in CodeTrainConfig.__dataclass_fields__})
    config.check()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    split, items = load_catalog(config.item_type)
    table = load_code_table(config.item_type) if config.variant == "codes" else None
    rows = build_rows(config, split, items, table)
    from recommend.tasks import task_counts

    print(f"{config.item_type}/{config.variant}: {len(rows)} rows {task_counts(rows)}", flush=True)
    run = train(config, rows, table=table, items=items, log=lambda s: print(s, flush=True))
    m = run.manifest()
    print(f"{run.path}: {m['steps']} steps, loss {m['first_loss']} -> {m['final_loss']}, "
          f"train {m['train_seconds']}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
