"""Model card (README.md) for an export folder: what the model is, what it was trained on, how
it scored, how the GGUF files were checked, and what it may be used for.

`model_card(export_dir, finetune_manifest, eval_report_md, gate_report, lineage) -> str`:
YAML front matter (licence, base model, datasets, tags) then sections: data lineage, training
config, eval card (the eval stage's report.md embedded as is), MMLU guardrail delta (from the
eval stage's report.json "mmlu" entry), export files + gate agreement, intended use,
limitations, licence.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import yaml

BASE_MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
LICENSE = "apache-2.0"  # SmolLM2's licence; the fine-tune inherits it
_TRAINING_KEYS = ("backend", "lora_r", "lora_alpha", "lora_dropout", "target_modules", "lr", "lr_scheduler",
                  "warmup_steps", "epochs", "max_steps", "per_device_batch_size", "grad_accum", "max_length",
                  "assistant_only_loss", "seed")


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(str(x) for x in v)
    return str(v)


def _mb(n: Any) -> str:
    return f"{n / 1e6:.1f} MB" if isinstance(n, (int, float)) else "-"


def _datasets(lineage: Mapping[str, Any]) -> list[str]:
    out = []
    for key in ("train_data", "eval_data"):
        if lineage.get(key):
            out.append(str(lineage[key]))
    return out


def _label_source(lin: Mapping[str, Any]) -> dict[str, int] | None:
    """Who labeled the training data: the lineage's own `label_source`, else the label runs in
    the upstream lineage (the published folder's card carries them; curation.label_provenance)."""
    from curation import label_provenance as prov

    if isinstance(lin.get("label_source"), Mapping):
        return dict(lin["label_source"])
    runs = [r for up in (lin.get("upstream") or []) if isinstance(up, Mapping) for r in (up.get("runs") or [])]
    return prov.from_lineage(runs)


def _mmlu_section(eval_json: Mapping[str, Any] | None) -> list[str]:
    lines = ["## MMLU guardrail", ""]
    mmlu = (eval_json or {}).get("mmlu") if isinstance(eval_json, Mapping) else None
    if not isinstance(mmlu, Mapping):
        return lines + ["No MMLU comparison was recorded for this run (`<run>/eval/report.json` has no "
                        "`mmlu` entry). Run the eval stage before exporting to fill this in.", ""]
    before = mmlu.get("before", mmlu.get("base"))
    after = mmlu.get("after", mmlu.get("tuned"))
    acc_b = before.get("accuracy") if isinstance(before, Mapping) else before
    acc_a = after.get("accuracy") if isinstance(after, Mapping) else after
    delta = mmlu.get("delta")
    if delta is None and isinstance(acc_b, (int, float)) and isinstance(acc_a, (int, float)):
        delta = acc_a - acc_b
    ci = mmlu.get("ci95", mmlu.get("delta_ci95"))
    n = mmlu.get("n", mmlu.get("n_questions"))
    lines += ["General knowledge must not collapse while the model learns the task: log-likelihood "
              "MMLU accuracy on a seeded, subject-stratified subset, before and after fine-tuning.", "",
              "| | accuracy |", "|---|---|",
              f"| base | {_fmt(acc_b)} |", f"| fine-tuned | {_fmt(acc_a)} |",
              f"| delta | {_fmt(delta)}{f' (95% CI {_fmt(ci)})' if ci is not None else ''} |", ""]
    if n is not None:
        lines += [f"Questions: {n}.", ""]
    lines += _other_guardrails(eval_json)
    extra = {k: v for k, v in mmlu.items() if k not in ("before", "after", "base", "tuned", "delta", "ci95",
                                                       "delta_ci95", "n", "n_questions")}
    if extra:
        lines += ["<details><summary>More</summary>", "", "```json",
                  json.dumps(extra, indent=1, ensure_ascii=False, default=str), "```", "</details>", ""]
    return lines


def _other_guardrails(eval_json: Mapping[str, Any]) -> list[str]:
    """The report's headline verdict and the HellaSwag / ARC / PIQA deltas, when it has them."""
    lines: list[str] = []
    head = eval_json.get("headline")
    if isinstance(head, Mapping) and head.get("verdict"):
        lines += [f"Report-card headline: {head['verdict']}", ""]
    tasks = eval_json.get("guardrail")
    if isinstance(tasks, Mapping) and tasks:
        lines += ["| task | n | base | fine-tuned | delta (95% CI) | within CI of 0 |", "|---|---|---|---|---|---|"]
        for task, g in tasks.items():
            if isinstance(g, Mapping):
                lines.append(f"| {task} | {g.get('n')} | {_fmt(g.get('before'))} | {_fmt(g.get('after'))} | "
                             f"{_fmt(g.get('delta'))} ({_fmt(g.get('ci95'))}) | "
                             f"{'yes' if g.get('within_ci_of_0') else 'no'} |")
        lines.append("")
    return lines


def _gate_section(gate_report: Mapping[str, Any] | None, files: Mapping[str, Any]) -> list[str]:
    lines = ["## Export", "",
             "GGUF files for llama.cpp, written by llama.cpp's own `convert_hf_to_gguf.py` (Q8_0) and by the "
             "`gguf` package's Python quantizer from the converter's lossless bfloat16 file (4-bit; the tied "
             "embedding/output matrix stays Q8_0, norms F32).", "",
             "| file | type | size | sha256 |", "|---|---|---|---|"]
    for name, info in files.items():
        lines.append(f"| `{name}` | {info.get('type', '-')} | {_mb(info.get('bytes'))} | "
                     f"`{str(info.get('sha256', '-'))[:16]}...` |")
    lines.append("")
    lines += ["### Export gate", ""]
    if not gate_report:
        return lines + ["The gate was not run for this export.", ""]
    lines += ["Each GGUF was loaded in llama.cpp's server and the golden prompts (plus short stop probes) were "
              "replayed through the GGUF's embedded chat template and through the merged HF model, greedy. "
              "Checked: the prompt tokens are identical; teacher-forced next-token agreement along HF's "
              "greedy output is at least the stated share (and for 8-bit and up, every disagreement is a "
              "near-tie); generation stops at end-of-turn with no chat markers in the text.", "",
              "| type | passed | agreement (min) | template match | free-run exact | EOS where HF stopped |"
              " largest flip gap |",
              "|---|---|---|---|---|---|---|"]
    for qtype, r in gate_report.items():
        lines.append(f"| {qtype} | {'yes' if r.get('passed') else 'NO'} | {_fmt(r.get('agreement'))} "
                     f"({_fmt(r.get('min_agreement'))}) | {r.get('template_matches')}/{r.get('n_prompts')} | "
                     f"{r.get('exact_matches')}/{r.get('n_prompts')} | {r.get('eos_agreed')}/{r.get('hf_stopped')} | "
                     f"{_fmt(r.get('max_divergence_margin'))} |")
    any_r = next(iter(gate_report.values()))
    lines += ["", f"{any_r.get('n_prompts')} prompts, up to {any_r.get('max_new_tokens')} new tokens each. "
              "Free-running greedy text is reported, not gated: a single near-tie flip changes the rest of a "
              "free run.", ""]
    return lines


def model_card(export_dir: str | Path, finetune_manifest: Mapping[str, Any] | None,
               eval_report_md: str | None, gate_report: Mapping[str, Any] | None,
               lineage: Mapping[str, Any] | None, *, export_manifest: Mapping[str, Any] | None = None,
               eval_json: Mapping[str, Any] | None = None) -> str:
    """README.md text for an export folder. gate_report: {type: GateReport.to_dict()}; eval_json:
    the eval stage's report.json (its "mmlu" entry fills the guardrail section); both may be None."""
    export_dir = Path(export_dir)
    ft = dict(finetune_manifest or {})
    lin = dict(lineage or {})
    em = dict(export_manifest or {})
    if not em and (export_dir / "manifest.json").exists():
        em = json.loads((export_dir / "manifest.json").read_text())
    files = em.get("files") or {p.name: {"bytes": p.stat().st_size} for p in sorted(export_dir.glob("*.gguf"))}
    tuned = bool(ft)
    from curation import label_provenance as prov

    labeled_by = _label_source(lin) if tuned else None
    label = export_dir.parent.name if tuned else export_dir.name  # tuned: <run>/export
    name = f"linernotes SmolLM2-135M {'liner-notes LoRA' if tuned else 'base'} ({label})"

    front = {
        "license": LICENSE,
        "base_model": BASE_MODEL_ID,
        "base_model_relation": "finetune" if tuned else "quantized",
        "language": ["en"],
        "library_name": "transformers",
        "pipeline_tag": "text-generation",
        "tags": ["gguf", "llama.cpp", *(["lora"] if tuned else []), "recommendation", "explanations",
                 "linernotes", *(prov.tags(labeled_by) if tuned else [])],
    }
    data = _datasets(lin)
    if data:
        front["datasets"] = data
    lines = ["---", yaml.safe_dump(front, sort_keys=False, allow_unicode=True).rstrip(), "---", "",
             f"# {name}", "",
             "A small Llama (SmolLM2-135M-Instruct) "
             + ("fine-tuned with LoRA to write one-sentence, grounded explanations of music / audiobook / "
                "podcast recommendations (\"liner notes\") from catalog facts and listener context, answering "
                "in JSON `{\"explanation\", \"facts_used\"}`."
                if tuned else "exported as is (no adapter): the reference point for the fine-tuned exports."),
             "", "## Files", "",
             f"- `merged/`: Hugging Face safetensors ({'base + adapter merged' if tuned else 'the base model'}), "
             "tokenizer and ChatML chat template",
             *[f"- `{n}`: GGUF {i.get('type', '')} ({_mb(i.get('bytes'))})" for n, i in files.items()]]
    ad = em.get("adapter_gguf")
    if isinstance(ad, Mapping) and "bytes" in ad:
        lines.append(f"- `adapter.gguf`: the LoRA adapter for llama.cpp's `--lora` on the base GGUF "
                     f"({_mb(ad['bytes'])})")
    lines += ["", "```bash", "# llama.cpp (xllamacpp) server, OpenAI-compatible",
              f"python -m linernotes.services.llamacpp --model {export_dir}/{next(iter(files), 'model-Q8_0.gguf')} "
              "--port 8080", "```", ""]

    # data lineage
    lines += ["## Data lineage", ""]
    counts = f"{_fmt(lin.get('train_rows'))} / {_fmt(lin.get('train_examples'))}" \
        if tuned and lin.get("train_rows") is not None else None
    rows = [("base model", lin.get("base_model")), ("fine-tuning run", lin.get("finetune_run")),
            ("stage", lin.get("stage")), ("started from SFT run", lin.get("sft_run")),
            ("run created", lin.get("finetune_created")),
            ("config fingerprint", lin.get("finetune_config_fingerprint")),
            ("training data", lin.get("train_data")), ("eval data", lin.get("eval_data")),
            ("data fingerprint", lin.get("data_fingerprint")), ("training rows / examples", counts),
            ("preference pairs", lin.get("preference_pairs"))]
    lines += ["| | |", "|---|---|"] + [f"| {k} | {_fmt(v)} |" for k, v in rows if v is not None] + [""]
    for up in lin.get("upstream") or []:
        runs = up.get("runs") or []
        lines += [f"Upstream runs (from `{up.get('source')}`):", "",
                  "| run | stage | created | config fingerprint |", "|---|---|---|---|"]
        lines += [f"| {r.get('run', '-')} | {r.get('stage') or '-'} | {r.get('created') or '-'} | "
                  f"{r.get('config_fingerprint') or '-'} |" for r in runs if isinstance(r, Mapping)]
        lines.append("")
    if tuned:
        lines += ["The training rows come from the curation stage's published `sft` config: the synth "
                  f"prompt without few-shot turns and the teacher's ({prov.short(labeled_by)} or gate-passed) "
                  f"JSON answer. Review: {prov.describe(labeled_by)}.", ""]

    # training config
    lines += ["## Training", ""]
    if tuned:
        cfg = ft.get("config") or {}
        lines += ["| setting | value |", "|---|---|"]
        lines += [f"| {k} | {_fmt(cfg.get(k))} |" for k in _TRAINING_KEYS if k in cfg]
        for k, label in (("global_step", "optimizer steps"), ("first_loss", "first loss"),
                         ("final_loss", "final loss"), ("device", "device"),
                         ("step_seconds_mean", "seconds / step"), ("wall_seconds", "wall seconds")):
            if ft.get(k) is not None:
                lines.append(f"| {label} | {_fmt(ft.get(k))} |")
        params = ft.get("params") or {}
        if params:
            lines.append(f"| trainable / total params | {_fmt(params.get('trainable'))} / "
                         f"{_fmt(params.get('total'))} |")
        lines += ["", "Loss on the final assistant turn only, rendered with the model's own chat template "
                  "(`finetune.data`).", ""]
    else:
        lines += ["No fine-tuning: this export is the base model.", ""]

    # eval card
    lines += ["## Evaluation", ""]
    if eval_report_md:
        body = eval_report_md.strip()
        # nest the report's headings under this section
        body = "\n".join(("#" + ln) if ln.startswith("#") else ln for ln in body.splitlines())
        lines += [body, ""]
    else:
        lines += ["No eval report was found (`<run>/eval/report.md`).", ""]
    lines += _mmlu_section(eval_json)
    lines += _gate_section(gate_report, files)

    lines += ["## Intended use", "",
              "Writing a one-sentence explanation for a recommendation that a recommender system already made, "
              "from the catalog facts and listener context given in the prompt (the `linernotes/domain/templates` prompt "
              "format). Output is JSON with the sentence and the facts it used, meant to be checked by the "
              "grounding/style/safety gates before a listener sees it.", "",
              "## Limitations", "",
              "- 135M parameters: it can still name facts that are not in the prompt; keep the grounding gate in "
              "front of it.",
              *([f"- Trained on a small, synthetic (teacher-written; review: {prov.short(labeled_by)}) set; "
                 "English only; music, audiobooks and podcasts only."] if tuned else
                ["- Untuned: it does not follow the liner-notes prompt format reliably (see the gate's texts)."]),
              "- Not a general assistant: fine-tuning may lower general knowledge (see the MMLU guardrail).",
              "- Quantized files agree with the merged model on most greedy tokens, not all (see the gate "
              "table); Q4_0 drifts more than Q8_0.",
              "- It chooses no recommendations and knows nothing about listeners beyond the prompt.", "",
              "## Licence", "",
              "Apache-2.0, inherited from SmolLM2-135M-Instruct (Hugging Face). Training data: built from "
              "Chinook (MIT-style), Book-Crossing (research use with citation: Ziegler et al., 2005) and the "
              "podcast-recommendation package (MIT); check those terms before redistributing data-derived "
              "material. llama.cpp's converter (MIT) was used to write the GGUF files.", ""]
    versions = em.get("versions") or {}
    conv = em.get("converter") or {}
    if versions or conv:
        lines += ["<details><summary>Versions</summary>", "", "```json",
                  json.dumps({"converter": conv, "versions": versions}, indent=1, default=str), "```",
                  "</details>", ""]
    return "\n".join(lines)
