"""Report card: base vs tuned on held-out pairs of the fixture catalog, real SmolLM2 on CPU."""

from __future__ import annotations

import html
import json

import pytest

from finetune.config import EvalConfig, FinetuneConfig
from finetune.evaluate import evaluate, heldout_pairs, score_outputs, summarize
from finetune.train import train_sft
from test_finetune import _rows


def test_scoring_counts_unparsable_as_failing_and_measures_diversity(fixture_catalog_dir):
    from synth.catalog.ingest import load_catalog

    catalog = load_catalog(fixture_catalog_dir)
    pairs = heldout_pairs(catalog, EvalConfig(item_types=["music"], n_per_type=2), set())
    item = pairs[0].item
    good = json.dumps({"explanation": f"{item.title} by {item.creator} suits your taste.",
                       "facts_used": [item.title, item.creator]})
    rows = score_outputs([good, "Sure! Here is a great song for you"], pairs[:2])
    assert rows[0]["parsed"] and rows[0]["grounding_passed"], rows[0]["reasons"]
    assert not rows[1]["parsed"] and not rows[1]["grounding_passed"] and not rows[1]["style_passed"]
    s = summarize(rows)
    assert s["parse_rate"] == 0.5 and s["grounding_pass"] == 0.5
    assert s["unique_sentence_ratio"] == 1.0 and s["distinct_2"] == 1.0
    assert s["words"]["all"] == [len(rows[0]["explanation"].split())]
    assert s["accepted"]["k"] == int(rows[0]["accepted"]) and s["accepted"]["n"] == 2
    assert s["parse"]["rate"] == 0.5 and s["parse"]["ci95"][0] < 0.5 < s["parse"]["ci95"][1]
    assert s["failures"]["style"][0][1] >= 1  # the unparsable answer's reason is counted


def test_summary_reads_the_gates_dict_generically():
    """A gate the summary has never heard of (e.g. "usefulness") gets its rate, failures and a say in accepted."""
    rows = [{"parsed": True, "explanation": "A fine note.", "gates": {"grounding": True, "usefulness": ok},
             "accepted": ok, "reasons": {} if ok else {"usefulness": ["too generic: 3 of 4 words filler"]}}
            for ok in (True, False, False)]
    s = summarize(rows)
    assert s["gates"]["usefulness"]["k"] == 1 and s["usefulness_pass"] == round(1 / 3, 4)
    assert s["accepted"]["k"] == 1
    assert s["failures"]["usefulness"] == [["too generic: N of N words filler", 2]]


def test_heldout_pairs_skip_golden_titles_and_stay_distinct(fixture_catalog_dir):
    from synth.catalog.ingest import load_catalog

    catalog = load_catalog(fixture_catalog_dir)
    cfg = EvalConfig(item_types=["music"], n_per_type=3)
    first = heldout_pairs(catalog, cfg, set())
    title = first[0].item.title.lower()
    again = heldout_pairs(catalog, cfg, set(), {title})
    assert title not in {p.item.title.lower() for p in again}
    keys = [(p.item.item_id, p.listener.listener_id) for p in heldout_pairs(catalog, EvalConfig(
        item_types=["music"], n_per_type=20), set())]
    assert len(keys) == len(set(keys))


def test_heldout_pairs_exclude_training_items(fixture_catalog_dir):
    from synth.catalog.ingest import load_catalog

    catalog = load_catalog(fixture_catalog_dir)
    cfg = EvalConfig(item_types=["music"], n_per_type=3)
    first = heldout_pairs(catalog, cfg, set())
    again = heldout_pairs(catalog, cfg, {first[0].item.item_id})
    assert first == heldout_pairs(catalog, cfg, set())  # seeded
    assert first[0].item.item_id not in {p.item.item_id for p in again}


@pytest.mark.slow
def test_report_card_base_vs_tuned(tmp_path, fixture_catalog_dir):
    import torch

    torch.set_num_threads(1)
    run = train_sft(FinetuneConfig(runs_dir=str(tmp_path / "runs"), max_length=128, per_device_batch_size=2,
                                   save_steps=1000, lr=1e-3, max_steps=2, num_threads=1), _rows(8))
    # no teacher and no judge: both need an endpoint (a TCP server), which unit tests may not open
    cfg = EvalConfig(catalog_dir=str(fixture_catalog_dir), item_types=["music", "podcast"], n_per_type=1,
                     mmlu_n=8, max_new_tokens=24, num_threads=1, teacher="none", judge_n=0,
                     guardrail_tasks=["piqa", "arc_easy"], guardrail_n=4, chat_n=2, chat_max_new_tokens=16)
    out = evaluate(cfg, run.path, progress=False)
    report = json.loads((out / "report.json").read_text())
    for side in ("base", "tuned"):
        assert report[side]["n"] == 2
        assert 0.0 <= report[side]["grounding_pass"] <= 1.0
    mm = report["mmlu"]
    assert mm["n"] == 8 and mm["ci95"][0] <= mm["delta"] <= mm["ci95"][1]
    assert mm["passed"] == (mm["ci95"][1] >= mm["threshold"] and mm["correct_prob"]["ci95"][1] >= mm["prob_threshold"])
    assert mm["correct_prob"]["ci95"][0] <= mm["correct_prob"]["delta"] <= mm["correct_prob"]["ci95"][1]
    for task in ("piqa", "arc_easy"):
        g = report["guardrail"][task]
        assert g["n"] == 4 and g["ci95"][0] <= g["delta"] <= g["ci95"][1]
        assert g["within_ci_of_0"] == (g["ci95"][0] <= 0 <= g["ci95"][1])
    assert report["chat"]["base"]["n"] == report["chat"]["tuned"]["n"] == 2
    assert "teacher" not in report and "No teacher notes" in report["headline"]["verdict"]
    assert report["tuned"]["accepted"]["n"] == 2 and set(report["tuned"]["gates"]) >= {"grounding", "style", "safety"}
    assert report["timings"]["base_note_s"] > 0 and report["timings"]["tuned_piqa_question_s"] > 0
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 2 and {s["item_id"] for s in samples} == {h["item_id"] for h in report["heldout"]}
    md = (out / "report.md").read_text()
    assert "MMLU guardrail" in md and "| grounding gate pass |" in md and "right letter" in md
    page = (out / "report.html").read_text()
    assert "plotly" in page.lower() and html.escape(report["headline"]["verdict"]) in page and "<table" in page
    assert len((out / "chat.jsonl").read_text().splitlines()) == 2
    stamp = (out / "COMPLETE").read_text()
    assert evaluate(cfg, run.path, progress=False) == out and (out / "COMPLETE").read_text() == stamp
