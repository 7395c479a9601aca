"""`linernotes finetune|dpo|eval|export`: stage 3 from the command line.

    linernotes finetune [--config recipes/finetune_cpu.yaml] [--train-data runs/publish-X] [--max-steps N]
    linernotes dpo      [--config recipes/dpo_cpu.yaml] [--sft-run runs/finetune-X] [--preference-data ...]
    linernotes eval     [--run runs/finetune-X] [--n-per-type 4] [--mmlu-n 100]
    linernotes export   --run runs/finetune-X | --base [--types Q8_0 Q4_0] [--no-gate] ...

Defaults chain the stages (newest = `RunDir.find`: newest complete run by
manifest time): training data = the newest published dataset (runs/publish-*
with data/sft), DPO starts from the newest finetune run, eval and export take
the newest DPO run, else the newest finetune run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from linernotes import paths
from linernotes.config import add_dataclass_args, load_config, overrides_from_args

FINETUNE_RECIPE = paths.REPO_ROOT / "recipes" / "finetune_cpu.yaml"
DPO_RECIPE = paths.REPO_ROOT / "recipes" / "dpo_cpu.yaml"


def _published(table: str, runs_dir: str | None) -> Path | None:
    """The newest complete publish run holding `data/<table>` (RunDir.find's one rule)."""
    from linernotes.runs import RunDir

    run = RunDir.find("publish", require=f"data/{table}", runs_dir=runs_dir)
    return run.path if run else None


def cmd_finetune(args: argparse.Namespace) -> int:
    from finetune.config import FinetuneConfig
    from finetune.data import load_rows
    from finetune.train import BackendUnavailable, train_sft

    config = load_config(FinetuneConfig, args.config or FINETUNE_RECIPE, overrides_from_args(args, FinetuneConfig))
    data = config.train_data or _published("sft", config.runs_dir)
    if not data:
        raise ValueError("config field 'train_data': none given and no published dataset under runs/ "
                         "(run `linernotes publish` or pass --train-data)")
    config.train_data = str(data)
    rows = load_rows(data)
    try:
        run = train_sft(config, rows, load_rows(config.eval_data) if config.eval_data else None)
    except BackendUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    m = run.manifest()
    print(f"{run.path}: {m['global_step']} steps on {m['data']['train_examples']} examples "
          f"(from {data}), loss {m['first_loss']:.3f} -> {m['final_loss']:.3f}, "
          f"{m['step_seconds_mean']} s/step, {m['tokens_per_second']} tokens/s")
    return 0


def cmd_dpo(args: argparse.Namespace) -> int:
    from finetune.config import DPOStageConfig
    from finetune.dpo import load_preferences, train_dpo

    config = load_config(DPOStageConfig, args.config or DPO_RECIPE, overrides_from_args(args, DPOStageConfig))
    data = config.preference_data or _published("preferences", config.runs_dir)
    if not data:
        raise ValueError("config field 'preference_data': none given and no published dataset with "
                         "preferences under runs/ (run `linernotes publish` or pass --preference-data)")
    config.preference_data = str(data)
    run = train_dpo(config, load_preferences(data))
    m = run.manifest()
    last = m["losses"][-1] if m["losses"] else {}
    print(f"{run.path}: {m['global_step']} DPO steps on {m['data']['pairs']} pairs "
          f"({m['data']['quarantined']} quarantined), loss {m['first_loss']:.3f} -> {m['final_loss']:.3f}, "
          f"reward accuracy {last.get('rewards/accuracies')}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from finetune.config import EvalConfig
    from finetune.evaluate import evaluate

    config = load_config(EvalConfig, args.config, overrides_from_args(args, EvalConfig))
    out = evaluate(config, force=args.force)
    print((out / "report.md").read_text())
    print(f"report: {out / 'report.md'}, figures: {out / 'report.html'}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from finetune.export import run_from_args

    return run_from_args(args, args.parser)


def add_parsers(sub) -> None:
    """Register the stage-3 commands on the top-level subparsers."""
    from finetune.config import DPOStageConfig, EvalConfig, FinetuneConfig

    p = sub.add_parser("finetune", help="LoRA SFT of the student on a published dataset (PEFT+TRL / Unsloth)")
    p.add_argument("--config", default=None, help=f"YAML recipe (default {FINETUNE_RECIPE.name}; flags override)")
    add_dataclass_args(p, FinetuneConfig)
    p.set_defaults(fn=cmd_finetune)

    p = sub.add_parser("dpo", help="DPO of the SFT adapter on the preference pairs")
    p.add_argument("--config", default=None, help=f"YAML recipe (default {DPO_RECIPE.name}; flags override)")
    add_dataclass_args(p, DPOStageConfig)
    p.set_defaults(fn=cmd_dpo)

    p = sub.add_parser("eval", help="report card: base vs tuned on held-out pairs + MMLU guardrail")
    p.add_argument("--config", default=None, help="YAML recipe (flags override)")
    p.add_argument("--force", action="store_true", help="redo a completed report")
    add_dataclass_args(p, EvalConfig)
    p.set_defaults(fn=cmd_eval)

    from finetune.export import add_arguments as add_export_arguments

    p = sub.add_parser("export", help="merge the adapter, write GGUF (Q8_0 + 4-bit), export gate, model card")
    add_export_arguments(p)
    p.set_defaults(fn=cmd_export, parser=p)
