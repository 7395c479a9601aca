"""Report card: untuned base, fine-tuned student and the teacher, side by side.

`evaluate(config, run_dir) -> Path` (the `eval/` folder inside the run), or

    linernotes eval --run runs/finetune-X [--n-per-type 50 --judge-n 150 ...]

What is measured (every rate with a Wilson 95% CI, finetune/stats.py):

- held-out pairs (finetune/eval_pairs.py): `n_per_type` seeded (item,
  listener) pairs per type whose items were never trained on;
- notes: base and tuned generate greedily from the zero-shot prompt the student
  was trained on; the teacher's are its raw first attempts (from the synth run
  when it has the pair, else generated through the teacher endpoint; the
  report says which). Each is parsed and gated (finetune/eval_scoring.py):
  accepted-note rate (parsed and every gate passed), per-gate pass rates, the
  top failure reasons per gate, diversity and length;
- the headline: tuned vs teacher on accepted-note rate, the difference with a
  Newcombe CI and a verdict sentence; tuned vs base likewise;
- a pairwise judge (finetune/judge.py), positions swapped, on `judge_n` pairs:
  tuned vs base and tuned vs teacher, win/tie/loss; every call in
  judge_calls.jsonl;
- the guardrail, base vs tuned: MMLU (finetune/mmlu.py, letter scoring) and
  HellaSwag / ARC-Easy / ARC-Challenge / PIQA (finetune/guardrail.py,
  length-normalised log-likelihood), paired deltas with bootstrap CIs and a
  "within CI of 0" flag;
- a general-chat check (finetune/chat_check.py): 50 general prompts, loop rate,
  distinct-2, longest repeated run.

Written to `<run>/eval/`: report.json, report.md, report.html
(finetune/report_html.py, plotly inline), samples.jsonl (prompt; base, tuned
and teacher notes with verdicts), chat.jsonl, judge_calls.jsonl, COMPLETE. A
rerun with the same config returns the folder as it is.

Costs (2 shared CPU cores, SmolLM2-135M float32, 1 torch thread): see the
"timings" entry of report.json, filled on every run (seconds per note, per
guardrail question, per chat prompt, per teacher note, per judge call).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import json
import sys
import time
from pathlib import Path
from typing import Any, Sequence

from finetune.config import EvalConfig
from finetune.generation import generate  # noqa: F401  (public API)
from finetune.eval_pairs import heldout_pairs, train_item_ids  # noqa: F401  (public API)
from finetune.eval_scoring import by_type, compare_rates, score_outputs, summarize  # noqa: F401
from finetune.train import ADAPTER_DIR

EVAL_DIR = "eval"
SIDES = ("base", "tuned", "teacher")


# generation lives in finetune/generation.py (chat_check uses it too); re-exported here


def judge_api_key(config: EvalConfig) -> str:
    """$judge_api_key_env, for judge_base_url only; $OPENAI_API_KEY (the default
    name) only when that URL is api.openai.com; otherwise no key."""
    from linernotes.services.credentials import api_key_for

    return api_key_for(config.judge_base_url, config.judge_api_key_env)


def report_figures(report: dict[str, Any]):
    """The report's plotly figures (finetune/report_html.py)."""
    from finetune.report_html import figures

    return figures(report)


# ---------------------------------------------------------------- guardrail thresholds

MMLU_GUARDRAIL = -0.05  # tuned may not lose more than 5 points (upper CI bound must stay above it)
# ... nor 5 points of probability on the right letter: SmolLM2-135M is near chance and answers
# "A" almost always, so accuracy barely moves; this continuous signal does.
MMLU_PROB_GUARDRAIL = -0.05


def _letter_share(result: dict) -> dict[str, float]:
    preds = result["predictions"]
    return {letter: round(sum(p["pred"] == i for p in preds) / len(preds), 3) for i, letter in enumerate("ABCD")}


def _mmlu_entry(config: EvalConfig, before: dict, after: dict) -> dict:
    from finetune.mmlu import compare

    cmp = compare(before, after)
    prob_ok = "correct_prob" not in cmp or cmp["correct_prob"]["ci95"][1] >= MMLU_PROB_GUARDRAIL
    lo, hi = cmp["ci95"]
    return {**cmp, "before_ci95": before["ci95"], "after_ci95": after["ci95"],
            "threshold": MMLU_GUARDRAIL, "prob_threshold": MMLU_PROB_GUARDRAIL,
            "passed": cmp["ci95"][1] >= MMLU_GUARDRAIL and prob_ok, "within_ci_of_0": bool(lo <= 0 <= hi),
            "seed": config.mmlu_seed,
            "answer_share_before": _letter_share(before), "answer_share_after": _letter_share(after)}


# ---------------------------------------------------------------- teacher + judge endpoints

@contextlib.contextmanager
def teacher_endpoint(config: EvalConfig, synth_run: Path | None = None):
    """The configured teacher (synth.backends): llamacpp starts the embedded one; a base_url reuses a server.
    With no teacher_model set, the model the synth run used (its model_path) is the teacher, so
    the card compares the student with the teacher that wrote its data."""
    from linernotes.config import SynthConfig
    from synth import backends

    model_path = None
    if synth_run is not None and not config.teacher_model and not config.teacher_base_url:
        manifest = Path(synth_run) / "manifest.json"
        synth_cfg = (json.loads(manifest.read_text()).get("config") or {}) if manifest.exists() else {}
        if synth_cfg.get("backend") == config.teacher_backend:
            model_path = synth_cfg.get("model_path")
    sc = SynthConfig(backend=config.teacher_backend, base_url=config.teacher_base_url,
                     model=config.teacher_model, model_path=model_path, api_key_env=config.teacher_api_key_env,
                     concurrency=max(1, config.teacher_concurrency))
    with backends.teacher(sc) as endpoint:
        yield endpoint


def judge_caller(config: EvalConfig, endpoint):
    from finetune.judge import openai_caller

    if config.judge_base_url:
        return openai_caller(config.judge_base_url, config.judge_model or "teacher", judge_api_key(config)), \
            {"base_url": config.judge_base_url, "model": config.judge_model}
    return openai_caller(endpoint.base_url, endpoint.model, endpoint.api_key, structured=endpoint.structured), \
        {"base_url": endpoint.base_url, "model": endpoint.model, "backend": endpoint.backend,
         "identity": endpoint.identity, "embedded_teacher": config.teacher_base_url is None}


def judge_order(pairs: Sequence) -> list[int]:
    """Pair indices interleaved across item types, so a judged subset covers every type."""
    per: dict[str, list[int]] = {}
    for i, p in enumerate(pairs):
        per.setdefault(p.item.item_type, []).append(i)
    out: list[int] = []
    queues = list(per.values())
    while any(queues):
        for q in queues:
            if q:
                out.append(q.pop(0))
    return out


# ---------------------------------------------------------------- the stage

def _per(seconds: float, n: int) -> float | None:
    return round(seconds / n, 3) if n else None


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
    (out / "judge_calls.jsonl").unlink(missing_ok=True)
    t0 = time.monotonic()
    from linernotes import paths

    paths.use_offline_hub()

    import torch
    from peft import PeftModel
    from rich.progress import Progress
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from finetune import chat_check, eval_pairs, guardrail
    from finetune.report_html import write_report
    from linernotes.domain.gate_index import load_gate_index
    from linernotes.domain.prompts import PromptBuilder
    from synth.catalog.ingest import load_catalog

    if config.num_threads > 0:
        torch.set_num_threads(config.num_threads)
    timings: dict[str, Any] = {}
    manifest = json.loads((run_dir / "manifest.json").read_text()) if (run_dir / "manifest.json").exists() else {}
    base_dir = manifest.get("base_model")
    if not base_dir:
        from linernotes.hfmodel import smollm2_hf_dir

        base_dir = str(smollm2_hf_dir())
    sft_run = Path(manifest["sft_run"]) if manifest.get("sft_run") else run_dir
    exclude = train_item_ids(sft_run) | train_item_ids(run_dir)
    catalog_dir = Path(config.catalog_dir) if config.catalog_dir else paths.catalog_dir()
    catalog = load_catalog(catalog_dir)
    pairs = heldout_pairs(catalog, config, exclude, eval_pairs.golden_titles())
    index = load_gate_index(catalog_dir)
    builder = PromptBuilder.zero_shot()  # the prompt the student was trained on
    prompts = [builder.messages(p.item, p.listener) for p in pairs]

    t = time.monotonic()
    tokenizer = AutoTokenizer.from_pretrained(str(run_dir / ADAPTER_DIR))
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    timings["model_load_s"] = round(time.monotonic() - t, 1)
    mmlu_questions = []
    if config.mmlu_n > 0:
        from finetune.mmlu import load_mmlu

        mmlu_questions = load_mmlu(n=config.mmlu_n, seed=config.mmlu_seed)
    tasks = {task: guardrail.load_task(task, config.guardrail_n, config.guardrail_seed)
             for task in (config.guardrail_tasks if config.guardrail_n > 0 else [])}
    chat_prompts = chat_check.load_prompts(n=config.chat_n) if config.chat_n > 0 else []
    from finetune.mmlu import score_mmlu

    results: dict[str, dict[str, Any]] = {}
    with Progress(disable=not progress) as bar:
        for name in ("base", "tuned"):
            if name == "tuned":
                model = PeftModel.from_pretrained(model, str(run_dir / ADAPTER_DIR))
                model = model.merge_and_unload()  # same weights an export ships; faster generation
            res: dict[str, Any] = {}
            task = bar.add_task(f"{name}: notes", total=len(prompts))
            t = time.monotonic()
            res["outputs"] = generate(model, tokenizer, prompts, config.max_new_tokens, config.batch_size,
                                      progress=lambda k, task=task: bar.advance(task, k))
            timings[f"{name}_note_s"] = _per(time.monotonic() - t, len(prompts))
            if mmlu_questions:
                t = time.monotonic()
                res["mmlu"] = score_mmlu(model, tokenizer, mmlu_questions)
                timings[f"{name}_mmlu_question_s"] = _per(time.monotonic() - t, len(mmlu_questions))
            res["guardrail"] = {}
            for tname, qs in tasks.items():
                t = time.monotonic()
                res["guardrail"][tname] = guardrail.score_task(model, tokenizer, qs, config.batch_size)
                timings[f"{name}_{tname}_question_s"] = _per(time.monotonic() - t, len(qs))
            if chat_prompts:
                task = bar.add_task(f"{name}: chat", total=1)
                t = time.monotonic()
                res["chat"] = chat_check.run_chat_check(model, tokenizer, chat_prompts, config.chat_max_new_tokens,
                                                        config.batch_size)
                timings[f"{name}_chat_prompt_s"] = _per(time.monotonic() - t, len(chat_prompts))
                bar.advance(task)
            results[name] = res
    del model
    gc.collect()

    # the teacher: its first attempts from the synth run where it has the pair, else the endpoint
    teacher_out: list[str | None] = [None] * len(pairs)
    have = [False] * len(pairs)
    source: dict[str, Any] = {"mode": config.teacher, "synth_run": None, "from_synth": 0, "generated": 0}
    synth_run = eval_pairs.find_synth_run(config)
    if config.teacher in ("auto", "synth"):
        if synth_run is not None:
            source["synth_run"] = str(synth_run)
            firsts = eval_pairs.synth_first_attempts(synth_run)
            for i, p in enumerate(pairs):
                key = (p.item.item_id, p.listener.listener_id)
                if key in firsts:
                    teacher_out[i], have[i] = firsts[key], True
            source["from_synth"] = sum(have)
    missing = [i for i in range(len(pairs)) if not have[i]] if config.teacher in ("auto", "generate") else []
    need_judge = config.judge_n > 0
    judge_res: dict[str, Any] | None = None
    if missing or (need_judge and not config.judge_base_url):
        try:
            with teacher_endpoint(config, synth_run) as endpoint:
                source["endpoint"] = {"backend": endpoint.backend, "model": endpoint.model,
                                      "base_url": endpoint.base_url, "identity": endpoint.identity}
                if missing:
                    t = time.monotonic()
                    texts, call_s = eval_pairs.generate_teacher(endpoint, [pairs[i] for i in missing],
                                                                config.teacher_concurrency)
                    for i, text in zip(missing, texts):
                        teacher_out[i], have[i] = text, True
                    source["generated"] = len(missing)
                    timings["teacher_note_wall_s"] = _per(time.monotonic() - t, len(missing))
                    timings["teacher_note_call_s"] = _per(sum(call_s), len(call_s))
                if need_judge:
                    judge_res = _run_judge(config, endpoint, pairs, prompts, results, teacher_out, have,
                                           index, out, timings)
        except Exception as exc:  # no teacher: the card still reports base vs tuned, and says why
            source["error"] = f"{type(exc).__name__}: {exc}"
    elif need_judge:
        judge_res = _run_judge(config, None, pairs, prompts, results, teacher_out, have, index, out, timings)

    rows = {name: score_outputs(results[name]["outputs"], pairs, index) for name in ("base", "tuned")}
    teacher_idx = [i for i in range(len(pairs)) if have[i]]
    if teacher_idx:
        rows["teacher"] = score_outputs([teacher_out[i] for i in teacher_idx], [pairs[i] for i in teacher_idx], index)
    summaries = {name: summarize(r) for name, r in rows.items()}
    report: dict[str, Any] = {
        "run": run_dir.name, "stage": manifest.get("stage"), "config": dataclasses.asdict(config),
        "config_fingerprint": fp, "base_model": base_dir, "adapter": str(run_dir / ADAPTER_DIR),
        "lineage": {"run": str(run_dir), "stage": manifest.get("stage"), "sft_run": manifest.get("sft_run"),
                    "train_data": (manifest.get("config") or {}).get("train_data"),
                    "preference_data": (manifest.get("config") or {}).get("preference_data"),
                    "base_model": base_dir, "upstream": manifest.get("lineage")},
        "heldout": [{"item_id": p.item.item_id, "listener_id": p.listener.listener_id,
                     "item_type": p.item.item_type} for p in pairs],
        "heldout_per_type": {t: sum(p.item.item_type == t for p in pairs) for t in config.item_types},
        "excluded_training_items": len(exclude),
        "teacher_source": {**source, "n": len(teacher_idx), "all_pairs": len(teacher_idx) == len(pairs)},
        **summaries,
        "by_type": {name: by_type(r, pairs if name != "teacher" else [pairs[i] for i in teacher_idx])
                    for name, r in rows.items()},
    }
    if "teacher" in summaries:
        # the headline compares on the same pairs: the teacher's subset when it lacks some
        tuned_same = summarize([rows["tuned"][i] for i in teacher_idx]) if len(teacher_idx) < len(pairs) \
            else summaries["tuned"]
        report["headline"] = compare_rates(tuned_same["accepted"], summaries["teacher"]["accepted"],
                                           "the tuned student", "the teacher")
    else:
        report["headline"] = {"verdict": "No teacher notes for these pairs ("
                              + (source.get("error") or f"teacher = {config.teacher!r}")
                              + "): only base vs tuned is reported.", "separated": False}
    report["vs_base"] = compare_rates(summaries["tuned"]["accepted"], summaries["base"]["accepted"],
                                      "the tuned student", "the base model")
    if judge_res is not None:
        report["judge"] = judge_res
    if mmlu_questions:
        report["mmlu"] = _mmlu_entry(config, results["base"]["mmlu"], results["tuned"]["mmlu"])
    if tasks:
        report["guardrail"] = {t: {k: v for k, v in guardrail.compare_task(results["base"]["guardrail"][t],
                                                                           results["tuned"]["guardrail"][t]).items()}
                               for t in tasks}
    if chat_prompts:
        from finetune.stats import diff_ci

        cb, ct = results["base"]["chat"], results["tuned"]["chat"]
        report["chat"] = {
            **{name: {k: v for k, v in results[name]["chat"].items() if k not in ("outputs", "per_prompt")}
               for name in ("base", "tuned")},
            "loop_diff_ci95": list(diff_ci(ct["loop"]["k"], ct["loop"]["n"], cb["loop"]["k"], cb["loop"]["n"]))}
        with open(out / "chat.jsonl", "w") as fh:
            for p, ob, ot, mb, mt in zip(chat_prompts, cb["outputs"], ct["outputs"], cb["per_prompt"],
                                         ct["per_prompt"]):
                fh.write(json.dumps({**p, "base": ob, "tuned": ot, "base_metrics": mb, "tuned_metrics": mt},
                                    ensure_ascii=False) + "\n")
    tpos = {i: j for j, i in enumerate(teacher_idx)}
    picks = judge_order(pairs)[: config.examples]
    report["examples"] = [{"item_type": pairs[i].item.item_type, "title": pairs[i].item.title,
                           "creator": pairs[i].item.creator, "listener_id": pairs[i].listener.listener_id,
                           **{name: _example(rows[name][i if name != "teacher" else tpos[i]])
                              for name in rows if name != "teacher" or i in tpos}}
                          for i in picks]
    report["timings"] = timings
    report["wall_seconds"] = round(time.monotonic() - t0, 1)

    with open(out / "samples.jsonl", "w") as fh:
        for i, (p, msgs) in enumerate(zip(pairs, prompts)):
            fh.write(json.dumps({"item_id": p.item.item_id, "listener_id": p.listener.listener_id,
                                 "item_type": p.item.item_type, "title": p.item.title, "creator": p.item.creator,
                                 "prompt": msgs, "base": rows["base"][i], "tuned": rows["tuned"][i],
                                 "teacher": rows["teacher"][tpos[i]] if i in tpos else None},
                                ensure_ascii=False) + "\n")
    write_report(report, out)
    (out / "COMPLETE").write_text(time.strftime("%Y-%m-%dT%H:%M:%S"))
    return out


def _example(row: dict[str, Any]) -> dict[str, Any]:
    failed = [g for g, ok in row["gates"].items() if not ok]
    return {"note": row["explanation"] if row["explanation"] else (row["output"] or "")[:200],
            "parsed": row["parsed"], "accepted": row["accepted"], "failed_gates": failed}


def _run_judge(config: EvalConfig, endpoint, pairs, prompts, results, teacher_out, have, index, out: Path,
               timings: dict) -> dict[str, Any]:
    """Tuned vs base and tuned vs teacher on the first judge_n pairs of judge_order."""
    from finetune.judge import judge_sides

    call, who = judge_caller(config, endpoint)
    order = judge_order(pairs)
    contexts = [prompts[i][-1]["content"] for i in order]
    expl = {name: [r["explanation"] for r in score_outputs([results[name]["outputs"][i] for i in order],
                                                            [pairs[i] for i in order], index)]
            for name in ("base", "tuned")}
    res: dict[str, Any] = {"judge": who, "log": "judge_calls.jsonl"}
    t = time.monotonic()
    res["tuned_vs_base"] = judge_sides(call, contexts, expl["tuned"], expl["base"], ("tuned", "base"),
                                       out / "judge_calls.jsonl", config.judge_n)
    with_teacher = [j for j, i in enumerate(order) if have[i]]
    if with_teacher:
        teacher_rows = score_outputs([teacher_out[order[j]] for j in with_teacher],
                                     [pairs[order[j]] for j in with_teacher], index)
        res["tuned_vs_teacher"] = judge_sides(call, [contexts[j] for j in with_teacher],
                                              [expl["tuned"][j] for j in with_teacher],
                                              [r["explanation"] for r in teacher_rows], ("tuned", "teacher"),
                                              out / "judge_calls.jsonl", config.judge_n)
    calls = sum(res[k]["calls"] for k in ("tuned_vs_base", "tuned_vs_teacher") if k in res)
    wall = time.monotonic() - t
    timings["judge_call_s"] = _per(wall, calls)
    judged = sum(res[k]["n"] for k in ("tuned_vs_base", "tuned_vs_teacher") if k in res)
    timings["judge_judgment_s"] = _per(wall, judged)
    return res


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
