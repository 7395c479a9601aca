"""report.md / report.html from a report built with the real scoring code and stand-in outputs."""

from __future__ import annotations

import html
import json
import re

from finetune import guardrail, mmlu
from finetune.chat_check import summarize as chat_summary
from finetune.config import EvalConfig
from finetune.eval_report import report_markdown
from finetune.eval_scoring import by_type, compare_rates, score_outputs, summarize
from finetune.judge import judge_sides
from finetune.report_html import figures, report_html


def _standin_report(fixture_catalog_dir):
    """A report dict assembled the way evaluate() does, from stand-in notes (no model)."""
    from synth.catalog.ingest import load_catalog

    catalog = load_catalog(fixture_catalog_dir)
    cfg = EvalConfig(item_types=["music"], n_per_type=4)
    pairs = __import__("finetune.eval_pairs", fromlist=["x"]).heldout_pairs(catalog, cfg, set())
    good = [json.dumps({"explanation": f"{p.item.title} by {p.item.creator} suits your taste.",
                        "facts_used": [p.item.title, p.item.creator]}) for p in pairs]
    outs = {"base": ["Sure! <b>here</b> is a song"] * len(pairs), "tuned": good[:3] + ["nope"], "teacher": good}
    rows = {s: score_outputs(o, pairs) for s, o in outs.items()}
    sums = {s: summarize(r) for s, r in rows.items()}
    preds = lambda correct: mmlu.summarize([{"id": f"t/{i}", "subject": "t", "answer": 0, "pred": 0 if c else 1,
                                             "correct": bool(c), "logits": [0.0, 0.0]} for i, c in enumerate(correct)])
    before, after = preds([1, 0] * 10), preds([1, 1, 1, 0] * 5)
    report = {
        "run": "finetune-standin", "stage": "finetune", "config": {**cfg.__dict__}, "config_fingerprint": "abc",
        "base_model": "/m/SmolLM2", "adapter": "/r/adapter", "lineage": {"sft_run": None, "train_data": "pub"},
        "heldout_per_type": {"music": len(pairs)}, "excluded_training_items": 0,
        "teacher_source": {"mode": "generate", "generated": len(pairs), "n": len(pairs), "all_pairs": True,
                           "endpoint": {"model": "smollm2", "backend": "llamacpp"}},
        **sums, "by_type": {s: by_type(r, pairs) for s, r in rows.items()},
        "headline": compare_rates(sums["tuned"]["accepted"], sums["teacher"]["accepted"], "the tuned student",
                                  "the teacher"),
        "vs_base": compare_rates(sums["tuned"]["accepted"], sums["base"]["accepted"], "the tuned student",
                                 "the base model"),
        "judge": {"judge": {"model": "smollm2", "base_url": "http://x/v1"}, "log": "judge_calls.jsonl",
                  "tuned_vs_base": judge_sides(lambda p: "A", ["c"] * 4, ["a"] * 4, ["b"] * 4, ("tuned", "base"))},
        "guardrail": {"piqa": guardrail.compare_task(before, after)},
        "chat": {"base": {k: v for k, v in chat_summary(["a b c a b c a b c", "Fine."]).items() if k != "per_prompt"},
                 "tuned": {k: v for k, v in chat_summary(["Fine.", "Also fine."]).items() if k != "per_prompt"},
                 "loop_diff_ci95": [-0.9, 0.3]},
        "examples": [{"item_type": "music", "title": pairs[0].item.title, "creator": pairs[0].item.creator,
                      "listener_id": "l1", **{s: {"note": rows[s][0]["explanation"] or rows[s][0]["output"],
                                                  "parsed": rows[s][0]["parsed"], "accepted": rows[s][0]["accepted"],
                                                  "failed_gates": []} for s in rows}}],
        "timings": {"base_note_s": 1.0}, "wall_seconds": 3.0,
    }
    return report


def test_report_html_has_table_verdict_and_real_bars(fixture_catalog_dir):
    report = _standin_report(fixture_catalog_dir)
    # the gates decide acceptance (and change as they grow); parsing is ours: 0, 3 and 4 of 4
    assert [report[s]["parse"]["k"] for s in ("base", "tuned", "teacher")] == [0, 3, 4]
    assert report["base"]["accepted"]["k"] == 0
    page = report_html(report)
    assert "<h1>Report card: finetune-standin</h1>" in page
    assert html.escape(report["headline"]["verdict"]) in page and "Headline." in page
    assert page.count("<table") >= 6
    assert "accepted note (parsed, all gates pass)" in page and "grounding gate pass" in page
    assert "&lt;b&gt;here&lt;/b&gt;" in page and "<b>here</b>" not in page  # model text is escaped data
    assert "PIQA" in page and ("within CI of 0" in page)
    # bars: every side's bar holds its real rates (the parse bar of base is 0, tuned's is 0.75)
    bars = figures(report)[0]
    by_name = {t.name: list(t.y) for t in bars.data}
    assert by_name["tuned"][1] == 0.75 and by_name["teacher"][1] == 1.0 and by_name["base"][1] == 0.0
    assert by_name["teacher"][0] == report["teacher"]["accepted"]["rate"]
    assert list(bars.data[0].x)[2:] == list(report["tuned"]["gates"])  # every gate, whatever its name
    assert all(t.error_y.array is not None for t in bars.data)


def test_report_markdown_lists_every_gate_and_guardrail(fixture_catalog_dir):
    report = _standin_report(fixture_catalog_dir)
    md = report_markdown(report)
    for gate in report["tuned"]["gates"]:
        assert f"| {gate} gate pass |" in md
    assert "**Headline.**" in md and "| PIQA | 20 |" in md
    assert re.search(r"\| tuned vs base \| 4 \| 0\.000 .*\| 1\.000 ", md)  # position bias: all ties
    assert "| loop rate | 0.500" in md
