"""report.html: the page a person reads (run and lineage, headline verdict, every metric with
its CI, grouped bar charts with error bars, gate failures, guardrail deltas, chat loop rate,
judge results, example notes side by side). Plotly is inlined once, so the page works offline.

All catalog and model text is HTML-escaped: it is data, never markup.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from finetune.eval_report import (_fmt, report_markdown, fmt_rate, gate_list, guardrail_rows, metric_rows, sides,
                                  teacher_sentence)

COLORS = {"base": "#9aa5b1", "tuned": "#1f77b4", "teacher": "#ff7f0e"}
CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;max-width:1280px;color:#222}
h1{font-size:26px;margin-bottom:4px} h2{font-size:20px;margin-top:28px;border-bottom:1px solid #ddd}
.lineage{color:#555;font-size:13px} .verdict{font-size:18px;padding:12px 16px;border-radius:6px;margin:12px 0}
.sep{background:#e8f4ea;border-left:6px solid #2e7d32} .nosep{background:#fff6e0;border-left:6px solid #e0a000}
table{border-collapse:collapse;margin:8px 0;font-size:13px} td,th{border:1px solid #ddd;padding:4px 8px;vertical-align:top}
th{background:#f4f4f4;text-align:left} .no{color:#b00020;font-weight:bold} .yes{color:#2e7d32}
.ex td{max-width:380px} .small{font-size:12px;color:#666} .acc{color:#2e7d32} .rej{color:#b00020}
"""


def _e(x: Any) -> str:
    return html.escape("" if x is None else str(x))


def _err(rates: list[dict | None]) -> dict:
    ys = [r["rate"] if r and r.get("rate") is not None else None for r in rates]
    return {"type": "data", "symmetric": False,
            "array": [(r["ci95"][1] - y) if y is not None else 0 for r, y in zip(rates, ys)],
            "arrayminus": [(y - r["ci95"][0]) if y is not None else 0 for r, y in zip(rates, ys)]}


def figures(report: dict[str, Any]) -> list:
    import plotly.graph_objects as go

    ss = sides(report)
    figs = []
    keys = [("accepted", "accepted"), ("parse", "parsed")] + [(g, g) for g in gate_list(report)]

    def pick(side, key):
        return report[side].get(key) if key in ("accepted", "parse") else report[side].get("gates", {}).get(key)

    fig = go.Figure()
    for s in ss:
        rates = [pick(s, k) for k, _ in keys]
        fig.add_bar(name=s, x=[label for _, label in keys],
                    y=[r["rate"] if r else None for r in rates], error_y=_err(rates), marker_color=COLORS[s])
    fig.update_layout(barmode="group", title="Notes: accepted, parsed and per-gate pass rates (95% Wilson CI)",
                      yaxis=dict(range=[0, 1.05], title="rate"), height=420)
    figs.append(fig)

    grs = guardrail_rows(report)
    if grs:
        fig = go.Figure()
        for side, key, ci in (("base", "before", "before_ci95"), ("tuned", "after", "after_ci95")):
            fig.add_bar(name=side, x=[g["label"] for g in grs], y=[g[key] for g in grs], marker_color=COLORS[side],
                        error_y=dict(type="data", symmetric=False, array=[g[ci][1] - g[key] for g in grs],
                                     arrayminus=[g[key] - g[ci][0] for g in grs]))
        fig.update_layout(barmode="group", title="Guardrail accuracy, base vs tuned (95% Wilson CI)",
                          yaxis=dict(range=[0, 1.05], title="accuracy"), height=380)
        figs.append(fig)
        fig = go.Figure(go.Scatter(
            x=[g["label"] for g in grs], y=[g["delta"] for g in grs], mode="markers",
            marker=dict(size=12, color=["#2e7d32" if g["within"] else "#b00020" for g in grs]),
            error_y=dict(type="data", symmetric=False, array=[g["ci95"][1] - g["delta"] for g in grs],
                         arrayminus=[g["delta"] - g["ci95"][0] for g in grs])))
        fig.add_hline(y=0, line_dash="dot")
        fig.update_layout(title="Guardrail delta tuned - base (paired bootstrap 95% CI; red: CI excludes 0)",
                          yaxis_title="accuracy delta", height=340)
        figs.append(fig)

    judge = report.get("judge") or {}
    comps = [judge[k] for k in ("tuned_vs_base", "tuned_vs_teacher") if judge.get(k)]
    if comps:
        fig = go.Figure()
        for part, color in (("win", "#2e7d32"), ("tie", "#bbbbbb"), ("loss", "#b00020")):
            fig.add_bar(name=part, y=[f"{c['x']} vs {c['y']}" for c in comps], x=[c[part]["rate"] for c in comps],
                        orientation="h", marker_color=color, error_x=_err([c[part] for c in comps]))
        fig.update_layout(barmode="group", title="Pairwise judge, positions swapped (share of pairs, 95% CI)",
                          xaxis=dict(range=[0, 1.05]), height=300)
        figs.append(fig)

    chat = report.get("chat")
    if chat:
        fig = go.Figure()
        for s in ("base", "tuned"):
            rates = [chat[s]["loop"], chat[s]["json"]]
            fig.add_bar(name=s, x=["loop rate", "answer starts with JSON"], y=[r["rate"] for r in rates],
                        error_y=_err(rates), marker_color=COLORS[s])
        fig.update_layout(barmode="group", title=f"General chat ({chat['base']['n']} prompts, 95% CI)",
                          yaxis=dict(range=[0, 1.05]), height=340)
        figs.append(fig)

    fig = go.Figure([go.Histogram(name=s, x=report[s]["words"]["all"], opacity=0.6, nbinsx=20,
                                  marker_color=COLORS[s]) for s in ss])
    fig.update_layout(barmode="overlay", title="Note length (words)", xaxis_title="words", height=320)
    figs.append(fig)
    return figs


def _table(head: list[str], rows: list[list[str]], cls: str = "") -> str:
    out = [f"<table class='{cls}'><tr>" + "".join(f"<th>{_e(h)}</th>" for h in head) + "</tr>"]
    for r in rows:
        out.append("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>")
    return "".join(out) + "</table>"


def report_html(report: dict[str, Any]) -> str:
    ss = sides(report)
    lin = report.get("lineage") or {}
    head = report["headline"]
    parts = [f"<h1>Report card: {_e(report['run'])}</h1>",
             "<div class='lineage'>" + " &middot; ".join(_e(x) for x in [
                 f"stage {report.get('stage') or 'finetune'}", f"base model {Path(report['base_model']).name}",
                 *([f"SFT run {Path(lin['sft_run']).name}"] if lin.get("sft_run") else []),
                 *([f"train data {lin['train_data']}"] if lin.get("train_data") else []),
                 *([f"preference data {lin['preference_data']}"] if lin.get("preference_data") else []),
                 f"config {report['config_fingerprint']}", f"eval wall {report.get('wall_seconds')} s"]) + "</div>",
             f"<div class='verdict {'sep' if head.get('separated') else 'nosep'}'><b>Headline.</b> "
             f"{_e(head['verdict'])}</div>",
             f"<p>Versus the untuned base: {_e(report['vs_base']['verdict'])}</p>",
             f"<p class='small'>Held-out pairs: {report['base']['n']} "
             f"({_e(', '.join(f'{t} {k}' for t, k in (report.get('heldout_per_type') or {}).items()))}); "
             f"{report['excluded_training_items']} trained item ids and the golden examples' titles excluded. {_e(teacher_sentence(report))} "
             "Rates are shown as value [Wilson 95% CI].</p>"]

    parts.append("<h2>Every metric</h2>")
    parts.append(_table(["metric", *ss], [[_e(label), *[_e(cells.get(s, "-")) for s in ss]]
                                          for label, cells in metric_rows(report)]))
    bt = report.get("by_type") or {}
    if bt:
        parts.append(_table(["accepted by type", *ss], [[_e(t), *[_e(fmt_rate(bt.get(s, {}).get(t))) for s in ss]]
                                                        for t in (report.get("heldout_per_type") or {})]))

    figs = figures(report)
    plots = [f.to_html(full_html=False, include_plotlyjs=(i == 0)) for i, f in enumerate(figs)]
    parts.append("<h2>Charts</h2>" + "".join(plots[:1]))

    parts.append("<h2>Gate failures (top reasons per gate)</h2>")
    rows = []
    for g in gate_list(report):
        for s in ss:
            r = report[s]["gates"].get(g)
            if r:
                reasons = "<br>".join(f"{_e(reason)} <b>({k})</b>" for reason, k in report[s]["failures"].get(g, []))
                rows.append([_e(g), _e(s), f"{r['n'] - r['k']}/{r['n']}", reasons or "-"])
    parts.append(_table(["gate", "side", "failed", "top reasons (count)"], rows))

    parts.append("<h2>Guardrail: general ability, base vs tuned</h2>")
    grs = guardrail_rows(report)
    if grs:
        parts.append(_table(["task", "n", "base", "tuned", "delta [95% CI]", "within CI of 0"], [
            [_e(g["label"]), str(g["n"]), f"{g['before']:.3f} [{g['before_ci95'][0]:.3f}, {g['before_ci95'][1]:.3f}]",
             f"{g['after']:.3f} [{g['after_ci95'][0]:.3f}, {g['after_ci95'][1]:.3f}]",
             f"{g['delta']:+.3f} [{g['ci95'][0]:+.3f}, {g['ci95'][1]:+.3f}]",
             "<span class='yes'>yes</span>" if g["within"] else "<span class='no'>no</span>"] for g in grs]))
        parts.extend(plots[1:3])
    else:
        parts.append("<p>Not run.</p>")

    parts.append("<h2>Pairwise judge</h2>")
    judge = report.get("judge")
    k = 1 + (2 if grs else 0)
    if judge:
        who = judge["judge"]
        parts.append(f"<p class='small'>Judge {_e(who.get('model'))} at {_e(who.get('base_url'))}; each pair asked "
                     "A/B and B/A, a win only when both orders agree, otherwise a tie. Every call is in "
                     f"{_e(judge['log'])}.</p>")
        parts.append(_table(["comparison", "n", "win", "tie", "loss", "calls", "s/call"], [
            [_e(f"{j['x']} vs {j['y']}"), str(j["n"]), _e(fmt_rate(j["win"])), _e(fmt_rate(j["tie"])),
             _e(fmt_rate(j["loss"])), str(j["calls"]), _e(_fmt(j["seconds_per_call"]))]
            for j in (judge.get("tuned_vs_base"), judge.get("tuned_vs_teacher")) if j]))
        parts.append(plots[k])
        k += 1
    else:
        parts.append("<p>Not run (judge_n = 0 or no judge endpoint).</p>")

    parts.append("<h2>General chat</h2>")
    chat = report.get("chat")
    if chat:
        b, t = chat["base"], chat["tuned"]
        parts.append(_table(["metric", "base", "tuned"], [
            ["loop rate (span of &ge; 3 words repeated &ge; 3 times)", _e(fmt_rate(b["loop"])), _e(fmt_rate(t["loop"]))],
            ["answer starts with JSON", _e(fmt_rate(b["json"])), _e(fmt_rate(t["json"]))],
            ["distinct-2 (mean)", _e(_fmt(b["distinct_2_mean"])), _e(_fmt(t["distinct_2_mean"]))],
            ["longest repeated run (max / mean)", f"{b['longest_repeat_max']} / {_e(_fmt(b['longest_repeat_mean']))}",
             f"{t['longest_repeat_max']} / {_e(_fmt(t['longest_repeat_mean']))}"],
            ["words (mean)", _e(_fmt(b["words_mean"])), _e(_fmt(t["words_mean"]))]]))
        parts.append(plots[k])
        k += 1
    else:
        parts.append("<p>Not run.</p>")

    parts.append("<h2>Example notes</h2>")
    rows = []
    for ex in report.get("examples") or []:
        cells = [f"<b>{_e(ex['title'])}</b><br><span class='small'>{_e(ex['item_type'])} &middot; "
                 f"{_e(ex['creator'])} &middot; {_e(ex['listener_id'])}</span>"]
        for s in ss:
            e = ex.get(s)
            if not e:
                cells.append("-")
                continue
            mark = ("<span class='acc'>accepted</span>" if e["accepted"] else
                    "<span class='rej'>" + ("unparsable" if not e["parsed"] else
                                             "failed " + _e(", ".join(e["failed_gates"]))) + "</span>")
            cells.append(f"{_e(e['note'])}<br>{mark}")
        rows.append(cells)
    parts.append(_table(["pair", *ss], rows, "ex"))
    parts.append("<h2>Length</h2>" + "".join(plots[k:]))

    tm = report.get("timings") or {}
    if tm:
        parts.append("<h2>Costs</h2>" + _table(["stage", "seconds"], [[_e(a), _e(_fmt(v))] for a, v in tm.items()]))
    return ("<!doctype html><html><head><meta charset='utf-8'><title>report card: " + _e(report["run"])
            + f"</title><style>{CSS}</style></head><body>" + "".join(parts) + "</body></html>")


def write_report(report: dict[str, Any], out: Path) -> None:
    """report.json, report.md and report.html into `out`."""
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str))
    (out / "report.md").write_text(report_markdown(report))
    (out / "report.html").write_text(report_html(report))
