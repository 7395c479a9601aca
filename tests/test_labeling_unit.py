"""Agreement math on textbook examples, resolution rules and preference pairs (no server)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from curation import labeling as lb


# ------------------------------------------------------------------ agreement math

def test_cohen_kappa_wikipedia_example():
    # Wikipedia "Cohen's kappa": 50 proposals, yes/yes 20, yes/no 5, no/yes 10, no/no 15 -> 0.4
    a = ["y"] * 25 + ["n"] * 25
    b = ["y"] * 20 + ["n"] * 5 + ["y"] * 10 + ["n"] * 15
    assert lb.cohen_kappa(a, b) == pytest.approx(0.4)


def test_cohen_kappa_edges_and_weights():
    assert lb.cohen_kappa([1, 2, 3], [1, 2, 3]) == pytest.approx(1.0)
    assert lb.cohen_kappa(["a", "a"], ["a", "a"]) == 1.0  # no disagreement possible
    # Near misses on an ordinal scale cost less with quadratic weights.
    a, b = [1, 2, 3, 4, 5, 1, 2, 3, 4, 5], [2, 2, 3, 4, 4, 1, 3, 3, 5, 5]
    k, kq = lb.cohen_kappa(a, b), lb.cohen_kappa(a, b, labels=[1, 2, 3, 4, 5], weights="quadratic")
    assert kq > k
    # Hand computation: obs disagreement weights 4 x (1/4)^2 / 10 = 0.025,
    # expected: marginals a=(.2,.2,.2,.2,.2), b=(.1,.2,.3,.2,.2)
    pa, pb = np.full(5, 0.2), np.array([.1, .2, .3, .2, .2])
    w = ((np.arange(5)[:, None] - np.arange(5)[None, :]) / 4) ** 2
    assert kq == pytest.approx(1 - 0.025 / (np.outer(pa, pb) * w).sum())


def test_fleiss_kappa_wikipedia_example():
    # Wikipedia "Fleiss' kappa": 10 subjects, 14 raters, 5 categories -> 0.210
    counts = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
              [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]
    assert lb.fleiss_kappa(counts) == pytest.approx(0.2099, abs=1e-3)
    with pytest.raises(ValueError):
        lb.fleiss_kappa([[1, 1], [3, 0]])


def test_fleiss_equals_scott_pi_for_two_raters():
    a, b = ["y", "y", "n", "n", "y", "n"], ["y", "n", "n", "n", "y", "y"]
    counts = [[(x == "y") + (y == "y"), (x == "n") + (y == "n")] for x, y in zip(a, b)]
    # Scott's pi: Po = 4/6, pooled p(y) = 6/12 -> Pe = .5
    assert lb.fleiss_kappa(counts) == pytest.approx((4 / 6 - 0.5) / 0.5)


KRIPP = [  # Krippendorff (2011) "Computing Krippendorff's alpha-reliability", 4 observers x 12 units
    [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
]


def test_krippendorff_alpha_textbook_values():
    assert lb.krippendorff_alpha(KRIPP, "nominal") == pytest.approx(0.743, abs=1e-3)
    assert lb.krippendorff_alpha(KRIPP, "interval") == pytest.approx(0.849, abs=1e-3)
    # Same paper, binary data, 2 observers x 10 units -> 0.095
    binary = [[0, 1, 0, 0, 0, 0, 0, 0, 1, 0], [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]]
    assert lb.krippendorff_alpha(binary) == pytest.approx(0.095, abs=1e-3)
    assert lb.krippendorff_alpha([[1, 2, 3], [1, 2, 3]]) == pytest.approx(1.0)


# ------------------------------------------------------------------ resolve rules

def test_resolve_value_rules():
    assert lb.resolve_value("grounded", [("grounded", "annotator"), ("grounded", "annotator"),
                                         ("wrong_entity", "annotator")]) == "grounded"
    assert lb.resolve_value("grounded", [("grounded", "annotator"), ("wrong_entity", "annotator")]) is None
    assert lb.resolve_value("rating", [(5, "annotator"), (3, "annotator")]) == 3  # tie -> lower
    # owner/admin wins against any number of annotators
    assert lb.resolve_value("tone_ok", [("yes", "annotator"), ("yes", "annotator"), ("no", "owner")]) == "no"
    assert lb.resolve_value("rating", [(None, "owner"), (4, "annotator")]) == 4  # blank expert: no vote
    assert lb.resolve_value("rating", []) is None


def _resp(record_id, user, role="annotator", status="submitted", rating=5, grounded="grounded", tone="yes",
          corrected=None, pref=None, item="i1", listener="l1", expl=None, other=None, other_expl=None):
    return {"record_id": record_id, "item_id": item, "listener_id": listener, "user_id": user,
            "username": user, "role": role, "status": status, "rating": rating, "grounded": grounded,
            "tone_ok": tone, "corrected_explanation": corrected, "preference": [pref] if pref else None,
            "pref_winner": pref, "explanation": expl or f"explanation {record_id}",
            "other_explanation": other_expl, "other_record_id": other, "teacher": "t"}


def test_resolve_golden_and_correction_pairs():
    rows = [
        _resp("r1", "ann1"), _resp("r1", "ann2", rating=4),                     # approved
        _resp("r2", "ann1", grounded="unsupported_fact", rating=2),
        _resp("r2", "ann2", grounded="unsupported_fact", rating=2,
              corrected="Fixed sentence."),                                     # corrected
        _resp("r3", "ann1", rating=2, tone="no"), _resp("r3", "ann2", rating=2),  # rejected
        _resp("r4", "ann1"), _resp("r4", "ann2"), _resp("r4", "boss", role="owner", grounded="wrong_entity"),
        _resp("r5", "ann1", status="draft"), _resp("r5", "ann2", status="discarded"),
    ]
    out = lb.resolve(pd.DataFrame(rows))
    g = out["golden"].set_index("record_id")
    assert set(g.index) == {"r1", "r2"}
    assert g.at["r1", "source"] == "approved" and g.at["r1", "explanation"] == "explanation r1"
    assert g.at["r2", "source"] == "corrected" and g.at["r2", "explanation"] == "Fixed sentence."
    res = out["resolved"].set_index("record_id")
    assert res.at["r4", "grounded"] == "wrong_entity"  # owner overrides two annotators
    assert "r5" not in res.index  # drafts/discards do not count
    pairs = out["pairs"]
    assert len(pairs) == 1
    p = pairs.iloc[0]
    assert (p.source, p.chosen, p.rejected) == ("correction", "Fixed sentence.", "explanation r2")


def test_expert_correction_wins_and_identical_correction_ignored():
    rows = [_resp("r1", "ann1", corrected="A."), _resp("r1", "ann2", corrected="A."),
            _resp("r1", "boss", role="admin", corrected="B."),
            _resp("r2", "ann1", corrected="explanation r2")]  # "correction" == original: no pair
    out = lb.resolve(pd.DataFrame(rows))
    g = out["golden"].set_index("record_id")
    assert g.at["r1", "explanation"] == "B."
    assert g.at["r2", "source"] == "approved"
    assert list(out["pairs"]["source"]) == ["correction"]


def test_expert_verdict_without_correction_drops_annotator_corrections():
    """Once an owner/admin answered a record, an annotator's correction does not become golden
    (or a pair) under the owner's verdict and label source (found against a live Argilla)."""
    rows = [{**_resp("r1", "ann1", grounded="unsupported_fact", rating=2, corrected="Scripted fix."),
             "answered_by": "scripted"},
            {**_resp("r1", "ann2", grounded="unsupported_fact", rating=2), "answered_by": "scripted"},
            {**_resp("r1", "argilla", role="owner", grounded="wrong_entity", rating=1), "answered_by": "human"},
            {**_resp("r2", "ann1", grounded="unsupported_fact", rating=2, corrected="Kept fix."),
             "answered_by": "scripted"}]
    out = lb.resolve(pd.DataFrame(rows))
    res = out["resolved"].set_index("record_id")
    assert pd.isna(res.at["r1", "corrected_explanation"]) and res.at["r1", "label_source"] == "human"
    assert set(out["golden"].record_id) == {"r2"}  # no expert on r2: the annotator's fix stands
    assert list(out["pairs"].chosen_record_id) == ["r2"]


def test_preference_pairs_pool_both_records():
    kw = dict(item="i9", listener="l9")
    rows = [
        # On record a, ann1 prefers 'this' (a); on record b, ann2 prefers 'other' (a); ann3 on b prefers b.
        _resp("a", "ann1", pref="this", other="b", other_expl="explanation b", **kw),
        _resp("b", "ann2", pref="other", other="a", other_expl="explanation a", **kw),
        _resp("b", "ann3", pref="this", other="a", other_expl="explanation a", **kw),
        # tie on c/d -> no pair
        _resp("c", "ann1", pref="this", other="d", item="i8"), _resp("d", "ann2", pref="this", other="c", item="i8"),
    ]
    pairs = lb.resolve(pd.DataFrame(rows))["pairs"]
    ranking = pairs[pairs.source == "ranking"]
    assert len(ranking) == 1
    p = ranking.iloc[0]
    assert (p.chosen_record_id, p.rejected_record_id, p.votes_for, p.votes_against) == ("a", "b", 2, 1)
    assert (p.chosen, p.rejected) == ("explanation a", "explanation b")


def test_agreement_report_two_annotators():
    ratings1, ratings2 = [5, 4, 2, 5, 1, 3], [5, 4, 3, 5, 1, 2]
    g1 = ["grounded", "grounded", "unsupported_fact", "grounded", "wrong_entity", "grounded"]
    g2 = ["grounded", "unsupported_fact", "unsupported_fact", "grounded", "wrong_entity", "grounded"]
    rows = []
    for i in range(6):
        rows.append(_resp(f"r{i}", "ann1", rating=ratings1[i], grounded=g1[i]))
        rows.append(_resp(f"r{i}", "ann2", rating=ratings2[i], grounded=g2[i]))
    ag = lb.resolve(pd.DataFrame(rows))["agreement"]
    q = ag["questions"]["grounded"]
    assert q["cohen_kappa"]["kappa"] == pytest.approx(lb.cohen_kappa(g1, g2))
    assert q["cohen_kappa"]["n"] == 6 and q["fleiss_kappa"]["raters_per_item"] == 2
    assert q["krippendorff_alpha"] == pytest.approx(lb.krippendorff_alpha([g1, g2]))
    assert ag["questions"]["rating"]["cohen_kappa"]["kappa_quadratic"] > ag["questions"]["rating"]["cohen_kappa"]["kappa"]
    assert ag["questions"]["tone_ok"]["krippendorff_alpha"] == 1.0  # all "yes"
    assert set(ag["annotators"]) == {"ann1", "ann2"}
    assert ag["annotators"]["ann1"]["grounded_mean_kappa"] == pytest.approx(lb.cohen_kappa(g1, g2))


# ------------------------------------------------------------------ records (no SDK)

def sample_df(n: int = 6, pairs: int = 1) -> pd.DataFrame:
    rows = []
    for i in range(n):
        item_i = i if i >= 2 * pairs else i // 2  # the first 2*pairs rows: two candidates per item
        item = {"item_id": f"item{item_i}", "title": f"Song {item_i}", "creator": "Ada", "collection": "LP",
                "year": 1999, "genres": ["jazz"], "item_type": "song"}
        listener = {"listener_id": "L1", "country": "FR", "age_band": "25-34",
                    "history": [{"title": "Old", "creator": "Bo", "genres": ["jazz"]}], "taste": ["jazz"]}
        rows.append({"record_id": f"rec{i:03d}", "item_id": f"item{item_i}", "item_type": "song",
                     "item": json.dumps(item), "item_title": item["title"], "listener": json.dumps(listener),
                     "explanation": f"Song {item_i} by Ada, candidate {i}.", "facts_used": ["title", "creator"],
                     "gate_grounding": i % 3 != 0, "gate_style": True, "gate_safety": i % 4 != 1,
                     "gate_reasons": json.dumps({"grounding": ["wrong creator"] if i % 3 == 0 else []}),
                     "cluster": i % 2, "cluster_label": f"c{i % 2}", "model": "teacher-x",
                     "prompt_version": "v1", "sample_reason": "random"})
    return pd.DataFrame(rows)


def test_to_records_pairs_and_suggestions():
    recs = {r["id"]: r for r in lb.to_records(sample_df())}
    assert recs["rec001"]["metadata"]["has_pair"] == "yes" and recs["rec002"]["metadata"]["has_pair"] == "no"
    # "wrong creator" is not the gate's wrong-entity wording: an unsupported claim
    assert recs["rec000"]["suggestions"] == {"grounded": "unsupported_fact", "tone_ok": "yes"}
    assert recs["rec001"]["suggestions"] == {"grounded": "grounded", "tone_ok": "no"}
    assert "Song 2" in recs["rec002"]["fields"]["item_card"] and "FR" in recs["rec002"]["fields"]["listener"]
    assert recs["rec002"]["metadata"]["gates_passed"] == "yes" and recs["rec003"]["metadata"]["gates_passed"] == "no"


def test_review_records_have_no_ranking_pairs_dataset_only_for_two_candidates():
    df = sample_df(6, pairs=1)  # rec000/rec001: two candidates for item0; the rest have one
    recs = {r["id"]: r for r in lb.to_records(df)}
    assert all(set(r["fields"]) == {"item_card", "listener", "explanation"} for r in recs.values())
    pairs = lb.to_pair_records(df)
    assert [p["id"] for p in pairs] == [lb.pair_record_id("rec000", "rec001")]
    p = pairs[0]
    assert (p["fields"]["candidate_a"], p["fields"]["candidate_b"]) == (
        "Song 0 by Ada, candidate 0.", "Song 0 by Ada, candidate 1.")
    assert (p["metadata"]["record_a"], p["metadata"]["record_b"]) == ("rec000", "rec001")
    assert lb.to_pair_records(sample_df(4, pairs=0)) == []  # no pair: no pairs dataset at all
    assert lb.pairs_dataset_name("ds") == "ds-pairs"


def test_pairs_dataset_answers_become_ranking_pairs():
    # pull() turns a pairs-dataset answer into a row for candidate A: 'this' = A won
    kw = dict(item="i9", listener="l9", other="b", other_expl="explanation b", rating=None, grounded=None,
              tone=None)
    rows = [_resp("a", "ann1"), _resp("b", "ann1"),
            {**_resp("a", "ann1", pref="this", **kw), "dataset": "pairs"},
            {**_resp("a", "ann2", pref="this", **kw), "dataset": "pairs"}]
    for r in rows[:2]:
        r["dataset"] = "review"
    out = lb.resolve(pd.DataFrame(rows))
    ranking = out["pairs"][out["pairs"].source == "ranking"]
    assert list(zip(ranking.chosen_record_id, ranking.rejected_record_id)) == [("a", "b")]
    res = out["resolved"].set_index("record_id")
    assert res.at["a", "n_submitted"] == 1 and res.at["a", "rating"] == 5  # pair answers are not reviews


def test_listener_and_item_cards_leave_missing_fields_out():
    text = lb.listener_md({"listener_id": "L7", "country": "Brazil", "age_band": None, "taste": [],
                           "history": [{"title": "So What", "creator": None, "genres": []}]})
    assert "None" not in text and "age" not in text
    assert "Brazil" in text and "So What" in text
    assert "age 25-34" in lb.listener_md({"listener_id": "L1", "age_band": "25-34"})
    assert lb.listener_md({"listener_id": "L2"}) == "**L2**"
    card = lb.item_card_md({"title": "Song", "creator": None, "year": None, "genres": [None], "duration_s": 125})
    assert "None" not in card and "nan" not in card and "2.1 min" in card


def _row(text, grounding=True, reasons=(), style=True, safety=True, item=None):
    item = item or {"item_id": "music:1", "title": "Master Of Puppets", "creator": "Metallica"}
    return {"record_id": "r", "explanation": text, "item": json.dumps(item), "gate_grounding": grounding,
            "gate_style": style, "gate_safety": safety,
            "gate_reasons": json.dumps({"grounding": list(reasons)})}


def test_gate_suggestions_are_honest():
    # a note about this item, gate passed: grounded
    assert lb.gate_suggestions(_row("Metallica's Master Of Puppets suits you.")) == {
        "grounded": "grounded", "tone_ok": "yes"}
    # a note about another item (a history title) passes the gate but is not about this item
    off = lb.gate_suggestions(_row("Since you love Enter Sandman, more Enter Sandman awaits."))
    assert "grounded" not in off
    # gate verdicts by reason: another catalog item's name -> wrong entity; invented title -> unsupported
    wrong = _row("Madonna's Master Of Puppets.", False,
                 ['"Madonna" is a catalog creator but not of this item or the listener\'s history'])
    assert lb.gate_suggestions(wrong)["grounded"] == "wrong_entity"
    invented = _row("Master Of Puppets, from \"Midnight Velvet\".", False,
                    ['"Midnight Velvet" (quoted title) not in catalog'])
    assert lb.gate_suggestions(invented)["grounded"] == "unsupported_fact"  # "title" is no entity mismatch
    # failed only on facts_used (not the sentence shown): no grounded suggestion
    facts = _row("Master Of Puppets rocks.", False, ['facts_used entry "x" not found in item/listener facts'])
    assert "grounded" not in lb.gate_suggestions(facts)
    # a gate that did not run (NaN / None) suggests nothing; bool(nan) is True, which used to say "grounded"
    nan = _row("Master Of Puppets rocks.", float("nan"), style=None)
    assert lb.gate_suggestions(nan) == {}
    assert lb.gate_suggestions(_row("Master Of Puppets rocks.", safety=False))["tone_ok"] == "no"
    assert lb.gate_suggestions(_row(None)) == {}
    rec = lb.to_records(pd.DataFrame([{**_row("Enter Sandman again.", float("nan")), "item_id": "music:1",
                                       "listener": json.dumps({"listener_id": "L1"})}]))[0]
    assert rec["metadata"]["gate_grounding"] == "not run" and rec["metadata"]["on_item"] == "no"


# ------------------------------------------------------------------ provenance

def test_label_source_follows_who_answered():
    rows = [{**_resp("r1", "annotator"), "answered_by": "scripted"},
            {**_resp("r1", "annotator2"), "answered_by": "scripted"},
            {**_resp("r2", "annotator"), "answered_by": "scripted"},
            {**_resp("r2", "argilla", role="owner", corrected="Owner fix."), "answered_by": "human"},
            {**_resp("r3", "annotator"), "answered_by": "scripted"},
            {**_resp("r3", "maria"), "answered_by": "human"}]
    out = lb.resolve(pd.DataFrame(rows))
    src = out["resolved"].set_index("record_id")["label_source"]
    assert src.to_dict() == {"r1": "scripted", "r2": "human", "r3": "mixed"}  # the owner's answer wins
    assert out["golden"].set_index("record_id").at["r2", "label_source"] == "human"
    assert list(out["pairs"]["label_source"]) == ["human"]
    assert lb.resolve(pd.DataFrame([_resp("r1", "a")]))["resolved"]["label_source"].tolist() == [None]


def test_demo_ledger_marks_scripted_answers_and_manifest_counts(tmp_path, monkeypatch):
    from curation import label_stage as ls

    monkeypatch.setenv("LINERNOTES_HOME", str(tmp_path / "home"))
    ls._write_ledger("ds1", {"annotator": {"review:r1", "pairs:r1__vs__r2"}, "annotator2": {"review:r1"}})
    scripted = ls.load_scripted("ds1")
    assert scripted["annotator"] == {"review:r1", "pairs:r1__vs__r2"}
    assert ls.load_scripted("other") == {} and ls.load_scripted(None) == {}
    responses = pd.DataFrame([
        {**_resp("r1", "annotator"), "dataset": "review", "argilla_record": "r1"},
        {**_resp("r1", "annotator2"), "dataset": "review", "argilla_record": "r1"},
        {**_resp("r1", "annotator", pref="this", other="r2"), "dataset": "pairs", "argilla_record": "r1__vs__r2"},
        {**_resp("r1", "argilla", role="owner"), "dataset": "review", "argilla_record": "r1"},
        {**_resp("r2", "annotator", status="draft"), "dataset": "review", "argilla_record": "r2"},
    ])
    marked = ls.mark_provenance(responses, scripted)
    assert list(marked["answered_by"]) == ["scripted", "scripted", "scripted", "human", "human"]
    summary = ls.provenance_summary(marked)
    assert summary["label_source"] == {"human": 1, "scripted": 3}  # the draft does not count
    assert summary["annotators"] == {"human": ["argilla"], "scripted": ["annotator", "annotator2"]}
    assert "not a person" in summary["scripted_by"]


def test_pull_and_resolve_writes_provenance_into_the_manifest(tmp_path, monkeypatch):
    from curation import label_stage as ls, labeling

    rows = [{**_resp("r1", "annotator"), "dataset": "review", "argilla_record": "r1"},
            {**_resp("r1", "annotator2"), "dataset": "review", "argilla_record": "r1"}]
    monkeypatch.setattr(labeling, "pull", lambda name, client: pd.DataFrame(rows))  # stand-in for a server
    run = ls.pull_and_resolve("ds", client=object(), runs_dir=tmp_path,
                              scripted={"annotator": {"review:r1"}, "annotator2": {"review:r1"}})
    m = run.manifest()
    assert m["label_source"] == {"human": 0, "scripted": 2} and "scripted_by" in m
    assert set(pd.read_parquet(run.path / "golden.parquet")["label_source"]) == {"scripted"}


def test_demo_answers_use_suggestions_and_rank_only_pairs():
    from curation import label_stage as ls

    pair = ls._demo_answer(0, {"id": "a__vs__b", "fields": {"candidate_a": "x", "candidate_b": "y"}})
    assert set(pair) == {"preference"} and {d["value"] for d in pair["preference"]} == {"a", "b"}
    review = ls._demo_answer(0, {"id": "r1", "fields": {"explanation": "x"}, "suggestions": {}})
    assert "preference" not in review and review["grounded"] != "grounded"  # no suggestion: cautious


def test_owner_next_steps_point_at_pending_records():
    from curation import label_stage as ls

    lines = ls.owner_next_steps("http://127.0.0.1:1", "argilla", "ds", 12, 2,
                                min_submitted=ls.DEMO_MIN_SUBMITTED)
    text = "\n".join(lines)
    assert "12 records wait for your review" in text and "ds-pairs" in text
    assert "scripted demo labels (not human)" in text and "password" not in text.lower()
    assert ls.DEMO_MIN_SUBMITTED > len(ls.DEMO_ANNOTATORS)
    done = "\n".join(ls.owner_next_steps("u", "argilla", "ds", 12, min_submitted=2))
    assert "task is completed" in done


def test_repush_drops_only_our_stale_suggestions():
    """A re-push deletes the gates' suggestions it no longer makes (the server's upsert keeps
    them); other agents' suggestions and still-made ones stay. Stand-in SDK objects."""
    from types import SimpleNamespace as NS

    class StandInHttp:
        def __init__(self):
            self.calls = []

        def delete(self, url, params):
            self.calls.append((url, params))
            return NS(raise_for_status=lambda: None)

    sug = lambda i, q, agent="gates": NS(id=i, question_name=q, agent=agent)
    before = {"r1": NS(_server_id="s1", suggestions=[sug("g1", "grounded"), sug("t1", "tone_ok"),
                                                     sug("m1", "rating", agent="model")]),
              "r2": NS(_server_id="s2", suggestions=[sug("g2", "grounded")])}
    recs = [{"id": "r1", "suggestions": {"tone_ok": "yes"}}, {"id": "r2", "suggestions": {"grounded": "grounded"}},
            {"id": "r3", "suggestions": {}}]
    client = NS(http_client=StandInHttp())
    assert lb._drop_stale_suggestions(client, before, recs, "gates") == 1
    assert client.http_client.calls == [("/api/v1/records/s1/suggestions", {"ids": "g1"})]
